"""SAP S/4HANA simulator: OAuth2 client credentials (or Basic) and the OData V2 service
`/sap/opu/odata/sap/API_BUSINESS_PARTNER/`.

Wire facts (../shared/docs/wire/erps.md §5):
- `POST /sap/bc/sec/oauth2/token` form `grant_type=client_credentials`, authenticated with client_id:secret
  as Basic → {"access_token", "token_type": "Bearer", "expires_in", "scope"}; a bad client → 401
  {"error": "invalid_client"}. API calls carry `Authorization: Bearer <token>` or, as on-premise
  communication users do, `Basic client_id:secret`. An unknown or expired token → 401 with
  `WWW-Authenticate: Bearer error="invalid_token"` and an empty-ish text body (the gateway's, not OData's).
- `$metadata` is EDMX 1.0 (sandbox/s4hana/metadata.py), with entity sets the connector never reads (they
  are served, empty). The service root answers the V2 service document.
- Collections: `{"d": {"results": [...], "__next": "<absolute URL>?...&$skiptoken=N"}}` and `"__count": "N"`
  (a string) with `$inlinecount=allpages`; one entity `{"d": {...}}`. Each entity has `__metadata`
  {id, uri, type, etag for A_BusinessPartner}; Edm.DateTime `/Date(ms)/`, Edm.DateTimeOffset
  `/Date(ms+0000)/`, Edm.Time `PT14H30M00S`; navigations not expanded are `{"__deferred": {"uri"}}`,
  expanded ones `{"results": [...]}` (to-many) or the entity / null (to-one). With `$select`, only the
  selected properties and navigations appear.
- `$filter` (sandbox/odata.py, with `datetime'…'` — an offset or `Z` in it is a 400 — and `time'…'`),
  `$expand` (paths like `to_BusinessPartnerAddress/to_EmailAddress`), `$select`, `$top`, `$skip`,
  `$inlinecount`, `$orderby`, `$format=json`, `$skiptoken`. Server paging: `page_size` rows per answer
  (default 50; `$top` lowers it, never raises it). The next link keeps every option and moves `$skiptoken`.
- Errors are OData V2 bodies: {"error": {"code": "<class>/<nr>", "message": {"lang": "en", "value"},
  "innererror": {"application": {...}, "transactionid", "timestamp", "Error_Resolution": {...},
  "errordetails": []}}}; an unknown entity set or property → 404 / 400 with such a body.
- CSRF: a GET with `x-csrf-token: fetch` is answered with `x-csrf-token: <token>` (counted). Every write
  (POST, PUT, PATCH, MERGE, DELETE on the service) is counted in `writes` and refused: 403
  `x-csrf-token: Required` "CSRF token validation failed" without a fetched token, 405 with one (the
  simulator is read-only; the connector never writes, so `writes` must stay 0).

Choices where the wire doc leaves room: partners are numbered 1000000 + i (contact persons 5000000 + n);
A_BusinessPartner(...)/to_BusinessPartnerContact lists the organization's contact persons (BUR001); the
A_BusinessPartnerContact set also holds persons' other relationships (BUR011, "employee of"), found with
`$filter=BusinessPartnerPerson eq '…'`. The `$skiptoken` is a row offset into the filtered, key-ordered
set. The system clock moves only through the control API.

Control API (under /_sandbox/s4hana/; JSON bodies and answers):
  POST systems                       {client_id, client_secret, partners, contacts_max (0-5), seed, today, time,
                                     extension_fields (partners also carry YY1_… fields and a navigation the
                                     $metadata does not declare, as a newer or extended system would)}
                                     → info (counts: organizations, customers, suppliers, both, contact_persons,
                                     persons, persons_related)
  GET  systems/{id}                  info; DELETE systems/{id}
  POST systems/{id}/clock            {today, time}
  POST systems/{id}/change           {partners: [keys]} or {count, seed}: each renamed (" Ltd" toggled) and
                                     stamped → {changed: [keys]}
  POST systems/{id}/contact_email    {partner, person?, email}: the organization's contact (first one if no
                                     person) gets that work email, the organization is stamped → {partner, person}
  POST systems/{id}/remove_contact   {partner, person?}: the relationship ends; organization and person are
                                     stamped → {partner, person}
  POST systems/{id}/remove_role      {partner, kind: "supplier"|"customer"}: the roles (FLVN00/FLVN01 or
                                     FLCU00/FLCU01) and the Supplier/Customer number go, the partner is stamped
  GET  systems/{id}/partners/{key}   the stored partner, roles, addresses, contacts included
  GET/POST settings                  {page_size, token_ttl_s, latency_ms, error_500 (share of service requests
                                     answered 500 with a V2 error body), seed}
  POST expire_tokens                 every issued token expires now → {expired}
  GET/DELETE stats                   requests, by_set, by_method, by_status, calls, token_grants,
                                     token_failures, token_rejections, basic_auths, csrf_fetches, writes, recent
  POST reset                         this simulator only
(`/_sandbox/s4hana/faults` is core.py's generic 5xx/429/slow/drop injection.)
This package imports no product code.
"""

