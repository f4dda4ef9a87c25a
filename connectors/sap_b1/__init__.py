"""SAP Business One (Service Layer). What a connection asks for; the client is in client.py, flow
kinds in flows.py."""

from connectors.base import SystemField

CONNECTION_FIELDS = (
    SystemField("company_db", "Company database", help="The CompanyDB name, for example SBODEMOUS."),
    SystemField("user", "User name"),
    SystemField("password", "Password", secret=True),
)
