"""SAP Business One (Service Layer). What a connection asks for; the client is in client.py, flow
kinds in flows.py."""

from connectors.base import SystemField

CONNECTION_FIELDS = (
    SystemField("company_db", "Company database", help="The CompanyDB name, for example SBODEMOUS."),
    SystemField("user", "User name"),
    SystemField("password", "Password", secret=True),
)

# "Try it with the sandbox" in the onboarding wizard (only when SANDBOX_URL is set): see sage300's.
SANDBOX = {
    "path": "/b1s/v1",
    "options": {"company_db": "SBODEMOUS", "user": "manager"},
    "credentials": {"password": "manager"},
    "seed": ("sap_b1/companies", {"company_db": "SBODEMOUS", "user": "manager", "password": "manager",
                                  "partners": 20, "contacts_max": 2, "items": 10, "invoices": 20, "seed": 7}),
}