from __future__ import annotations

import base64
import random
import secrets
import threading
import time
from collections import deque
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode

from sandbox.core import Request, Response, json_response
from sandbox.odata import QueryError, compile_filter, parse_orderby, sort_key
from sandbox.s4hana import metadata
from sandbox.s4hana.control import Control
from sandbox.s4hana.data import System
from sandbox.s4hana.views import SetView, expand_tree, rows_of_set

TOKEN_PATH = "/sap/bc/sec/oauth2/token"
SERVICE_PATH = "/sap/opu/odata/sap/API_BUSINESS_PARTNER/"
PAGE_SIZE = 50
TOKEN_TTL_S = 300
LIST_OPTIONS = {
    "$filter",
    "$select",
    "$expand",
    "$top",
    "$skip",
    "$inlinecount",
    "$orderby",
    "$format",
    "$skiptoken",
}
WRITES = {"POST", "PUT", "PATCH", "MERGE", "DELETE"}


def v2_error(status: int, code: str, message: str, headers: dict[str, Any] | None = None) -> Response:
    now = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    return json_response(
        {
            "error": {
                "code": code,
                "message": {"lang": "en", "value": message},
                "innererror": {
                    "application": {
                        "component_id": "LO-MD-BP-OP",
                        "service_namespace": "/SAP/",
                        "service_id": "API_BUSINESS_PARTNER",
                        "service_version": "0001",
                    },
                    "transactionid": secrets.token_hex(16).upper(),
                    "timestamp": now,
                    "Error_Resolution": {
                        "SAP_Transaction": "Run transaction /IWFND/ERROR_LOG on SAP Gateway hub "
                        "system and search for entries with the timestamp above for more details",
                        "SAP_Note": "See SAP Note 1797736 for error analysis",
                    },
                    "errordetails": [],
                },
            }
        },
        status,
        headers,
    )


def date_literal(text: str) -> str:
    """datetime'2026-07-05T00:00:00' → stored shape; an offset or Z is refused as SAP does."""
    text = text.strip()
    if text.endswith("Z") or "+" in text or text.count("-") > 2:
        raise QueryError(f"Invalid parameter value: the literal datetime'{text}' carries a time zone.")
    try:
        return datetime.fromisoformat(text).replace(microsecond=0).isoformat()
    except ValueError:
        raise QueryError(f"Invalid parameter value: datetime'{text}'.") from None


