"""Which shared limiter and field-cache key a Pipedrive client may use.

The daily token budget and the custom-field definitions belong to a Pipedrive company, so every
connection to the same company shares them under `company:<id>`. A company id is believed only when
Pipedrive itself said it: the official API host, or the `https://<company>.pipedrive.com` api_domain
of an OAuth grant. Any other base URL (the sandbox, a tenant's own server) could claim any company's
id, so its client gets a key of its own connection and can never touch another tenant's budget or
field cache.
"""

from __future__ import annotations

import re

OFFICIAL_API = "https://api.pipedrive.com"
_OAUTH_API_DOMAIN = re.compile(r"^https://[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.pipedrive\.com$")


def base_trusted(base_url: str, *, oauth_api_domain: bool = False) -> bool:
    """Whether `base_url` (already without /api/v2) is Pipedrive's own API.

    Exact string comparison: no port, no user info, no path, so `https://api.pipedrive.com@evil`
    or `https://api.pipedrive.com.evil` never match."""
    base = (base_url or "").strip().rstrip("/").lower()
    if base == OFFICIAL_API:
        return True
    return oauth_api_domain and bool(_OAUTH_API_DOMAIN.match(base))


def company_key_for(*, base_url: str, company_id: int | str | None, oauth_api_domain: bool,
                    connection_uuid: str | None, fallback: str) -> str:
    """The key of the shared daily budget and field cache.

    `company:<id>` only on a trusted host; otherwise `conn:<connection uuid>`; `fallback` (a digest
    of the client's own secret) for a client built without a connection or before the company id
    is known."""
    if company_id not in (None, "") and base_trusted(base_url, oauth_api_domain=oauth_api_domain):
        return f"company:{company_id}"
    if connection_uuid and not base_trusted(base_url, oauth_api_domain=oauth_api_domain):
        return f"conn:{connection_uuid}"
    return fallback
