"""IFS Cloud (OData V4 projections, IFS IAM client credentials). What a connection asks for; the client
is in client.py, flow kinds in flows.py."""

from connectors.base import SystemField

CONNECTION_FIELDS = (
    SystemField("namespace", "Namespace (realm)", help="The IAM realm, usually the system's namespace."),
    SystemField("client_id", "Client ID"),
    SystemField("client_secret", "Client secret", secret=True),
)

# "Try it with the sandbox" in the onboarding wizard (only when SANDBOX_URL is set): see sage300's. The
# simulator serves IAM and the projections on one host, so the path is empty.
SANDBOX = {
    "path": "",
    "options": {"namespace": "ifsdemo", "client_id": "ml-connector"},
    "credentials": {"client_secret": "s3cret"},
    "seed": (
        "ifs/environments",
        {
            "namespace": "ifsdemo",
            "client_id": "ml-connector",
            "client_secret": "s3cret",
            "customers": 20,
            "orders": 40,
            "seed": 7,
        },
    ),
}
