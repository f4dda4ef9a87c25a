"""Companies (each with its own clock, records, fields, limits) and credentials: API tokens and OAuth.

The company is identified by the credential: `x-api-token`, or `Authorization: Bearer` with an
OAuth access token (wire doc §4). OAuth grants live here too: authorization codes valid 5 minutes,
access tokens with a configurable lifetime, refresh tokens that rotate by default, and a configurable
grace period before a refresh invalidates the previous access token.
"""

from __future__ import annotations

import base64
import hashlib
import random
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .entities import ENTITIES
from .fields import FieldSet
from .limits import PLANS, Limiter
from .store import Store

CODE_TTL_S = 300
DEFAULT_SCOPE = ("base deals:full contacts:full products:full activities:full users:read search:read "
                 "admin deal-fields:full product-fields:full contact-fields:full")


@dataclass
class Stats:
    by_status: Counter = field(default_factory=Counter)
    by_operation: Counter = field(default_factory=Counter)
    rejected: Counter = field(default_factory=Counter)  # burst | search | daily | injected
    tokens_by_deal: Counter = field(default_factory=Counter)  # tokens charged by calls on one deal (bench)
    requests: int = 0
    after_commit_faults: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "by_status": {str(k): v for k, v in sorted(self.by_status.items())},
            "calls_by_operation": dict(sorted(self.by_operation.items())),
            "rate_limited": sum(self.rejected.values()),
            "rate_limited_by_kind": dict(self.rejected),
            "after_commit_faults": self.after_commit_faults,
            "tokens_by_deal": {str(k): v for k, v in sorted(self.tokens_by_deal.items())},
        }


@dataclass
class OAuthClient:
    client_id: str
    client_secret: str
    redirect_uri: str
    company_id: int


@dataclass
class Grant:
    id: int
    company_id: int
    client_id: str
    scope: str
    refresh_token: str
    access_tokens: list[str] = field(default_factory=list)


@dataclass
class AccessToken:
    token: str
    company_id: int
    grant_id: int
    expires_at: float  # company clock


class Company:
    def __init__(self, company_id: int, name: str, domain: str, user_id: int, api_token: str, seed: str):
        self.lock = threading.Lock()
        self.id = company_id
        self.name = name
        self.domain = domain
        self.seed = seed
        self.user_id = user_id
        self.user_name = f"{name} Admin"
        self.user_email = f"admin@{domain}.example"
        self.api_token = api_token
        self.currency = "EUR"
        self.clock_offset = 0.0
        self.search_index_delay_s = 0.0
        self.access_token_ttl_s = 3600.0
        self.refresh_grace_s = 0.0
        self.rotate_refresh_tokens = True
        self.webhook_time_factor = 1.0
        self.webhook_timeout_s = 10.0
        self.daily_headers = True  # send x-daily-ratelimit-token-* (undocumented: real clients must cope without)
        self.deleted_patch = "404"  # a PATCH to a deleted record: "404", or "200" with is_deleted: true
        self.limiter = Limiter()
        self.stats = Stats()
        self.stores: dict[str, Store] = {name: Store() for name in ENTITIES}
        self.stores["note"] = Store()
        self.stores["deal_product"] = Store()
        self.deal_products: dict[int, list[int]] = {}  # deal id -> attachment ids
        self.fields: dict[str, FieldSet] = {name: FieldSet(name) for name in ENTITIES}
        self.field_counter = 0
        self.option_counter = 0
        self.webhooks: dict[int, dict[str, Any]] = {}
        self.next_webhook_id = 1

    def now(self) -> float:
        return time.time() + self.clock_offset

    @property
    def host(self) -> str:
        return f"{self.domain}.pipedrive.com"

    def configure(self, data: dict[str, Any]) -> None:
        if "plan" in data:
            plan = str(data["plan"]).lower()
            if plan not in PLANS:
                raise ValueError(f"unknown plan {plan!r}; one of {sorted(PLANS)}")
            self.limiter.plan = plan
        if "seats" in data:
            self.limiter.seats = max(1, int(data["seats"]))
        if "unlimited" in data:
            self.limiter.unlimited = bool(data["unlimited"])
        if "topup_tokens" in data:
            self.limiter.topup_tokens = int(data["topup_tokens"])
        if "daily_token_limit" in data:
            limit = data["daily_token_limit"]
            self.limiter.limit_override = None if limit is None else int(limit)
        if "burst_limit" in data:
            burst = data["burst_limit"]
            self.limiter.burst_override = None if burst is None else max(1, int(burst))
        for key in ("search_index_delay_s", "access_token_ttl_s", "refresh_grace_s", "webhook_time_factor",
                    "webhook_timeout_s"):
            if key in data:
                setattr(self, key, float(data[key]))
        if "rotate_refresh_tokens" in data:
            self.rotate_refresh_tokens = bool(data["rotate_refresh_tokens"])
        if "currency" in data:
            self.currency = str(data["currency"])
        if "daily_headers" in data:
            self.daily_headers = bool(data["daily_headers"])
        if "deleted_patch" in data:
            if str(data["deleted_patch"]) not in ("404", "200"):
                raise ValueError("deleted_patch must be 404 or 200")
            self.deleted_patch = str(data["deleted_patch"])

    def settings(self) -> dict[str, Any]:
        return {
            "plan": self.limiter.plan, "seats": self.limiter.seats, "unlimited": self.limiter.unlimited,
            "topup_tokens": self.limiter.topup_tokens, "search_index_delay_s": self.search_index_delay_s,
            "access_token_ttl_s": self.access_token_ttl_s, "refresh_grace_s": self.refresh_grace_s,
            "rotate_refresh_tokens": self.rotate_refresh_tokens, "webhook_time_factor": self.webhook_time_factor,
            "webhook_timeout_s": self.webhook_timeout_s, "currency": self.currency,
            "daily_headers": self.daily_headers, "deleted_patch": self.deleted_patch,
            "daily_token_limit": self.limiter.daily_limit(),
            "daily_token_limit_override": self.limiter.limit_override,
            "burst_limit": self.limiter.burst_limit(False),
        }

    def user(self) -> dict[str, Any]:
        return {"id": self.user_id, "name": self.user_name, "email": self.user_email}


