"""Sage 300 (Web API). What a connection asks for; the client is in client.py, flow kinds in flows.py."""

from connectors.base import SystemField

CONNECTION_FIELDS = (
    SystemField("company", "Company (organisation ID)", help="For example SAMLTD."),
    SystemField("user", "User ID", help="Sage 300 user IDs are upper case, for example ADMIN."),
    SystemField("password", "Password", secret=True, required=False,
                help="Leave empty only if security is off for the system database."),
)

# "Try it with the sandbox" in the onboarding wizard (only when SANDBOX_URL is set): the path under the
# sandbox's URL, the connection's settings, and the control call that creates the company it reads.
SANDBOX = {
    "path": "/Sage300WebApi/v1.0",
    "options": {"company": "SAMLTD", "user": "ADMIN"},
    "credentials": {"password": "ADMIN"},
    "seed": ("sage300/companies", {"company": "SAMLTD", "user": "ADMIN", "password": "ADMIN", "customers": 40,
                                   "seed": 42}),
}
