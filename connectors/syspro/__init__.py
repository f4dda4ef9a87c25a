"""SYSPRO 8 (e.net). No client yet: connections can be stored and are listed on the portal."""

from connectors.base import SystemField

CONNECTION_FIELDS = (
    SystemField("company_id", "Company ID", required=False, help="Leave empty if the operator has a default company."),
    SystemField("operator", "Operator"),
    SystemField("password", "Operator password", secret=True),
    SystemField("company_password", "Company password", secret=True, required=False),
)
