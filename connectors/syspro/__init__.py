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
