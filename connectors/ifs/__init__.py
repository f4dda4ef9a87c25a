"""IFS Cloud (OData V4 projections, IFS IAM client credentials). What a connection asks for; the client
is in client.py, flow kinds in flows.py."""

from connectors.base import SystemField

CONNECTION_FIELDS = (
    SystemField("namespace", "Namespace (realm)", help="The IAM realm, usually the system's namespace."),
    SystemField("client_id", "Client ID"),
    SystemField("client_secret", "Client secret", secret=True),
)
