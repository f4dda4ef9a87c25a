"""Pipedrive OAuth2: the authorization-code exchange, and the access-token lifecycle of a client
(refreshed before expiry and on a 401, under a row lock so two workers refresh once)."""

from __future__ import annotations

import logging
import time
from typing import Any

import requests
from django.conf import settings
from django.db import transaction

from connectors import http
from connectors.base import ConnectorError
from connectors.pipedrive.common import SYSTEM, _body, _scrub

log = logging.getLogger("connectors.pipedrive")

REFRESH_MARGIN_S = 60


def _oauth_url() -> str:
    return getattr(settings, "PIPEDRIVE_OAUTH_URL", "https://oauth.pipedrive.com")


def _token_request(session: requests.Session, *, oauth_url: str, client_id: str, client_secret: str,
                   data: dict[str, str], secrets: list[str]) -> dict[str, Any]:
    """POST /oauth/token with Basic client authentication; plain-words errors, never a token."""
    url = oauth_url.rstrip("/") + "/oauth/token"
    http.url_check(url)
    resp = http.request(session, "POST", url, system=SYSTEM, data=data, auth=(client_id, client_secret),
                        allow_redirects=False)
    body = _body(resp) or {}
    if resp.ok and body.get("access_token"):
        return body
    text = _scrub(str(body.get("error_description") or body.get("error") or resp.reason or ""), secrets)
    if resp.status_code in (400, 401, 403):
        what = "renew" if data.get("grant_type") == "refresh_token" else "grant"
        raise ConnectorError(
            f"Pipedrive refused to {what} the OAuth authorisation ({text}); reconnect Pipedrive.",
            auth=True, status=resp.status_code, code=str(body.get("error") or ""))
    raise http.status_error(SYSTEM, resp.status_code, f"the OAuth token endpoint failed ({text})",
                            retry_after=http.retry_after_seconds(resp.headers.get("Retry-After")))


def _credentials_from_tokens(credentials: dict[str, Any], tokens: dict[str, Any]) -> dict[str, Any]:
    updated = dict(credentials)
    updated["access_token"] = tokens["access_token"]
    if tokens.get("refresh_token"):
        updated["refresh_token"] = tokens["refresh_token"]
    updated["expires_at"] = int(time.time() + int(tokens.get("expires_in") or 3600))
    return updated


def oauth_exchange_code(*, connection, code: str, redirect_uri: str):
    """The portal's OAuth connect flow: trade an authorization code for tokens and store them
    (credentials_version + 1) on `connection`. Returns the updated Connection."""
    from connectors.models import Connection

    options = connection.options or {}
    credentials = connection.credentials or {}
    client_id = options.get("client_id") or ""
    client_secret = credentials.get("client_secret") or ""
    if not client_id or not client_secret:
        raise ConnectorError("The Pipedrive OAuth app's client id and client secret are required.", permanent=True)
    secrets = [client_secret, code]
    session = http.session_build()
    tokens = _token_request(session, oauth_url=options.get("oauth_url") or _oauth_url(), client_id=client_id,
                            client_secret=client_secret, secrets=secrets,
                            data={"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri})
    api_domain = str(tokens.get("api_domain") or "").rstrip("/")
    if api_domain:
        http.url_check(api_domain)
    with transaction.atomic():
        row = Connection.objects.select_for_update().get(pk=connection.pk)
        row.credentials = _credentials_from_tokens(row.credentials or {}, tokens)
        row.credentials_version += 1
        row.options = {**(row.options or {}), "auth": "oauth", **({"api_domain": api_domain} if api_domain else {})}
        row.save(update_fields=["credentials", "credentials_version", "options", "updated"])
    return row


class OAuthMixin:
    """The token lifecycle of PipedriveClient (its `request` calls `_token_fresh` and `_refresh`)."""

    # -- OAuth2 -------------------------------------------------------------------------------

    def _token_fresh(self) -> None:
        if self.auth != "oauth":
            return
        if not self.access_token or (self.expires_at is not None and time.time() > self.expires_at - REFRESH_MARGIN_S):
            self._refresh(stale_token=self.access_token)

    def _adopt(self, credentials: dict[str, Any], options: dict[str, Any] | None = None) -> None:
        self.access_token = credentials.get("access_token", "")
        self.refresh_token = credentials.get("refresh_token", "") or self.refresh_token
        self.expires_at = float(credentials["expires_at"]) if credentials.get("expires_at") not in (None, "") else None
        api_domain = (options or {}).get("api_domain")
        if api_domain and self._normalize_base(api_domain) != self.base_url:
            self.base_url = self._normalize_base(api_domain)
            http.url_check(self.base_url)

    def _token_post(self, refresh_token: str) -> dict[str, Any]:
        if not self.client_id or not self.client_secret:
            raise ConnectorError("The Pipedrive OAuth app's client id and secret are missing; reconnect Pipedrive.",
                                 auth=True)
        return _token_request(self.session, oauth_url=self.oauth_url, client_id=self.client_id,
                              client_secret=self.client_secret, secrets=[*self._secrets, refresh_token],
                              data={"grant_type": "refresh_token", "refresh_token": refresh_token})

    def _refresh(self, *, stale_token: str) -> None:
        """Renew the access token exactly once across all workers: lock the Connection row, re-read,
        use another worker's fresh token if there is one, else refresh and save in the same transaction."""
        if self.connection_pk is None:
            tokens = self._token_post(self.refresh_token)
            self._adopt(_credentials_from_tokens({"refresh_token": self.refresh_token}, tokens),
                        {"api_domain": tokens.get("api_domain")})
            return
        from connectors.models import Connection

        with transaction.atomic():
            row = Connection.objects.select_for_update().get(pk=self.connection_pk)
            stored = dict(row.credentials or {})
            expires_at = float(stored.get("expires_at") or 0)
            fresh = expires_at - REFRESH_MARGIN_S > time.time()
            if stored.get("access_token") and stored["access_token"] != stale_token and fresh:
                log.info("Pipedrive OAuth: using the token another worker renewed (version %s)", row.credentials_version)
            else:
                refresh_token = stored.get("refresh_token") or self.refresh_token
                tokens = self._token_post(refresh_token)
                stored = _credentials_from_tokens(stored, tokens)
                row.credentials = stored
                row.credentials_version += 1
                fields = ["credentials", "credentials_version", "updated"]
                api_domain = str(tokens.get("api_domain") or "").rstrip("/")
                if api_domain and api_domain != (row.options or {}).get("api_domain"):
                    http.url_check(api_domain)
                    row.options = {**(row.options or {}), "api_domain": api_domain}
                    fields.append("options")
                row.save(update_fields=fields)
                log.info("Pipedrive OAuth: access token renewed (version %s)", row.credentials_version)
            self.credentials_version = row.credentials_version
            self._adopt(stored, row.options)

    def _connection_options_update(self, **changes: Any) -> None:
        if self.connection_pk is None:
            return
        from connectors.models import Connection

        with transaction.atomic():
            row = Connection.objects.select_for_update().only("id", "options").get(pk=self.connection_pk)
            options = dict(row.options or {})
            if all(options.get(key) == value for key, value in changes.items()):
                return
            options.update(changes)
            Connection.objects.filter(pk=self.connection_pk).update(options=options)

    def _daily_limit_observed(self, limit: int) -> None:
        log.info("Pipedrive reports a daily budget of %s tokens (plan table said %s)", limit,
                 self.limiter.config.daily_limit)
        self._connection_options_update(daily_limit_observed=limit)