class OAuthError(Exception):
    def __init__(self, status: int, error: str, description: str):
        super().__init__(description)
        self.status, self.error, self.description = status, error, description


class Registry:
    """Every company and credential of the sandbox; reset() forgets them all."""

    def __init__(self, seed: int = 0):
        self.lock = threading.Lock()
        self.seed = seed
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.rng = random.Random(self.seed)
            self.companies: dict[int, Company] = {}
            self.by_token: dict[str, Company] = {}
            self.clients: dict[str, OAuthClient] = {}
            self.codes: dict[str, tuple[str, int, str, float]] = {}  # code -> client, company, redirect, expiry
            self.grants: dict[int, Grant] = {}
            self.access: dict[str, AccessToken] = {}
            self.refresh: dict[str, int] = {}  # refresh token -> grant id
            self.next_company_id = 13_000_001
            self.next_user_id = 21_000_001
            self.next_grant_id = 1

    def _hex(self, nbytes: int) -> str:
        return f"{self.rng.getrandbits(nbytes * 8):0{nbytes * 2}x}"

    # -- companies ------------------------------------------------------------------------------

    def create_company(self, data: dict[str, Any]) -> Company:
        name = str(data.get("name") or "Sandbox Company")
        with self.lock:
            company_id, user_id = self.next_company_id, self.next_user_id
            self.next_company_id += 1
            self.next_user_id += 1
            slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:30] or "company"
            seed = hashlib.sha1(f"pipedrive-sandbox:{self.seed}:{company_id}".encode()).hexdigest()
            domain = data.get("company_domain") or f"{slug}-{seed[:6]}"
            token = data.get("api_token") or self._hex(20)
            if token in self.by_token:
                raise ValueError("api_token already in use")
            company = Company(company_id, name, domain, user_id, token, seed)
            company.configure({"plan": "growth", **data})
            self.companies[company_id] = company
            self.by_token[token] = company
        client = data.get("oauth_client")
        if client:
            self.add_client(company, client if isinstance(client, dict) else {})
        return company

    def add_client(self, company: Company, data: dict[str, Any]) -> OAuthClient:
        with self.lock:
            client = OAuthClient(
                client_id=str(data.get("client_id") or self._hex(8)),
                client_secret=str(data.get("client_secret") or self._hex(20)),
                redirect_uri=str(data.get("redirect_uri") or "http://127.0.0.1/callback"),
                company_id=company.id,
            )
            self.clients[client.client_id] = client
        return client

    def clients_of(self, company: Company) -> list[OAuthClient]:
        return [c for c in self.clients.values() if c.company_id == company.id]

    def get(self, company_id: int) -> Company | None:
        return self.companies.get(company_id)

    # -- authentication -------------------------------------------------------------------------

    def authenticate(self, headers: dict[str, str]) -> tuple[Company, str, bool] | None:
        """(company, burst-limit key, is_oauth) for the request's credential, or None."""
        token = headers.get("x-api-token")
        if token:
            company = self.by_token.get(token)
            # the whole token, hashed: two tokens sharing a suffix must not share a burst window
            key = "api:" + hashlib.sha256(token.encode()).hexdigest()[:16]
            return (company, key, False) if company else None
        auth = headers.get("authorization", "")
        if auth[:7].lower() == "bearer ":
            access = self.access.get(auth[7:].strip())
            if access is None:
                return None
            company = self.companies.get(access.company_id)
            if company is None or company.now() >= access.expires_at:
                return None
            return company, f"oauth:{access.grant_id}", True
        return None

    # -- OAuth ----------------------------------------------------------------------------------

    def authorize(self, client_id: str, redirect_uri: str | None) -> tuple[OAuthClient, str]:
        client = self.clients.get(client_id)
        if client is None:
            raise OAuthError(400, "invalid_client", "Unknown client_id")
        if redirect_uri and redirect_uri != client.redirect_uri:
            raise OAuthError(400, "invalid_request", "redirect_uri does not match the registered one")
        company = self.companies[client.company_id]
        with self.lock:
            code = f"{company.id}.{self._hex(16)}"
            self.codes[code] = (client.client_id, company.id, client.redirect_uri, company.now() + CODE_TTL_S)
        return client, code

    def _client_from_basic(self, authorization: str) -> OAuthClient:
        if authorization[:6].lower() != "basic ":
            raise OAuthError(401, "invalid_client", "Client authentication failed")
        try:
            client_id, _, secret = base64.b64decode(authorization[6:].strip()).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            raise OAuthError(401, "invalid_client", "Client authentication failed") from None
        client = self.clients.get(client_id)
        if client is None or client.client_secret != secret:
            raise OAuthError(401, "invalid_client", "Client authentication failed")
        return client

    def token(self, form: dict[str, str], authorization: str, api_domain: str) -> dict[str, Any]:
        client = self._client_from_basic(authorization)
        grant_type = form.get("grant_type")
        company = self.companies.get(client.company_id)
        if company is None:
            raise OAuthError(400, "invalid_grant", "The app is not installed")
        with self.lock:
            if grant_type == "authorization_code":
                entry = self.codes.pop(form.get("code", ""), None)
                if entry is None or entry[0] != client.client_id:
                    raise OAuthError(400, "invalid_grant", "Invalid authorization code")
                if company.now() >= entry[3]:
                    raise OAuthError(400, "invalid_grant", "Authorization code has expired")
                redirect = form.get("redirect_uri")
                if redirect and redirect != entry[2]:
                    raise OAuthError(400, "invalid_grant", "redirect_uri does not match")
                grant = Grant(self.next_grant_id, company.id, client.client_id, DEFAULT_SCOPE,
                              f"{company.id}:{company.user_id}:{self._hex(20)}")
                self.next_grant_id += 1
                self.grants[grant.id] = grant
                self.refresh[grant.refresh_token] = grant.id
            elif grant_type == "refresh_token":
                grant_id = self.refresh.get(form.get("refresh_token", ""))
                grant = self.grants.get(grant_id) if grant_id else None
                if grant is None or grant.client_id != client.client_id:
                    raise OAuthError(400, "invalid_grant", "Invalid refresh token")
                if company.rotate_refresh_tokens:
                    del self.refresh[grant.refresh_token]
                    grant.refresh_token = f"{company.id}:{company.user_id}:{self._hex(20)}"
                    self.refresh[grant.refresh_token] = grant.id
                cutoff = company.now() + company.refresh_grace_s
                for old in grant.access_tokens:
                    access = self.access.get(old)
                    if access is not None and access.expires_at > cutoff:
                        access.expires_at = cutoff
                grant.access_tokens = [t for t in grant.access_tokens
                                       if t in self.access and self.access[t].expires_at > company.now()]
            else:
                raise OAuthError(400, "unsupported_grant_type", f"Unsupported grant_type {grant_type!r}")
            token = f"v1u:{self._hex(32)}"
            self.access[token] = AccessToken(token, company.id, grant.id, company.now() + company.access_token_ttl_s)
            grant.access_tokens.append(token)
        return {
            "access_token": token,
            "token_type": "Bearer",
            "refresh_token": grant.refresh_token,
            "scope": grant.scope,
            "expires_in": int(company.access_token_ttl_s),
            "api_domain": api_domain,
        }

    def expire_access_tokens(self, company: Company) -> int:
        with self.lock:
            count = 0
            for access in self.access.values():
                if access.company_id == company.id and access.expires_at > company.now():
                    access.expires_at = company.now()
                    count += 1
            return count
