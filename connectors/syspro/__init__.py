"""SYSPRO 8: e.net Solutions (REST binding) or the read-only OData service. What a connection asks for;
the client is in client.py, flow kinds in flows.py."""

from connectors.base import SystemField

CONNECTION_FIELDS = (
    SystemField(
        "api",
        "Interface",
        required=False,
        choices=(("enet", "e.net Solutions (REST)"), ("odata", "OData service (read-only)")),
        help="e.net by default; OData where the SYSPRO site serves it (SYSPRO 8 2021 R2 and later).",
    ),
    SystemField(
        "company_id",
        "Company ID",
        required=False,
        help="Leave empty if the operator has a default company (required for OData).",
    ),
    SystemField("operator", "Operator"),
    SystemField("password", "Operator password", secret=True),
    SystemField("company_password", "Company password", secret=True, required=False),
)

# "Try it with the sandbox" in the onboarding wizard (only when SANDBOX_URL is set): see sage300's. e.net,
# the default interface; the estimate then counts from a sample (e.net has no cheap count).
SANDBOX = {
    "path": "/SYSPROWCFService/Rest",
    "options": {"api": "enet", "company_id": "SYS", "operator": "ADMIN"},
    "credentials": {"password": "admin"},
    "seed": (
        "syspro/companies",
        {
            "company_id": "SYS",
            "operator": "ADMIN",
            "password": "admin",
            "customers": 20,
            "orders": 20,
            "lines_max": 3,
            "items": 10,
            "seed": 7,
        },
    ),
}
