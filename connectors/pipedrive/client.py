"""The Pipedrive client: auth lifecycle (API token or OAuth2 with rotating refresh tokens), paging,
per-operation token costs, the shared rate limiter, and the mapping of failures onto ConnectorError.

API v2 for entities and field definitions; v1 only for notes, users/me and webhooks (wire doc §0).
Pipedrive has no idempotency key, so a create that failed after it may have reached the server is
raised with `ambiguous = True` instead of being retried (the engine looks for the record first).
"""

from __future__ import annotations

import logging
import math
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import requests
from django.conf import settings
from django.db import transaction

from connectors import http
from connectors.base import BudgetExhausted, ConnectorError, NotFound, PingResult
from connectors.pipedrive.keys import base_trusted, company_key_for
from connectors.pipedrive.limiter import (
    LimitConfig,
    Limiter,
    burst_limit_for,
    daily_limit_for,
    digest,
    header_int,
    plan_normalize,
)

log = logging.getLogger("connectors.pipedrive")

SYSTEM = "Pipedrive"
PAGE_LIMIT = 500
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "PATCH", "DELETE"})
# v2 entity (path) name → the singular name used by fields, search and messages.
ENTITIES = {"organizations": "organization", "persons": "person", "deals": "deal", "products": "product",
            "activities": "activity"}
REFRESH_MARGIN_S = 60
DAILY_REMAINING = "x-daily-ratelimit-token-remaining"

_ID = re.compile(r"^(\d+|[0-9a-f]{40}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$")
# (method, v2 path pattern with the /api/v2 prefix removed) → x-token-cost, where it differs from
# the generic rule below (checked against the spec in tests).
V2_COSTS: list[tuple[str, re.Pattern[str], int]] = [
    ("GET", re.compile(r"^/deals/archived$"), 20),
    ("POST", re.compile(r"^/deals/[^/]+/products/bulk$"), 25),
    ("DELETE", re.compile(r"^/deals/[^/]+/products$"), 15),
    ("POST", re.compile(r"^/(deals/[^/]+/convert/lead|leads/[^/]+/convert/deal)$"), 40),
    ("GET", re.compile(r"^/products/[^/]+/images$"), 10),
    ("POST", re.compile(r"^/products/[^/]+/images$"), 20),
    ("PUT", re.compile(r"^/products/[^/]+/images$"), 20),
    ("DELETE", re.compile(r"^/products/[^/]+/images$"), 6),
    ("GET", re.compile(r"^/[a-zA-Z]+Fields/[^/]+$"), 1),  # one field: codes of standard fields are words
    ("GET", re.compile(r"^/persons/[^/]+/picture$"), 1),
    ("GET", re.compile(r"^/(stages|pipelines)$"), 5),
    ("GET", re.compile(r"^/[a-z]+/[^/]+/permittedUsers$"), 5),
    ("GET", re.compile(r"^/(boards|phases)/[^/]+$"), 10),
    ("POST", re.compile(r"^/projects/[^/]+/archive$"), 3),
]
V1_COSTS: list[tuple[str, re.Pattern[str], int]] = [
    ("GET", re.compile(r"^/users/me$"), 2),
    ("GET", re.compile(r"^/webhooks$"), 10),
    ("POST", re.compile(r"^/webhooks$"), 10),
    ("DELETE", re.compile(r"^/webhooks/[^/]+$"), 6),
    ("DELETE", re.compile(r"^/[a-zA-Z]+Fields$"), 10),
]
V2_GENERIC = {"GET": 10, "POST": 5, "PATCH": 5, "PUT": 5, "DELETE": 3}


