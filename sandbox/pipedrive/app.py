"""Local Pipedrive simulator: API v2 entities, a few v1 endpoints, OAuth, rate limits, webhooks.

Follows ../shared/docs/wire/pipedrive.md. Imports nothing from the product. One process,
threads; state lives in memory per company (each guarded by its own lock) and is deterministic
(seeded). Served by `python -m sandbox` under the prefixes /api/v2/, /api/v1/, /v1/ and /oauth/.

Auth: `x-api-token: <company api_token>` or `Authorization: Bearer <OAuth access token>`. Every
authenticated response carries x-ratelimit-limit, x-ratelimit-remaining, x-ratelimit-reset,
x-daily-ratelimit-token-limit and x-daily-ratelimit-token-remaining (unless the company's
daily_headers is off) and a Date header from the company's clock; a 429 adds Retry-After.

Control API (no auth, no token cost), all under /_sandbox/pipedrive/ (JSON in and out):

  POST   companies                        create a company. Body (all optional): {name, plan
                                          ("lite"|"growth"|"premium"|"ultimate"|"essential"|"advanced"|
                                          "professional"|"power"|"enterprise", default "growth"), seats (1),
                                          unlimited (false: no burst and no daily limit), search_index_delay_s (0),
                                          access_token_ttl_s (3600), refresh_grace_s (0), rotate_refresh_tokens
                                          (true), webhook_time_factor (1.0), webhook_timeout_s (10), topup_tokens (0),
                                          daily_token_limit (null = 30,000 x plan multiplier x seats + top-ups),
                                          burst_limit (null = the plan's API-token requests per 2 s),
                                          currency ("EUR"), daily_headers (true: send the undocumented
                                          x-daily-ratelimit-token-* headers), deleted_patch ("404", or "200":
                                          a PATCH to a deleted record answers 200 with is_deleted true),
                                          api_token, company_domain,
                                          oauth_client: {client_id?, client_secret?, redirect_uri}}
                                          -> 201 {company_id, name, company_domain, api_token, user_id,
                                             user{id,name,email}, settings{...}, now,
                                             oauth_clients[{client_id, client_secret, redirect_uri}]}
  GET    companies                        -> {companies: [<as above>]}
  GET    companies/{cid}                  -> <as above>
  POST   companies/{cid}/settings         any of the settings keys above -> settings (PATCH works too)
  POST   companies/{cid}/clock            {advance_s: N} and/or {set: "2026-11-23T23:59:00Z"} -> {now, offset_s}
                                          (the company clock drives timestamps, OAuth expiry, the daily reset)
  GET    companies/{cid}/stats            -> {requests, by_status{code: n}, calls_by_operation{operationId: n},
                                             rate_limited, rate_limited_by_kind{burst,search,daily,injected},
                                             after_commit_faults, tokens_used_today, tokens_used_total,
                                             daily_token_limit, max_2s_window, max_2s_window_by_token{key:
                                             {max_2s_admitted, max_2s_arrivals, max_2s_search}}, webhook_deliveries}
  POST   companies/{cid}/stats/reset      zero the counters (not the daily budget)
  GET    companies/{cid}/records/{entity} every record incl. deleted ones (`is_deleted`), as the API renders
                                          it; entity: organizations|persons|deals|products|activities|notes|
                                          deal_products; ?include_deleted=0 -> {entity, count, records[]}
  GET    companies/{cid}/fields/{entity}  -> {fields: [v2 field objects]}
  POST   companies/{cid}/fields/{entity}  create a custom field as in the UI: {field_name, field_type, options?}
  POST   companies/{cid}/oauth_clients    {client_id?, client_secret?, redirect_uri} -> 201 client
  POST   companies/{cid}/oauth/expire     expire every access token of the company now -> {expired: n}
  POST   companies/{cid}/ui/{entity}      a salesperson creates a record in the UI (change_source "app");
                                          body: v2 fields (custom values under custom_fields), or a list of them
  PATCH  companies/{cid}/ui/{entity}/{id} a salesperson edits it (POST works too) -> the record
  DELETE companies/{cid}/ui/{entity}/{id} a salesperson deletes it
  POST   companies/{cid}/ui/deals/{id}/win   the deal's Won button (…/lose with {lost_reason?}, …/reopen):
                                          status and won/lost/close times as Pipedrive sets them, one change
                                          event (change_source "app") -> the deal
  GET    companies/{cid}/webhooks         subscriptions with ban state
  GET    companies/{cid}/webhooks/deliveries[?webhook_id=]  -> {count, pending, deliveries: [{seq, company_id,
                                          webhook_id, url, version, attempt, status, outcome (delivered|failed|
                                          banned|deleted: 3 days without a success), error, duration_ms, time, action, entity, entity_id, event_id,
                                          change_source}]}
  GET    webhooks/deliveries              the same for all companies
  POST   webhooks/drain                   {timeout_s} wait until no delivery is queued or in flight -> {pending}
  GET|POST commit_faults                  {fraction (alias fault_after_commit): 0..1, mode: "503"|"drop"|"mixed"|
                                          "timeout"|"any", timeout_seconds (5), seed}: that share of successful
                                          API writes (POST/PATCH/PUT/DELETE) is applied, then answered 503, the
                                          connection dropped, or held past the client's timeout and dropped
                                          ("mixed": 503 or drop; "any": any of the three) -> the settings and
                                          counts {method: {503|drop|timeout: n}} (also at fault_after_commit)
  GET    info                             {costs_source, routes, unauthorized, companies}
(`/_sandbox/pipedrive/faults` is core.py's generic 5xx/429/slow/drop injection; `/_sandbox/reset` clears all.)
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from functools import partial
from typing import Any
from urllib.parse import parse_qs, urlencode

from sandbox.core import Request, Response, json_response

from . import api, deal_products, field_defs, v1
from .control import Control
from .costs import load_costs
from .entities import ENTITIES
from .errors import ApiError, bad_request, error_body
from .limits import RATE_LIMIT_BODY
from .search import field_search, item_search, search_entity
from .state import OAuthError, Registry
from .webhooks import WebhookHub

UNAUTHORIZED = {"success": False, "error": "unauthorized access", "errorCode": 401,
                "error_info": "Please check developers.pipedrive.com"}
WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})


@dataclass
class Route:
    method: str
    api: str
    template: str
    handler: Callable[[api.Ctx], tuple[int, Any]]
    operation_id: str
    cost: int
    search: bool
    segments: tuple[str | None, ...]
    names: tuple[str, ...]


class Router:
    """(method, api, segment count) -> candidate routes, literal ones first; O(1) in practice."""

    def __init__(self, routes: list[Route]):
        self.routes = routes
        self.table: dict[tuple[str, str, int], list[Route]] = {}
        for route in routes:
            self.table.setdefault((route.method, route.api, len(route.segments)), []).append(route)
        for candidates in self.table.values():
            candidates.sort(key=lambda r: len(r.names))

    @staticmethod
    def split(path: str) -> tuple[str, list[str]] | None:
        if path.startswith("/api/v2/"):
            return "v2", path[8:].strip("/").split("/")
        if path.startswith("/api/v1/"):
            return "v1", path[8:].strip("/").split("/")
        if path.startswith("/v1/"):
            return "v1", path[4:].strip("/").split("/")
        return None

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        split = self.split(path)
        if split is None:
            return None
        version, parts = split
        for route in self.table.get((method, version, len(parts)), ()):
            params = {}
            for want, got in zip(route.segments, parts, strict=True):
                if want is None:
                    params[route.names[len(params)]] = got
                elif want != got:
                    break
            else:
                return route, params
        return None


def build_routes(costs: dict[tuple[str, str, str], tuple[str, int]]) -> list[Route]:
    specs: list[tuple[str, str, str, Callable[[api.Ctx], tuple[int, Any]]]] = []
    for spec in ENTITIES.values():
        base = f"/{spec.plural}"
        specs += [
            ("GET", "v2", base, partial(api.list_entities, spec=spec)),
            ("POST", "v2", base, partial(api.add_entity, spec=spec)),
            ("GET", "v2", base + "/{id}", partial(api.get_entity, spec=spec)),
            ("PATCH", "v2", base + "/{id}", partial(api.patch_entity, spec=spec)),
            ("DELETE", "v2", base + "/{id}", partial(api.remove_entity, spec=spec)),
        ]
        if spec.search_fields:
            specs.append(("GET", "v2", base + "/search", partial(search_entity, spec=spec)))
        field_base = f"/{spec.name}Fields"
        specs += [
            ("GET", "v2", field_base, partial(field_defs.list_fields, entity=spec.name)),
            ("GET", "v2", field_base + "/{field_code}", partial(field_defs.get_field, entity=spec.name)),
        ]
        if spec.name != "activity":  # the v2 spec has no write endpoints for activityFields
            specs += [
                ("POST", "v2", field_base, partial(field_defs.add_field, entity=spec.name)),
                ("PATCH", "v2", field_base + "/{field_code}", partial(field_defs.patch_field, entity=spec.name)),
                ("DELETE", "v2", field_base + "/{field_code}", partial(field_defs.remove_field, entity=spec.name)),
                ("POST", "v2", field_base + "/{field_code}/options", partial(field_defs.add_field_options, entity=spec.name)),
                ("PATCH", "v2", field_base + "/{field_code}/options",
                 partial(field_defs.patch_field_options, entity=spec.name)),
                ("DELETE", "v2", field_base + "/{field_code}/options",
                 partial(field_defs.remove_field_options, entity=spec.name)),
            ]
    specs += [
        ("GET", "v2", "/deals/{id}/products", deal_products.list_deal_products),
        ("POST", "v2", "/deals/{id}/products", deal_products.add_deal_product),
        ("DELETE", "v2", "/deals/{id}/products", deal_products.delete_many_deal_products),
        ("POST", "v2", "/deals/{id}/products/bulk", deal_products.add_many_deal_products),
        ("PATCH", "v2", "/deals/{id}/products/{product_attachment_id}", deal_products.patch_deal_product),
        ("DELETE", "v2", "/deals/{id}/products/{product_attachment_id}", deal_products.remove_deal_product),
        ("GET", "v2", "/itemSearch", item_search),
        ("GET", "v2", "/itemSearch/field", field_search),
        ("GET", "v1", "/users/me", v1.users_me),
        ("GET", "v1", "/notes", v1.list_notes),
        ("POST", "v1", "/notes", v1.add_note),
        ("GET", "v1", "/notes/{id}", v1.get_note),
        ("PUT", "v1", "/notes/{id}", v1.put_note),
        ("DELETE", "v1", "/notes/{id}", v1.remove_note),
        ("GET", "v1", "/webhooks", v1.list_webhooks),
        ("POST", "v1", "/webhooks", v1.add_webhook),
        ("DELETE", "v1", "/webhooks/{id}", v1.remove_webhook),
    ]
    routes = []
    for method, version, template, handler in specs:
        operation_id, cost = costs[(method, version, template)]
        parts = template.strip("/").split("/")
        segments = tuple(None if p.startswith("{") else p for p in parts)
        names = tuple(p[1:-1] for p in parts if p.startswith("{"))
        routes.append(Route(method, version, template, handler, operation_id, cost,
                            template.endswith("/search") or template.startswith("/itemSearch"), segments, names))
    return routes


@dataclass
class CommitFaults:
    """Writes applied, then answered 503 or with a dropped connection ("we never heard")."""

    fraction: float = 0.0
    mode: str = "mixed"
    timeout_seconds: float = 5.0
    seed: int = 0
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # method -> fault -> n
    _rng: random.Random = field(default_factory=random.Random, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def configure(self, data: dict[str, Any]) -> None:
        with self._lock:
            if "fault_after_commit" in data:
                data = {**data, "fraction": data["fault_after_commit"]}
            if "fraction" in data:
                fraction = float(data["fraction"])
                if not 0 <= fraction <= 1:
                    raise ValueError("fraction must be between 0 and 1")
                self.fraction = fraction
            if "mode" in data:
                if data["mode"] not in ("503", "drop", "mixed", "timeout", "any"):
                    raise ValueError("mode must be 503, drop, mixed, timeout or any")
                self.mode = data["mode"]
            if "timeout_seconds" in data:
                self.timeout_seconds = float(data["timeout_seconds"])
            self.seed = int(data.get("seed", self.seed))
            self._rng.seed(self.seed)

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            counts = {method: dict(kinds) for method, kinds in self.counts.items()}
        return {"fraction": self.fraction, "mode": self.mode, "timeout_seconds": self.timeout_seconds,
                "seed": self.seed, "counts": counts}

    def draw(self, method: str = "") -> str | None:
        if not self.fraction:
            return None
        with self._lock:
            if self._rng.random() >= self.fraction:
                return None
            if self.mode == "mixed":
                fault = "503" if self._rng.random() < 0.5 else "drop"
            elif self.mode == "any":
                fault = self._rng.choice(("503", "drop", "timeout"))
            else:
                fault = self.mode
            kinds = self.counts.setdefault(method, {})
            kinds[fault] = kinds.get(fault, 0) + 1
            return fault


class PipedriveSimulator:
    name = "pipedrive"
    prefixes = ("/api/v2/", "/api/v1/", "/v1/", "/oauth/")

    def __init__(self, seed: int = 0):
        costs, self.costs_source = load_costs()
        self.router = Router(build_routes(costs))
        self.registry = Registry(seed)
        self.hub = WebhookHub(seed=seed)
        self.commit_faults = CommitFaults()
        self.control_api = Control(self)
        self.unauthorized = 0

    def reset(self) -> None:
        self.registry.reset()
        self.hub.reset()
        self.commit_faults = CommitFaults()
        self.unauthorized = 0

    def control(self, req: Request, subpath: str) -> Response:
        return self.control_api.dispatch(req, subpath)

    # -- the API --------------------------------------------------------------------------------

    def handle(self, req: Request) -> Response | None:
        if req.path.startswith("/oauth/"):
            return self._oauth(req)
        auth = self.registry.authenticate(req.headers)
        if auth is None:
            self.unauthorized += 1
            return json_response(UNAUTHORIZED, 401)
        company, key, oauth = auth
        found = self.router.match(req.method, req.path)
        route, params = found if found else (None, {})
        body, body_error = None, None
        if req.body and "x-www-form-urlencoded" not in req.headers.get("content-type", ""):
            try:
                body = json.loads(req.body)
            except ValueError as exc:
                body_error = bad_request(f"Invalid JSON in request body: {exc}")
        with company.lock:
            decision = company.limiter.admit(key, oauth, route.search if route else False,
                                             route.cost if route else 0, time.monotonic(), company.now())
            stats = company.stats
            stats.requests += 1
            if not decision.ok:
                stats.rejected[decision.kind] += 1
                stats.by_status[429] += 1
                return json_response(RATE_LIMIT_BODY, 429, self._headers(company, decision.headers))
            if route is None:
                stats.by_status[404] += 1
                return json_response(error_body(f"Unknown method {req.method} {req.path}"), 404,
                                     self._headers(company, decision.headers))
            stats.by_operation[route.operation_id] += 1
            try:
                if body_error is not None:
                    raise body_error
                status, payload = route.handler(api.Ctx(company, self.hub, req, params, body))
            except ApiError as exc:
                status, payload = exc.status, exc.body
            stats.by_status[status] += 1
            deal_id = self._deal_of(route, params, status, payload)
            if deal_id:  # what each deal cost, by its id (the bench's tokens per order)
                stats.tokens_by_deal[deal_id] += route.cost
            headers = self._headers(company, decision.headers)
            fault = None
            if req.method in WRITE_METHODS and 200 <= status < 300 and not route.search:
                fault = self.commit_faults.draw(req.method)
                if fault:
                    stats.after_commit_faults += 1
        if fault == "drop":
            return None
        if fault == "timeout":  # applied, then no answer before the client gives up
            time.sleep(self.commit_faults.timeout_seconds)
            return None
        if fault == "503":
            return json_response({"success": False, "error": "Service Unavailable", "errorCode": 503,
                                  "error_info": "Please check developers.pipedrive.com", "data": None,
                                  "additional_data": None}, 503, headers)
        return json_response(payload, status, headers)

    @staticmethod
    def _deal_of(route: Route, params: dict[str, str], status: int, payload: Any) -> int | None:
        if route.api != "v2" or not route.template.startswith("/deals/{id}") and route.template != "/deals":
            return None
        if params.get("id", "").isdigit():
            return int(params["id"])
        data = payload.get("data") if isinstance(payload, dict) else None
        if route.method == "POST" and 200 <= status < 300 and isinstance(data, dict) and data.get("id"):
            return int(data["id"])
        return None

    @staticmethod
    def _headers(company, headers: dict[str, str]) -> dict[str, str]:
        """The company's clock as the Date header (clients derive the daily reset from it); the daily
        budget headers only when the company sends them (they are undocumented, wire doc §3)."""
        headers = dict(headers)
        if not company.daily_headers:
            headers = {k: v for k, v in headers.items() if not k.startswith("x-daily-")}
        headers["Date"] = formatdate(company.now(), usegmt=True)
        return headers

    def injected_429(self, req: Request) -> Response:
        """A realistic burst 429 for core.py's injected rate-limit faults (costs no tokens)."""
        auth = self.registry.authenticate(req.headers)
        if auth is None:
            headers = {"x-ratelimit-limit": "40", "x-ratelimit-remaining": "0", "x-ratelimit-reset": "2",
                       "Retry-After": "2"}
        else:
            company, key, oauth = auth
            with company.lock:
                headers = company.limiter.burst_429_headers(key, oauth, time.monotonic(), company.now())
                company.stats.requests += 1
                company.stats.rejected["injected"] += 1
                company.stats.by_status[429] += 1
            headers = self._headers(company, headers)
        return json_response(RATE_LIMIT_BODY, 429, headers)

    # -- OAuth ----------------------------------------------------------------------------------

    def _oauth(self, req: Request) -> Response:
        try:
            if req.path.rstrip("/") == "/oauth/authorize" and req.method == "GET":
                client_id = req.arg("client_id") or ""
                client, code = self.registry.authorize(client_id, req.arg("redirect_uri"))
                query = {"code": code}
                if req.arg("state") is not None:
                    query["state"] = req.arg("state")
                sep = "&" if "?" in client.redirect_uri else "?"
                return Response(302, b"", {"Location": f"{client.redirect_uri}{sep}{urlencode(query)}"})
            if req.path.rstrip("/") == "/oauth/token" and req.method == "POST":
                form = {k: v[-1] for k, v in parse_qs(req.body.decode(errors="replace")).items()}
                api_domain = f"http://{req.headers.get('host', '127.0.0.1')}"
                return json_response(self.registry.token(form, req.headers.get("authorization", ""), api_domain))
        except OAuthError as exc:
            return json_response({"success": False, "error": exc.error, "error_description": exc.description},
                                 exc.status)
        return json_response({"success": False, "error": "not_found", "error_description": "Unknown OAuth path"}, 404)
