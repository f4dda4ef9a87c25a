"""Pipedrive. What a connection asks for, and the options ml-connector learns and writes itself."""

from connectors.base import SystemField

PLANS = (("lite", "Lite"), ("growth", "Growth"), ("premium", "Premium"), ("ultimate", "Ultimate"))
AUTH_METHODS = (("api_token", "API token"), ("oauth", "OAuth app (client id and secret)"))

CONNECTION_FIELDS = (
    SystemField("auth", "Authentication", choices=AUTH_METHODS),
    SystemField("api_token", "API token", secret=True, auth="api_token",
                help="Only with API token authentication: Pipedrive → Personal preferences → API."),
    SystemField("client_id", "OAuth client ID", auth="oauth", help="Only with OAuth app authentication."),
    SystemField("client_secret", "OAuth client secret", secret=True, auth="oauth",
                help="Only with OAuth app authentication."),
    SystemField("plan", "Pipedrive plan", choices=PLANS,
                help="Sets the daily API budget (corrected from Pipedrive's headers later)."),
    SystemField("seats", "Seats", integer=True, help="Number of paid seats in the Pipedrive company."),
    SystemField("webhook_hmac_secret", "Webhook signing secret", secret=True, required=False,
                help="Only if Pipedrive's deliveries reach us through a relay that signs each body "
                     "(X-ML-Signature: sha256=<HMAC-SHA256 hex>); then unsigned deliveries are refused."),
)
DEFAULT_BASE_URL = "https://api.pipedrive.com"
# Options ml-connector writes itself (discovered company id, OAuth api_domain, observed budget, ...):
# never settable through the portal or the API, since the shared limiter and field cache are keyed by
# them. Sent back unchanged (an API client echoing what it read) they are accepted.
INTERNAL_OPTIONS = ("company_id", "api_domain", "oauth_url", "daily_limit_observed", "budget_reserve", "webhook_id")
# Learned from the server with the stored credentials: forgotten when the URL or credentials change.
LEARNED_OPTIONS = ("company_id", "daily_limit_observed")
