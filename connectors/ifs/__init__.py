"""IFS Cloud. No client yet: connections can be stored and are listed on the portal."""

from connectors.base import SystemField

CONNECTION_FIELDS = (
    SystemField("namespace", "Namespace (realm)", help="The IAM realm, usually the system's namespace."),
    SystemField("client_id", "Client ID"),
    SystemField("client_secret", "Client secret", secret=True),
)
