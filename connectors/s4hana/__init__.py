"""SAP S/4HANA (API_BUSINESS_PARTNER, OData V2). What a connection asks for; the client is in client.py,
flow kinds in flows.py. The base URL is the API host (https://my123456-api.s4hana.cloud.sap)."""

from connectors.base import SystemField

CONNECTION_FIELDS = (
    SystemField("client_id", "Client ID or communication user"),
    SystemField("client_secret", "Client secret or password", secret=True),
    SystemField(
        "auth",
        "Sign-in",
        required=False,
        choices=(("oauth", "OAuth 2.0 client credentials"), ("basic", "Basic (communication user)")),
        help="S/4HANA Cloud communication arrangements offer both; on-premise systems often only Basic.",
    ),
    SystemField("company", "Company code", required=False),
)

# "Try it with the sandbox" in the onboarding wizard (only when SANDBOX_URL is set): see sage300's. The
# base URL is the API host; the client adds the service path.
SANDBOX = {
    "path": "",
    "options": {"client_id": "ml-connector", "auth": "oauth"},
    "credentials": {"client_secret": "s3cret"},
    "seed": (
        "s4hana/systems",
        {
            "client_id": "ml-connector",
            "client_secret": "s3cret",
            "partners": 20,
            "contacts_max": 2,
            "seed": 7,
        },
    ),
}
