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

import requests
from django.conf import settings

from connectors import http
from connectors.base import BudgetExhausted, ConnectorError, NotFound, PingResult
from connectors.pipedrive.common import ENTITIES, SYSTEM, _body, _rfc3339, _scrub  # noqa: F401 - fields.py reads ENTITIES here
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
from connectors.pipedrive.oauth import (  # noqa: F401 - oauth_exchange_code is the module's public entry
    REFRESH_MARGIN_S,
    OAuthMixin,
    _credentials_from_tokens,
    _oauth_url,
    _token_request,
    oauth_exchange_code,
)
from connectors.pipedrive.resources import ResourcesMixin

log = logging.getLogger("connectors.pipedrive")

PAGE_LIMIT = 500
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "PATCH", "DELETE"})
# v2 entity (path) name → the singular name used by fields, search and messages.
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




class PipedriveClient(OAuthMixin, ResourcesMixin):
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
        check_url: bool = True,
    ) -> None:
        self.auth = "oauth" if (access_token or refresh_token) else "api_token"
        if self.auth == "api_token" and not api_token:
            raise ConnectorError("A Pipedrive API token is required.", permanent=True)
        self.base_url = self._normalize_base(base_url)
        if check_url:  # off only to read the limiter's state (no call is made; the transport checks every call)
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
