"""SAP S/4HANA. No client yet: connections can be stored and are listed on the portal."""

from connectors.base import SystemField

CONNECTION_FIELDS = (
    SystemField("client_id", "Client ID or communication user"),
    SystemField("client_secret", "Client secret or password", secret=True),
    SystemField("company", "Company code", required=False),
)