def operation_cost(method: str, path: str) -> tuple[int, bool]:
    """Pipedrive's `x-token-cost` of one call and whether it is a search (own 10/2 s limit)."""
    method = method.upper()
    v1 = not path.startswith("/api/v2/")
    rest = re.sub(r"^(/api/v2|/api/v1|/v1)", "", path.split("?", 1)[0]).rstrip("/")
    segments = [s for s in rest.split("/") if s]
    if segments and (segments[0] == "itemSearch" or segments[-1] == "search"):
        return (40 if v1 else 20), True
    for table in (V1_COSTS if v1 else V2_COSTS):
        if table[0] == method and table[1].match(rest):
            return table[2], False
    if method == "GET" and segments and not _ID.match(segments[-1]):
        cost = V2_GENERIC["GET"]
    elif method == "GET":
        cost = 1
    else:
        cost = V2_GENERIC.get(method, 5)
    return (cost * 2 if v1 else cost), False


def _rfc3339(value: datetime | str) -> str:
    if isinstance(value, str):
        return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _body(resp: requests.Response) -> dict[str, Any] | None:
    """The JSON object of a response, or None (HTML error pages, empty bodies)."""
    if not resp.content:
        return None
    try:
        body = resp.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else {"data": body}


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


def _scrub(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        if secret and len(secret) >= 6:
            text = text.replace(secret, "••••")
    return text


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


class PipedriveClient:
    """One Pipedrive company, seen through one token. Build it with `from_connection()`."""

    system = SYSTEM

    def __init__(
        self,
        *,
        base_url: str,
        api_token: str = "",
        access_token: str = "",
        refresh_token: str = "",
        expires_at: float | None = None,
        client_id: str = "",
        client_secret: str = "",
        oauth_url: str = "",
        plan: str | None = "lite",
        seats: int | None = 1,
        company_id: int | str | None = None,
        oauth_api_domain: bool = False,
        budget_reserve: float | None = None,
        daily_limit: int | None = None,
        connection: Any = None,
        limiter: Limiter | None = None,
        timeout: tuple[float, float] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.auth = "oauth" if (access_token or refresh_token) else "api_token"
        if self.auth == "api_token" and not api_token:
            raise ConnectorError("A Pipedrive API token is required.", permanent=True)
        self.base_url = self._normalize_base(base_url)
        http.url_check(self.base_url)
        self.api_token = api_token
        self.access_token = access_token
        self.refresh_token = refresh_token
        self.expires_at = float(expires_at) if expires_at not in (None, "") else None
        self.client_id = client_id
        self.client_secret = client_secret
        self.oauth_url = oauth_url or _oauth_url()
        self.plan = plan_normalize(plan)
        self.seats = max(1, int(seats or 1))
        self.company_id = company_id
        self.connection_pk = getattr(connection, "pk", None)
        self.credentials_version = getattr(connection, "credentials_version", 0)
        self.timeout = timeout or http.timeout_default()
        self._sleep = sleep
        self.session = http.session_build()
        self.stats = {"calls": 0, "tokens": 0}
        self._stats_lock = threading.Lock()

        # Only Pipedrive's own hosts may name the company whose budget and field cache we share
        # (a tenant's server could claim another tenant's company id): see keys.py.
        self.host_trusted = base_trusted(self.base_url, oauth_api_domain=oauth_api_domain and self.auth == "oauth")
        if self.auth == "api_token":
            fallback = "token:" + digest(api_token)
        else:
            fallback = "oauth:" + digest(f"{client_id}|{getattr(connection, 'uuid', '') or self.base_url}")
        self.company_key = company_key_for(
            base_url=self.base_url, company_id=company_id, oauth_api_domain=oauth_api_domain and self.auth == "oauth",
            connection_uuid=str(getattr(connection, "uuid", "") or "") or None, fallback=fallback)
        burst_key = "burst:" + digest(api_token if self.auth == "api_token"
                                      else f"oauth|{client_id}|{self.company_key}")
        reserve = budget_reserve if budget_reserve is not None else getattr(settings, "PIPEDRIVE_BUDGET_RESERVE", 0.02)
        self.limiter = limiter or Limiter(
            LimitConfig(
                company_key=self.company_key,
                burst_key=burst_key,
                burst_limit=burst_limit_for(self.plan, oauth=self.auth == "oauth"),
                daily_limit=int(daily_limit or daily_limit_for(self.plan, self.seats)),
                reserve=float(reserve),
                margin_s=float(getattr(settings, "PIPEDRIVE_BURST_MARGIN_S", 0.1)),
            ),
            sleep=sleep,
            on_daily_limit=self._daily_limit_observed,
        )

    @classmethod
    def from_connection(cls, connection: Any, **kwargs: Any) -> PipedriveClient:
        options = connection.options or {}
        credentials = connection.credentials or {}
        auth = options.get("auth") or ("oauth" if credentials.get("refresh_token") else "api_token")
        if auth == "oauth":
            if not credentials.get("refresh_token") and not credentials.get("access_token"):
                raise ConnectorError("Pipedrive is not authorised yet: connect it with OAuth first.", auth=True)
            auth_kwargs = {
                "access_token": credentials.get("access_token", ""),
                "refresh_token": credentials.get("refresh_token", ""),
                "expires_at": credentials.get("expires_at"),
                "client_id": options.get("client_id", ""),
                "client_secret": credentials.get("client_secret", ""),
                "oauth_url": options.get("oauth_url", ""),
            }
            base_url = options.get("api_domain") or connection.base_url
            kwargs.setdefault("oauth_api_domain", bool(options.get("api_domain")))
        else:
            auth_kwargs = {"api_token": credentials.get("api_token", "")}
            base_url = connection.base_url
        return cls(
            base_url=base_url,
            plan=options.get("plan"),
            seats=options.get("seats"),
            company_id=options.get("company_id"),
            budget_reserve=options.get("budget_reserve"),
            daily_limit=options.get("daily_limit_observed"),
            connection=connection,
            **auth_kwargs,
            **kwargs,
        )

    # -- plumbing ---------------------------------------------------------------------------

    @property
    def max_retries(self) -> int:
        return int(getattr(settings, "PIPEDRIVE_MAX_RETRIES", 4))

    @property
    def max_throttled_retries(self) -> int:
        return int(getattr(settings, "PIPEDRIVE_MAX_429_RETRIES", 5))

    @staticmethod
    def _normalize_base(base_url: str) -> str:
        base = (base_url or "").strip().rstrip("/")
        return re.sub(r"/(api/v2|api/v1|v1)$", "", base)

    @staticmethod
    def _path(path: str) -> str:
        if "://" in path:
            raise ConnectorError("Pipedrive paths are relative to the company's API domain.", permanent=True)
        if path.startswith(("/api/v2/", "/api/v1/", "/v1/")):
            return path
        return "/api/v2/" + path.lstrip("/")

    @property
    def _secrets(self) -> list[str]:
        return [self.api_token, self.access_token, self.refresh_token, self.client_secret]

    def _auth_headers(self) -> dict[str, str]:
        if self.auth == "oauth":
            return {"Authorization": f"Bearer {self.access_token}"}
        return {"x-api-token": self.api_token}

    def _backoff(self, attempt: int, retry_after: float | None = None) -> float:
        base = float(getattr(settings, "PIPEDRIVE_RETRY_BASE_S", 0.5))
        cap = float(getattr(settings, "PIPEDRIVE_RETRY_CAP_S", 30))
        delay = random.uniform(0, min(cap, base * 2 ** attempt))  # full jitter
        return max(delay, retry_after or 0.0)

    def _error(self, resp: requests.Response, method: str, path: str) -> ConnectorError:
        status = resp.status_code
        body = _body(resp)
        retry_after = http.retry_after_seconds(resp.headers.get("Retry-After"))
        if status == 403 and body is None:
            pause = float(getattr(settings, "PIPEDRIVE_FIREWALL_PAUSE_S", 300))
            self.limiter.block(pause)
            return ConnectorError(
                "Pipedrive blocked requests after repeated rate-limit errors (HTTP 403 from its firewall); "
                f"calls pause for {round(pause / 60)} minutes.",
                permanent=False, retry_after=pause, status=403, code="blocked")
        body = body or {}
        text = str(body.get("error") or body.get("message") or resp.reason or f"HTTP {status}")
        if not body.get("error") and isinstance(body.get("errors"), dict):  # v1 webhooks: {field: [messages]}
            text = "; ".join(f"{key}: {', '.join(map(str, msgs if isinstance(msgs, list) else [msgs]))}"
                             for key, msgs in body["errors"].items()) or text
        if body.get("error_info") and status in (400, 422):
            text = f"{text} ({body['error_info']})"
        text = _scrub(text, self._secrets)
        code = str(body.get("code") or body.get("error_code") or "")
        if status == 404:
            return NotFound(f"Pipedrive has no such record ({method} {path}): {text}", code=code)
        if status in (400, 422):
            return ConnectorError(f"Pipedrive rejected the data ({status}): {text}", permanent=True, status=status,
                                  code=code)
        return http.status_error(SYSTEM, status, text, retry_after=retry_after, code=code)

    @staticmethod
    def _ambiguous(method: str, path: str, reason: str, *, status: int | None = None,
                   retry_after: float | None = None) -> ConnectorError:
        exc = ConnectorError(
            f"Pipedrive {reason} during {method} {path}; the record may or may not have been created, "
            "so look for it before trying again.",
            permanent=False, status=status, retry_after=retry_after, code="ambiguous")
        exc.ambiguous = True
        return exc

    def request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                json: Any = None) -> dict[str, Any]:
        """One API call, paced by the shared limiter; returns Pipedrive's full envelope."""
        method = method.upper()
        path = self._path(path)
        cost, search = operation_cost(method, path)
        idempotent = method in IDEMPOTENT
        failures = throttles = 0
        reauthorised = False
        while True:
            self._token_fresh()
            self.limiter.acquire(cost=cost, search=search)
            started = time.monotonic()
            try:
                resp = http.request(self.session, method, self.base_url + path, system=SYSTEM, timeout=self.timeout, params=params,
                                    json=json, headers=self._auth_headers(), allow_redirects=False)
            except ConnectorError as exc:
                if exc.permanent:
                    raise
                if not idempotent and not http.never_sent(exc):
                    raise self._ambiguous(method, path, "did not answer (the connection failed or timed out)") from exc
                if failures >= self.max_retries:
                    raise
                delay = self._backoff(failures)
                failures += 1
                log.warning("Pipedrive %s %s: %s; retry %d in %.1f s", method, path, exc.message, failures, delay)
                self._sleep(delay)
                continue
            status = resp.status_code
            with self._stats_lock:  # what this client spent, for the run's report
                self.stats["calls"] += 1
                if status != 429:
                    self.stats["tokens"] += cost
            log.debug("Pipedrive %s %s -> %s in %.0f ms", method, path, status, (time.monotonic() - started) * 1000)
            self.limiter.observe(resp.headers, search=search)
            if 200 <= status < 300:
                return _body(resp) or {"success": True, "data": None}
            if status == 401 and self.auth == "oauth" and not reauthorised:
                reauthorised = True
                self._refresh(stale_token=self.access_token)
                continue
            retry_after = http.retry_after_seconds(resp.headers.get("Retry-After"))
            if status == 429:
                daily_left = header_int(resp.headers, DAILY_REMAINING)
                if daily_left is not None and daily_left < cost:
                    remaining, limit, resets_at = self.limiter.budget()
                    raise self.limiter.exhausted(min(remaining, daily_left), limit, resets_at)
                pause = self.limiter.throttled(resp.headers, retry_after, search=search)
                if pause > self.limiter.max_wait:  # no burst lasts that long: treat it like the daily budget
                    resets_at = datetime.now(UTC) + timedelta(seconds=pause)
                    raise BudgetExhausted(
                        f"Pipedrive asked us to pause for {math.ceil(pause / 60)} minutes (HTTP 429); syncing "
                        f"resumes at {resets_at:%Y-%m-%d %H:%M} UTC.", resets_at=resets_at)
                if throttles >= self.max_throttled_retries:
                    raise ConnectorError("Pipedrive kept answering 'too many requests'; the run will retry later.",
                                         permanent=False, retry_after=pause, status=429, code="rate_limited")
                throttles += 1
                log.warning("Pipedrive %s %s: 429 too many requests; all workers pause %.1f s", method, path, pause)
                continue  # acquire() waits out the shared pause
            if status >= 500 or status == 408:
                if not idempotent:
                    raise self._ambiguous(method, path, f"failed with HTTP {status}", status=status,
                                          retry_after=retry_after)
                if failures < self.max_retries and (retry_after or 0) <= self.limiter.max_wait:
                    delay = self._backoff(failures, retry_after)
                    failures += 1
                    log.warning("Pipedrive %s %s: HTTP %s; retry %d in %.1f s", method, path, status, failures, delay)
                    self._sleep(delay)
                    continue
            raise self._error(resp, method, path)

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

    # -- paging ------------------------------------------------------------------------------

    def iter_pages(self, path: str, *, params: dict[str, Any] | None = None) -> Iterator[list[dict[str, Any]]]:
        """Every page of a collection (limit=500): v2 cursors, v1 start/limit offsets."""
        path = self._path(path)
        params = dict(params or {})
        params.setdefault("limit", PAGE_LIMIT)
        if not path.startswith("/api/v2/"):
            start = int(params.pop("start", 0))
            while True:
                envelope = self.request("GET", path, params={**params, "start": start})
                items = envelope.get("data") or []
                if items:
                    yield items
                extra = envelope.get("additional_data") or {}
                paging = extra.get("pagination") or extra
                if not paging.get("more_items_in_collection") or not items:
                    return
                next_start = paging.get("next_start")
                next_start = start + len(items) if next_start is None else int(next_start)
                if next_start <= start:
                    return
                start = next_start
        cursor = params.pop("cursor", None)
        while True:
            envelope = self.request("GET", path, params={**params, **({"cursor": cursor} if cursor else {})})
            data = envelope.get("data")
            items = data.get("items", []) if isinstance(data, dict) else (data or [])
            if items:
                yield items
            next_cursor = (envelope.get("additional_data") or {}).get("next_cursor")
            if not next_cursor:
                return
            if next_cursor == cursor:
                raise ConnectorError("Pipedrive returned the same page twice; paging stopped.", permanent=False)
            cursor = next_cursor

    # -- entities ----------------------------------------------------------------------------

    @staticmethod
    def _entity(entity: str) -> str:
        if entity not in ENTITIES:
            raise ConnectorError(f"Unknown Pipedrive entity {entity!r} (expected one of {', '.join(ENTITIES)}).",
                                 permanent=True)
        return entity

    def entity_create(self, entity: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.request("POST", f"/api/v2/{self._entity(entity)}", json=body).get("data") or {}

    def entity_update(self, entity: str, id: int | str, body: dict[str, Any]) -> dict[str, Any]:
        """PATCH; a record deleted in Pipedrive raises NotFound, whether Pipedrive answers 404 or 200
        with `is_deleted: true` (soft-deleted records live on for 30 days, wire doc §1.1)."""
        path = f"/api/v2/{self._entity(entity)}/{quote(str(id), safe='')}"
        data = self.request("PATCH", path, json=body).get("data") or {}
        if data.get("is_deleted") is True:
            raise NotFound(f"Pipedrive has no such record (PATCH {path}): it is deleted.", code="deleted",
                           status=200)
        return data

    def entity_get(self, entity: str, id: int | str) -> dict[str, Any] | None:
        try:
            return self.request("GET", f"/api/v2/{self._entity(entity)}/{quote(str(id), safe='')}").get("data")
        except NotFound:
            return None

    def entity_delete(self, entity: str, id: int | str) -> bool:
        """True when deleted now, False when it was already gone (a retried DELETE is not an error)."""
        try:
            self.request("DELETE", f"/api/v2/{self._entity(entity)}/{quote(str(id), safe='')}")
        except NotFound:
            return False
        return True

    def entity_pages(self, entity: str, *, updated_since: datetime | str | None = None,
                     custom_field_keys: list[str] | None = None, sort_by: str = "id") -> Iterator[list[dict[str, Any]]]:
        """Pages of records, oldest first by `sort_by`; with `updated_since` only those changed since.

        v2 /products has no updated_since filter: its pages come newest-first by update_time and stop
        at the first older record, so incremental product reads stay bounded."""
        params: dict[str, Any] = {"sort_by": sort_by, "sort_direction": "asc"}
        if custom_field_keys and len(custom_field_keys) <= 15 and entity != "activities":
            params["custom_fields"] = ",".join(custom_field_keys)  # at most 15; more means all fields
        path = f"/api/v2/{self._entity(entity)}"
        if updated_since and entity == "products":
            return self._pages_changed_since(path, params, _rfc3339(updated_since))
        if updated_since:
            params["updated_since"] = _rfc3339(updated_since)
        return self.iter_pages(path, params=params)

    def _pages_changed_since(self, path: str, params: dict[str, Any], since: str) -> Iterator[list[dict[str, Any]]]:
        threshold = datetime.fromisoformat(since.replace("Z", "+00:00"))
        params = {**params, "sort_by": "update_time", "sort_direction": "desc"}
        for page in self.iter_pages(path, params=params):
            fresh = [r for r in page if r.get("update_time")
                     and datetime.fromisoformat(str(r["update_time"]).replace("Z", "+00:00")) >= threshold]
            if fresh:
                yield fresh
            if len(fresh) < len(page):
                return

    def entity_search_field(self, entity: str, field_key: str, term: str | int) -> list[dict[str, Any]]:
        """Records whose custom field `field_key` equals `term` exactly (case-sensitive)."""
        term = str(term)
        if not term.strip():
            return []
        params = {"term": term, "entity_type": ENTITIES[self._entity(entity)], "field": field_key, "match": "exact"}
        found = []
        for page in self.iter_pages("/api/v2/itemSearch/field", params=params):
            for entry in page:
                found.append(entry["item"] if isinstance(entry.get("item"), dict) else entry)
        return found

    # -- v1: notes, webhooks, current user ---------------------------------------------------

    def note_create(self, *, content: str, org_id: int | None = None, deal_id: int | None = None,
                    person_id: int | None = None) -> dict[str, Any]:
        targets = {k: v for k, v in {"org_id": org_id, "deal_id": deal_id, "person_id": person_id}.items() if v}
        if not targets:
            raise ConnectorError("A Pipedrive note needs an organization, deal or person.", permanent=True)
        return self.request("POST", "/v1/notes", json={"content": content, **targets}).get("data") or {}

    def note_update(self, id: int | str, *, content: str) -> dict[str, Any]:
        """PUT a note's content; a note deleted in Pipedrive raises NotFound."""
        return self.request("PUT", f"/v1/notes/{quote(str(id), safe='')}", json={"content": content}).get("data") or {}

    def note_delete(self, id: int | str) -> bool:
        try:
            self.request("DELETE", f"/v1/notes/{quote(str(id), safe='')}")
        except NotFound:
            return False
        return True

    def note_pages(self, *, org_id: int | None = None, deal_id: int | None = None) -> Iterator[list[dict[str, Any]]]:
        params = {k: v for k, v in {"org_id": org_id, "deal_id": deal_id}.items() if v}
        return self.iter_pages("/v1/notes", params=params)

    # -- deal products (v2) ------------------------------------------------------------------

    def deal_product_add(self, deal_id: int, body: dict[str, Any]) -> dict[str, Any]:
        return self.request("POST", f"/api/v2/deals/{int(deal_id)}/products", json=body).get("data") or {}

    def deal_product_update(self, deal_id: int, attachment_id: int, body: dict[str, Any]) -> dict[str, Any]:
        path = f"/api/v2/deals/{int(deal_id)}/products/{int(attachment_id)}"
        return self.request("PATCH", path, json=body).get("data") or {}

    def deal_product_delete(self, deal_id: int, attachment_id: int) -> bool:
        try:
            self.request("DELETE", f"/api/v2/deals/{int(deal_id)}/products/{int(attachment_id)}")
        except NotFound:
            return False
        return True

    def deal_product_pages(self, deal_id: int) -> Iterator[list[dict[str, Any]]]:
        return self.iter_pages(f"/api/v2/deals/{int(deal_id)}/products")

    def webhook_list(self) -> list[dict[str, Any]]:
        return self.request("GET", "/v1/webhooks").get("data") or []

    def webhook_create(self, *, subscription_url: str, event_action: str, event_object: str, http_auth_user: str,
                       http_auth_password: str, name: str, version: str = "2.0") -> dict[str, Any]:
        body = {"subscription_url": subscription_url, "event_action": event_action, "event_object": event_object,
                "http_auth_user": http_auth_user, "http_auth_password": http_auth_password, "version": version,
                "name": name}
        try:
            return self.request("POST", "/v1/webhooks", json=body).get("data") or {}
        except ConnectorError as exc:
            scrubbed = _scrub(exc.message, [http_auth_password])
            if scrubbed == exc.message:
                raise
            exc.message = scrubbed
            exc.args = (scrubbed,)
            raise

    def webhook_delete(self, id: int | str) -> bool:
        try:
            self.request("DELETE", f"/v1/webhooks/{quote(str(id), safe='')}")
        except NotFound:
            return False
        return True

    def users_me(self) -> dict[str, Any]:
        return self.request("GET", "/v1/users/me").get("data") or {}

    # -- contract ----------------------------------------------------------------------------

    def budget(self) -> tuple[int, int, datetime]:
        """(remaining tokens today, daily limit, resets_at) as the shared limiter knows them."""
        return self.limiter.budget()

    def test_connection(self) -> PingResult:
        try:
            me = self.users_me()
        except BudgetExhausted as exc:
            return PingResult(False, exc.message, {"budget_remaining": exc.remaining,
                                                   "resets_at": exc.resets_at.isoformat()})
        except ConnectorError as exc:
            return PingResult(False, exc.message, {"kind": exc.kind, "status": exc.status})
        # Learned for the shared limiter key only from Pipedrive's own host; elsewhere it is just shown.
        if self.host_trusted and me.get("company_id") and str(me["company_id"]) != str(self.company_id or ""):
            self._connection_options_update(company_id=me["company_id"])
        remaining, limit, resets_at = self.budget()
        user = me.get("name") or me.get("email") or "unknown user"
        company = me.get("company_name") or me.get("company_domain") or "Pipedrive"
        message = (f"Connected to {company} as {user}. Plan {self.plan.title()} × {self.seats} seat"
                   f"{'s' if self.seats != 1 else ''}; {remaining:,} of {limit:,} API tokens left today "
                   f"(resets {resets_at:%H:%M} UTC).")
        return PingResult(True, message, {
            "company_id": me.get("company_id"),
            "company_domain": me.get("company_domain"),
            "company_name": me.get("company_name"),
            "user": user,
            "user_email": me.get("email"),
            "user_id": me.get("id"),
            "plan": self.plan,
            "seats": self.seats,
            "auth": self.auth,
            "budget_remaining": remaining,
            "budget_limit": limit,
            "budget_resets_at": resets_at.isoformat(),
        })
