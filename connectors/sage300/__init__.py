"""Sage 300 (Web API). What a connection asks for; the client is in client.py, flow kinds in flows.py."""

from connectors.base import SystemField

CONNECTION_FIELDS = (
    SystemField("company", "Company (organisation ID)", help="For example SAMLTD."),
    SystemField("user", "User ID", help="Sage 300 user IDs are upper case, for example ADMIN."),
    SystemField("password", "Password", secret=True, required=False,
                help="Leave empty only if security is off for the system database."),
)