class S4HanaSimulator:
    name = "s4hana"
    prefixes = ("/sap/",)

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.systems: dict[str, System] = {}
            self.tokens: dict[str, tuple[str, float]] = {}  # token → (client_id, expires_at)
            self.csrf: set[str] = set()
            self.settings: dict[str, Any] = {
                "page_size": PAGE_SIZE,
                "token_ttl_s": TOKEN_TTL_S,
                "latency_ms": 0,
                "error_500": 0.0,  # share of service requests answered 500 with a V2 error body
            }
            self.rng = random.Random(0)
            self.clear_stats()

    def clear_stats(self) -> None:
        self.stats: dict[str, Any] = {
            "requests": 0,
            "by_set": {},
            "by_method": {},
            "by_status": {},
            "calls": {},
            "token_grants": 0,
            "token_failures": 0,
            "token_rejections": 0,
            "basic_auths": 0,
            "csrf_fetches": 0,
            "writes": 0,
            "errors_500": 0,
        }
        self.recent: deque[dict[str, Any]] = deque(maxlen=300)

    def control(self, req: Request, subpath: str) -> Response:
        return Control(self).route(req, subpath)

    # --- HTTP ---------------------------------------------------------------------------------------
    def handle(self, req: Request) -> Response:
        latency = self.settings["latency_ms"] / 1000
        if latency:
            time.sleep(latency)
        if req.path == TOKEN_PATH:
            resp, resource = self.token(req), "oauth2/token"
        elif req.path.startswith(SERVICE_PATH):
            resource = unquote(req.path[len(SERVICE_PATH) :])
            with self.lock:
                failing = self.rng.random() < self.settings["error_500"]
                self.stats["errors_500"] += failing
            if failing:  # the gateway's short dump, as SAP answers it
                resp = v2_error(
                    500, "/IWBEP/CM_MGW_RT/000", "Runtime error TSV_TNEW_PAGE_ALLOC_FAILED occurred."
                )
            else:
                resp = self.service(req, resource)
        else:
            resource = req.path
            resp = v2_error(404, "/IWFND/MED/170", f"No service found for namespace '', name '{req.path}'.")
        self.count(req, resource, resp)
        return resp

    def count(self, req: Request, resource: str, resp: Response) -> None:
        entity = resource.split("(", 1)[0].split("/", 1)[0] or "(root)"
        with self.lock:
            stats = self.stats
            stats["requests"] += 1
            for bucket, value in (
                ("by_set", entity),
                ("by_method", req.method),
                ("by_status", str(resp.status)),
                ("calls", f"{req.method} {entity} {resp.status}"),
            ):
                stats[bucket][value] = stats[bucket].get(value, 0) + 1
            self.recent.append(
                {
                    "method": req.method,
                    "path": unquote(req.path),
                    "status": resp.status,
                    "query": {k: v[-1] for k, v in req.query.items()},
                }
            )

    def injected_429(self, req: Request) -> Response:
        resp = v2_error(429, "/IWFND/CM_BEC/026", "Too many requests", {"Retry-After": "1"})
        self.count(req, unquote(req.path[len(SERVICE_PATH) :]), resp)
        return resp

    # --- auth ---------------------------------------------------------------------------------------
    def basic(self, req: Request) -> System | None:
        auth = req.headers.get("authorization", "")
        if not auth.lower().startswith("basic "):
            return None
        try:
            user, _, password = base64.b64decode(auth[6:].strip()).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        system = self.systems.get(user)
        return (
            system if system is not None and secrets.compare_digest(system.client_secret, password) else None
        )

    def token(self, req: Request) -> Response:
        if req.method != "POST":
            return json_response({"error": "invalid_request", "error_description": "POST only"}, 405)
        form = {k: v[-1] for k, v in parse_qs(req.body.decode(errors="replace")).items()}
        with self.lock:
            system = self.basic(req)
            if system is None:
                self.stats["token_failures"] += 1
                return json_response(
                    {"error": "invalid_client", "error_description": "Client authentication failed"},
                    401,
                    {"WWW-Authenticate": 'Basic realm="SAP NetWeaver Application Server"'},
                )
            if form.get("grant_type") != "client_credentials":
                return json_response({"error": "unsupported_grant_type"}, 400)
            token = secrets.token_urlsafe(24)
            ttl = int(self.settings["token_ttl_s"])
            self.tokens[token] = (system.client_id, time.time() + ttl)
            self.stats["token_grants"] += 1
        return json_response(
            {
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": str(ttl),
                "scope": "API_BUSINESS_PARTNER_0001",
            },
            200,
            {"Cache-Control": "no-store"},
        )

    def authenticate(self, req: Request) -> System | None:
        auth = req.headers.get("authorization", "")
        with self.lock:
            if auth.lower().startswith("bearer "):
                entry = self.tokens.get(auth[7:].strip())
                if entry is None or entry[1] <= time.time():
                    self.stats["token_rejections"] += 1
                    return None
                return self.systems.get(entry[0])
            system = self.basic(req)
            if system is not None:
                self.stats["basic_auths"] += 1
            return system

    # --- the OData service --------------------------------------------------------------------------
    def service(self, req: Request, resource: str) -> Response:
        system = self.authenticate(req)
        if system is None:
            return Response(
                401,
                "Logon failed",
                {"WWW-Authenticate": 'Bearer error="invalid_token"'},
                content_type="text/plain",
            )
        headers: dict[str, Any] = {"dataserviceversion": "2.0"}
        if req.headers.get("x-csrf-token", "").lower() == "fetch" and req.method in ("GET", "HEAD"):
            token = secrets.token_urlsafe(18)
            with self.lock:
                self.csrf.add(token)
                self.stats["csrf_fetches"] += 1
            headers["x-csrf-token"] = token
            headers["Set-Cookie"] = [
                f"SAP_SESSIONID_S4H_100={secrets.token_urlsafe(12)}; path=/",
                "sap-usercontext=sap-client=100; path=/",
            ]
        if req.method in WRITES:
            with self.lock:
                self.stats["writes"] += 1
                fetched = req.headers.get("x-csrf-token", "") in self.csrf
            if not fetched:
                return Response(
                    403,
                    "CSRF token validation failed",
                    {"x-csrf-token": "Required"},
                    content_type="text/plain",
                )
            return v2_error(405, "/IWBEP/CM_MGW_RT/021", "The simulator is read-only.")
        if req.method not in ("GET", "HEAD"):
            return v2_error(405, "/IWBEP/CM_MGW_RT/021", f"Method '{req.method}' not allowed.")
        root = f"http://{req.headers.get('host', '127.0.0.1')}{SERVICE_PATH}"
        if resource == "":
            body = {"d": {"EntitySets": list(metadata.SETS)}}
            return json_response(body, 200, headers)
        if resource == "$metadata":
            return Response(200, metadata.edmx(), headers, content_type="application/xml")
        if req.arg("$format") not in (None, "json"):
            return v2_error(400, "/IWBEP/CM_MGW_RT/004", "Only $format=json is served here.")
        name, _, rest = resource.partition("(")
        if name not in metadata.SETS:
            return v2_error(404, "/IWBEP/CM_MGW_RT/021", f"Resource not found for segment '{name}'.")
        view = SetView(system, name, root)
        try:
            with self.lock:
                if rest:
                    key_text, _, nav = rest.partition(")")
                    resp = self.one(req, view, key_text, nav.strip("/"))
                else:
                    resp = self.collection(req, view)
        except QueryError as exc:
            return v2_error(400, "/IWBEP/CM_MGW_RT/004", str(exc))
        resp.headers.update(headers)
        return resp

    def one(self, req: Request, view: SetView, key_text: str, nav: str) -> Response:
        row = view.find(key_text)
        if row is None:
            return v2_error(404, "/IWBEP/CM_MGW_RT/020", f"Resource not found for segment '{view.name}'.")
        tree = expand_tree(req.arg("$expand"), view.name)
        select = view.selection(req.arg("$select"))
        if not nav:
            return json_response({"d": view.entity(row, tree, select)})
        if nav not in view.navs:
            return v2_error(404, "/IWBEP/CM_MGW_RT/021", f"Resource not found for segment '{nav}'.")
        target, many = view.nav_target(nav)
        value = view.related(row, nav)
        sub = SetView(view.system, target, view.root)
        if many:
            return json_response({"d": {"results": [sub.entity(r, tree, None) for r in value]}})
        return json_response({"d": sub.entity(value, tree, None) if value else None})

    def collection(self, req: Request, view: SetView) -> Response:
        unknown = [k for k in req.query if k.startswith("$") and k not in LIST_OPTIONS]
        if unknown:
            raise QueryError(f"System query option '{unknown[0]}' is not supported.")
        rows = rows_of_set(view.system, view.name)
        fields = view.filter_fields()
        text = (req.arg("$filter") or "").strip()
        if text:
            predicate = compile_filter(text, fields, entity=view.type_name, date_literal=date_literal)
            rows = [r for r in rows if predicate(r)]
        order = (req.arg("$orderby") or "").strip()
        if order:
            for index, descending in reversed(parse_orderby(order, fields, entity=view.type_name)):
                rows.sort(key=sort_key(index), reverse=descending)
        top, skip, token = (_number(req.arg(k), k) for k in ("$top", "$skip", "$skiptoken"))
        tree = expand_tree(req.arg("$expand"), view.name)
        select = view.selection(req.arg("$select"))
        start = (skip or 0) + (token or 0)
        size = int(self.settings["page_size"]) or len(rows)
        end = len(rows) if top is None else min(len(rows), (skip or 0) + top)
        page = rows[start : min(end, start + size)]
        body: dict[str, Any] = {"results": [view.entity(r, tree, select) for r in page]}
        if req.arg("$inlinecount") == "allpages":
            body["__count"] = str(len(rows))
        elif req.arg("$inlinecount") not in (None, "none"):
            raise QueryError(f"Invalid value '{req.arg('$inlinecount')}' for $inlinecount.")
        if start + len(page) < end and page:
            query = {k: v[-1] for k, v in req.query.items()}
            query["$skiptoken"] = str(start + len(page) - (skip or 0))
            body["__next"] = f"{view.root}{view.name}?{urlencode(query, quote_via=quote, safe='$,()/:')}"
        return json_response({"d": body})


def _number(value: str | None, name: str) -> int | None:
    if value in (None, ""):
        return None
    if not value.isdigit():
        raise QueryError(f"Invalid value '{value}' for {name}.")
    return int(value)
