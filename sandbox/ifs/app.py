"""IFS Cloud simulator: IFS IAM (Keycloak) client-credentials tokens and OData V4 projections.

Wire facts (../shared/docs/wire/erps.md §4):
- `POST /auth/realms/<namespace>/protocol/openid-connect/token`, form-encoded `grant_type=client_credentials`,
  `client_id`, `client_secret` (or HTTP Basic), `scope` → 200 {access_token (JWT-shaped), expires_in (180 by
  default), refresh_expires_in 1800, refresh_token, token_type "Bearer", id_token, not-before-policy 0,
  session_state, scope "openid microprofile-jwt"}. Unknown client or wrong secret → 401 {"error":
  "invalid_client", "error_description": "Invalid client or Invalid client credentials"}; another grant
  type → 400 {"error": "unsupported_grant_type", ...}; unknown realm → 404 {"error": "Realm does not exist"}.
- Projections under `/main/ifsapplications/projection/v1/`, with `Authorization: Bearer <token>`:
  `CustomerHandling.svc/CustomerInfoSet` (key CustomerId) and `CustomerOrderHandling.svc/CustomerOrderSet`
  (key OrderNo). One record: `CustomerOrderSet(OrderNo='C100001')` (a bare `('C100001')` works too).
  No, invalid or expired token → 401 {"error": {"code": "UNAUTHORIZED", "message": ...}} with
  `WWW-Authenticate: Bearer realm="<namespace>", error="invalid_token", ...`.
- Bodies: `@odata.context`, collections `{"value": [...]}`, every record starts with `@odata.etag`
  (also the `ETag` header of a single read). ETag = `W/"<base64 of W/"<Objid>:<Objversion>">"`, e.g.
  `W/"Vy8iQUFBT3JkQUFGQUFBQUFIQUFBOjIwMjQwMzAxMTQyODIwIg=="`; Objid is an 18-character rowid, Objversion
  the record's ChangedDate as YYYYMMDDHHMMSS. Every write moves ChangedDate (wall clock UTC, at least one
  second past the previous stamp), so every write changes the ETag.
- `$filter` (eq ne gt ge lt le and or not, functions of sandbox/odata.py), `$select`, `$orderby`,
  `$top`, `$skip`, `$count=true` (→ `@odata.count`), `…Set/$count` (a plain number). Enum properties
  take only their qualified literal: `Objstate eq IfsApp.CustomerOrderHandling.CustomerOrderState'Released'`
  (a plain 'Released' → 400). V4 literals: `ChangedDate gt 2024-05-01T10:00:00Z` (Edm.DateTimeOffset, any
  offset; fractions dropped), `CreationDate ge 2024-05-01` (Edm.Date).
- Server-driven paging: at most `page_size` records a page (500 by default), fewer with
  `Prefer: odata.maxpagesize=N` (answered with `Preference-Applied`); `@odata.nextLink` is absolute and
  keeps the original options with `$skip` moved on (and `$top` reduced).
- Status changes are bound actions: `POST …/CustomerOrderSet(OrderNo='X')/IfsApp.CustomerOrderHandling.
  CustomerOrder_<Action>` with `If-Match: <@odata.etag>` and a JSON object body (no parameters needed) →
  204. Actions (from → to): Release (Planned → Released), Reserve (Released → Reserved), Deliver
  (Released|Reserved → Delivered), Invoice (Delivered → Invoiced), Close (Delivered|Invoiced → Closed),
  Cancel (Planned|Released|Reserved → Cancelled). No If-Match → 428 PRECONDITION_REQUIRED; a stale one →
  412 {"error": {"code": "OBSOLETE_DATA", "message": "The customer order X has been changed by someone else
  since it was read. Read it again and retry."}} with the current `ETag`; `If-Match: *` matches (counted).
  Not allowed from the current state → 400 {"error": {"code": "DATABASE_ERROR", "message": "The customer
  order X is Cancelled: Release is only allowed when it is Planned.", "details": [{"code": "ORA-20110",
  "message": "CustomerOrder.EVENTNOTALLOWED: Event Release is not allowed in state Cancelled."}]}}.
  Objstate is read-only: `PATCH CustomerOrderSet(…)` (If-Match required) changes only CustomerPoNo and
  WantedDeliveryDate → 200 with the record and its new ETag; Objstate in the body → 400 READ_ONLY_ATTRIBUTE.
- Errors everywhere: `{"error": {"code": "<TEXT>", "message": "<plain words>", "details"?: [...]}}`; unknown
  entity set / segment → 404 RESOURCE_NOT_FOUND; a bad query → 400 BAD_REQUEST; 405 METHOD_NOT_ALLOWED.
- 429 TOO_MANY_REQUESTS with `Retry-After` (whole seconds to the end of the window) above `rate_limit`
  requests per `rate_window_s` per realm (1000 / 60 s by default; token requests count). SYNTHETIC: IFS
  publishes no limits. Injected faults (`/_sandbox/ifs/faults`): 5xx alternates 503 and 500 in IFS's body,
  429 answers `Retry-After: 1`, drops close the connection.

Choices where the wire doc leaves room (documented, stable):
- CustomerInfoSet fields: CustomerId ("10001"…), Name, CustomerCategory (enum
  IfsApp.CustomerHandling.CustomerCategory: Customer|Prospect|EndCustomer), Country (ISO code),
  DefaultLanguage, AssociationNo, Address1, Address2, City, State, ZipCode, Phone, Email, Www, Currency,
  CreationDate (Edm.Date), ChangedDate (Edm.DateTimeOffset), luname, keyref, Objgrants. (Real IFS keeps
  addresses and communication methods in their own sets; they are flattened here.)
- CustomerOrderSet fields: OrderNo ("C100001"…), Contract (site), CustomerNo, CustomerPoNo, OrderType,
  Objstate (enum IfsApp.CustomerOrderHandling.CustomerOrderState: Planned, Released, Reserved, Delivered,
  Invoiced, Closed, Cancelled), DateEntered (created), WantedDeliveryDate, ChangedDate (changed: the
  Objversion), CurrencyCode, TotalAmount, the GL dimensions CodeB (code part B = cost center, "CC100"…),
  CodeC (code part C = profit center, "PC10"… or null), RegionCode (sales region), luname, keyref, Objgrants.
- Environments are keyed by realm (namespace); a token reaches only its realm's data.

Control API (under /_sandbox/ifs/; JSON bodies and answers):
  POST environments                 {namespace="ifsdemo", client_id="ml-connector", client_secret="s3cret",
                                     customers=50, orders=200, seed=0, today="2024-06-03"} → info (replaces)
  GET  environments | environments/{ns}        list / one (counts, orders_by_state); DELETE one
  GET  environments/{ns}/records/{CustomerInfoSet|CustomerOrderSet}/{key}   the stored record + etag
  POST environments/{ns}/orders/{OrderNo}/change   someone else edits the order: {objstate?, customer_po_no?,
                                     on_read: n} — now (bumps ChangedDate and ETag), or with on_read=n after
                                     each of the next n reads that serve it (so a retry after a re-read fails
                                     again) → {order, etag, pending_reads}
  POST environments/{ns}/customers/{CustomerId}/change {name?} → bumps ChangedDate/ETag
  GET/POST settings                 {token_ttl_s=180, rate_limit=1000, rate_window_s=60, page_size=500}
  POST expire_tokens                {namespace?} every live token expires now → {expired}
  GET/DELETE stats                  {namespace: {tokens_issued, token_failures, requests, by_entity, by_method,
                                     by_status, calls ("GET CustomerOrderSet 200"), auth_rejections,
                                     rate_limited (limit 429s), injected_429, injected_5xx, actions_called,
                                     actions {Release: n}, actions_by_order {OrderNo: {Release: n}},
                                     transitions, transitions_by_order {OrderNo: ["Planned->Released"]},
                                     precondition_failed (412), precondition_required (428), if_match_any,
                                     invalid_transitions, writes_other (PATCH/PUT/DELETE/POST that are not
                                     actions), concurrent_changes, tokens_live}, "unattributed": {...}}
  GET  environments/{ns}/stats      the same for one realm; POST reset: this simulator only.
This package imports no product code.
"""

from __future__ import annotations

import base64
import re
import secrets
import threading
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode

from sandbox.core import Request, Response, json_response
from sandbox.ifs import data
from sandbox.ifs.actions import patch_order, run_action
from sandbox.ifs.auth import RateWindow, Tokens
from sandbox.ifs.control import Control
from sandbox.ifs.store import Environment, Table, etag_of, new_stats, wire
from sandbox.odata import QueryError

AUTH_PREFIX = "/auth/realms/"
PROJECTION_PREFIX = "/main/ifsapplications/projection/v1/"
TOKEN_PATH = re.compile(r"^/auth/realms/([^/]+)/protocol/openid-connect/token/?$")
PROJECTIONS = {
    f"{data.CUSTOMER_PROJECTION}.svc": "CustomerInfoSet",
    f"{data.ORDER_PROJECTION}.svc": "CustomerOrderSet",
}
LIST_OPTIONS = {"$filter", "$select", "$orderby", "$top", "$skip", "$count", "$format"}
DEFAULT_SETTINGS = {"token_ttl_s": 180.0, "rate_limit": 1000, "rate_window_s": 60.0, "page_size": 500}
REFRESH_EXPIRES_S = 1800


def error(
    status: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
    details: list[dict[str, str]] | None = None,
) -> Response:
    body: dict[str, Any] = {"code": code, "message": message}
    if details:
        body["details"] = details
    return json_response({"error": body}, status, {"OData-Version": "4.0", **(headers or {})})


def keycloak_error(status: int, code: str, description: str | None = None) -> Response:
    body = {"error": code}
    if description:
        body["error_description"] = description
    return json_response(body, status, {"Cache-Control": "no-store"})


class IfsSimulator:
    name = "ifs"
    prefixes = (AUTH_PREFIX, PROJECTION_PREFIX)

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.settings: dict[str, Any] = dict(DEFAULT_SETTINGS)
            self.environments: dict[str, Environment] = {}
            self.tokens = Tokens(self.settings)
            self.windows: dict[str, RateWindow] = {}
            self.fault_turn = 0
            self.clear_stats()

    def clear_stats(self) -> None:
        self.stats: dict[str, dict[str, Any]] = {ns: new_stats() for ns in self.environments}
        self.unattributed = {"requests": 0, "auth_rejections": 0}

    def env_stats(self, namespace: str) -> dict[str, Any]:
        return self.stats.setdefault(namespace, new_stats())

    # --- entry --------------------------------------------------------------------------------------
    def handle(self, req: Request) -> Response:
        namespace = self.namespace_of(req)
        with self.lock:
            if namespace is not None:
                retry = self.windows.setdefault(namespace, RateWindow(self.settings)).admit()
                if retry is not None:
                    self.env_stats(namespace)["rate_limited"] += 1
                    resp = error(
                        429,
                        "TOO_MANY_REQUESTS",
                        f"Too many requests: at most {self.settings['rate_limit']} "
                        f"per {self.settings['rate_window_s']:g} s. Retry after {retry} s.",
                        {"Retry-After": str(retry)},
                    )
                    self.count(req, namespace, resp)
                    return resp
        if req.path.startswith(AUTH_PREFIX):
            resp = self.token(req)
        else:
            resp = self.projection(req, namespace)
        with self.lock:
            self.count(req, namespace, resp)
        return resp

    def namespace_of(self, req: Request) -> str | None:
        match = TOKEN_PATH.match(req.path)
        if match:
            return unquote(match.group(1)) if unquote(match.group(1)) in self.environments else None
        with self.lock:
            return self.tokens.namespace(bearer(req))

    def count(self, req: Request, namespace: str | None, resp: Response) -> None:
        if namespace is None:
            self.unattributed["requests"] += 1
            if resp.status == 401:
                self.unattributed["auth_rejections"] += 1
            return
        stats = self.env_stats(namespace)
        stats["requests"] += 1
        entity = entity_of(req.path)
        for bucket, value in (
            ("by_entity", entity),
            ("by_method", req.method),
            ("by_status", str(resp.status)),
            ("calls", f"{req.method} {entity} {resp.status}"),
        ):
            stats[bucket][value] = stats[bucket].get(value, 0) + 1
        if resp.status == 401 and entity != "token":
            stats["auth_rejections"] += 1

    # --- IFS IAM ------------------------------------------------------------------------------------
    def token(self, req: Request) -> Response:
        match = TOKEN_PATH.match(req.path)
        if not match:
            return keycloak_error(404, "Unable to find matching target resource method")
        namespace = unquote(match.group(1))
        if req.method != "POST":
            return keycloak_error(405, "HTTP 405 Method Not Allowed")
        with self.lock:
            env = self.environments.get(namespace)
            if env is None:
                return keycloak_error(404, "Realm does not exist")
            stats = self.env_stats(namespace)
            form = {
                k: v[-1]
                for k, v in parse_qs(req.body.decode("utf-8", "replace"), keep_blank_values=True).items()
            }
            client_id, secret = form.get("client_id"), form.get("client_secret")
            basic = req.headers.get("authorization", "")
            if basic.lower().startswith("basic "):
                try:
                    client_id, _, secret = base64.b64decode(basic[6:].strip()).decode().partition(":")
                except ValueError:
                    client_id = secret = None
            if form.get("grant_type") != "client_credentials":
                stats["token_failures"] += 1
                if not form.get("grant_type"):
                    return keycloak_error(400, "invalid_request", "Missing form parameter: grant_type")
                return keycloak_error(400, "unsupported_grant_type", "Unsupported grant_type")
            if client_id != env.client_id or secret != env.client_secret:
                stats["token_failures"] += 1
                return keycloak_error(401, "invalid_client", "Invalid client or Invalid client credentials")
            root = f"http://{req.headers.get('host', '127.0.0.1')}"
            token, expires = self.tokens.issue(namespace, env.client_id, f"{root}{AUTH_PREFIX}{namespace}")
            stats["tokens_issued"] += 1
        return json_response(
            {
                "access_token": token,
                "expires_in": expires,
                "refresh_expires_in": REFRESH_EXPIRES_S,
                "refresh_token": secrets.token_urlsafe(48),
                "token_type": "Bearer",
                "id_token": secrets.token_urlsafe(48),
                "not-before-policy": 0,
                "session_state": secrets.token_hex(16),
                "scope": form.get("scope") or "openid microprofile-jwt",
            },
            200,
            {"Cache-Control": "no-store"},
        )

    # --- projections --------------------------------------------------------------------------------
    def projection(self, req: Request, namespace: str | None) -> Response:
        token = bearer(req)
        with self.lock:
            valid = self.tokens.valid(token)
            env = self.environments.get(namespace) if namespace else None
        if not valid or env is None:
            message = (
                "The access token has expired."
                if token and namespace
                else "The access token is missing or invalid."
            )
            return error(
                401,
                "UNAUTHORIZED",
                message,
                {
                    "WWW-Authenticate": f'Bearer realm="{namespace or "ifs"}", error="invalid_token", '
                    f'error_description="{message}"'
                },
            )
        service, _, rest = unquote(req.path[len(PROJECTION_PREFIX) :]).partition("/")
        root = f"http://{req.headers.get('host', '127.0.0.1')}{PROJECTION_PREFIX}{service}/"
        if service not in PROJECTIONS:
            return error(404, "RESOURCE_NOT_FOUND", f"The projection '{service}' does not exist.")
        entity_set = PROJECTIONS[service]
        if rest in ("", "/"):
            return json_response(
                {
                    "@odata.context": f"{root}$metadata",
                    "value": [{"name": entity_set, "kind": "EntitySet", "url": entity_set}],
                },
                200,
                {"OData-Version": "4.0"},
            )
        name, paren, after = rest.partition("(")
        name, _, tail = name.partition("/") if not paren else (name, "", "")
        if name != entity_set:
            return error(404, "RESOURCE_NOT_FOUND", f"Resource not found for the segment '{name}'.")
        table = env.customers if entity_set == "CustomerInfoSet" else env.orders
        stats = self.env_stats(env.namespace)
        if paren:
            key_text, _, tail = after.partition(")")
            key = parse_key(table, key_text)
            if key is None:
                return error(400, "BAD_REQUEST", f"Invalid key predicate '({key_text})' for '{name}'.")
            return self.one(req, env, table, key, tail.strip("/"), root, stats)
        if tail == "$count" and req.method == "GET":
            try:
                with self.lock:
                    rows = table.query((req.arg("$filter") or "").strip(), "")
            except QueryError as exc:
                return error(400, "BAD_REQUEST", str(exc))
            return Response(200, str(len(rows)), {"OData-Version": "4.0"}, content_type="text/plain")
        if tail:
            return error(404, "RESOURCE_NOT_FOUND", f"Resource not found for the segment '{tail}'.")
        if req.method != "GET":
            with self.lock:
                stats["writes_other"] += 1
            return error(
                405, "METHOD_NOT_ALLOWED", f"{req.method} is not supported on {name} by this service."
            )
        return self.collection(req, env, table, root, stats)

    def collection(
        self, req: Request, env: Environment, table: Table, root: str, stats: dict[str, Any]
    ) -> Response:
        unknown = [k for k in req.query if k.startswith("$") and k not in LIST_OPTIONS]
        if unknown:
            return error(400, "BAD_REQUEST", f"The query option '{unknown[0]}' is not supported.")
        try:
            top = nonnegative(req.arg("$top"), "$top")
            skip = nonnegative(req.arg("$skip"), "$skip") or 0
            count_text = (req.arg("$count") or "false").lower()
            if count_text not in ("true", "false"):
                raise QueryError(f"Invalid value '{count_text}' for $count: use true or false.")
            select = selection(req.arg("$select"), table)
            page_size, preferred = self.page_size(req)
            with self.lock:
                rows = table.query((req.arg("$filter") or "").strip(), (req.arg("$orderby") or "").strip())
        except QueryError as exc:
            return error(400, "BAD_REQUEST", str(exc))
        take = page_size if top is None else min(page_size, top)
        page = rows[skip : skip + take]
        with self.lock:
            value = [wire(record, select) for record in page]
            self.after_reads(env, [record for record in page if table is env.orders])
        context = f"{root}$metadata#{table.entity}" + (f"({','.join(select)})" if select else "")
        body: dict[str, Any] = {"@odata.context": context}
        if count_text == "true":
            body["@odata.count"] = len(rows)
        body["value"] = value
        after = skip + len(page)
        remaining = (len(rows) if top is None else min(len(rows), skip + top)) - after
        if page and remaining > 0:
            query = {k: v[-1] for k, v in req.query.items()}
            query["$skip"] = str(after)
            if top is not None:
                query["$top"] = str(top - len(page))
            body["@odata.nextLink"] = (
                f"{root}{table.entity}?{urlencode(query, quote_via=quote, safe='$,()/:')}"
            )
        headers = {"OData-Version": "4.0"}
        if preferred is not None:
            headers["Preference-Applied"] = f"odata.maxpagesize={preferred}"
        return json_response(body, 200, headers)

    def one(
        self,
        req: Request,
        env: Environment,
        table: Table,
        key: str,
        tail: str,
        root: str,
        stats: dict[str, Any],
    ) -> Response:
        with self.lock:
            if tail:
                if table is not env.orders or req.method != "POST":
                    if req.method != "GET":
                        stats["writes_other"] += 1
                    return error(
                        404 if req.method in ("GET", "POST") else 405,
                        "RESOURCE_NOT_FOUND",
                        f"Resource not found for the segment '{tail}'.",
                    )
                try:
                    body = req.json()
                except ValueError:
                    return error(400, "BAD_REQUEST", "The request body is not valid JSON.")
                status, payload, headers = run_action(
                    env, key, tail, req.headers.get("if-match"), body, stats
                )
                return self.result(status, payload, headers)
            record = table.by_key.get(key)
            if req.method == "PATCH" and table is env.orders:
                stats["writes_other"] += 1
                try:
                    body = req.json()
                except ValueError:
                    return error(400, "BAD_REQUEST", "The request body is not valid JSON.")
                status, payload, headers = patch_order(env, key, req.headers.get("if-match"), body, stats)
                if payload is not None and status == 200:
                    payload = {"@odata.context": f"{root}$metadata#{table.entity}/$entity", **payload}
                return self.result(status, payload, headers)
            if req.method != "GET":
                stats["writes_other"] += 1
                return error(405, "METHOD_NOT_ALLOWED", f"{req.method} is not supported on {table.entity}.")
            if record is None:
                what = "customer order" if table is env.orders else "customer"
                return error(404, "RESOURCE_NOT_FOUND", f"The {what} {key} does not exist.")
            try:
                select = selection(req.arg("$select"), table)
            except QueryError as exc:
                return error(400, "BAD_REQUEST", str(exc))
            body = {"@odata.context": f"{root}$metadata#{table.entity}/$entity", **wire(record, select)}
            current = etag_of(record)
            if table is env.orders:
                self.after_reads(env, [record])
        return json_response(body, 200, {"OData-Version": "4.0", "ETag": current})

    @staticmethod
    def result(status: int, payload: dict[str, Any] | None, headers: dict[str, str]) -> Response:
        return Response(status, payload, {"OData-Version": "4.0", **headers})

    def after_reads(self, env: Environment, orders: list[dict[str, Any]]) -> None:
        """Someone else edits an order right after it was served (control: change with on_read)."""
        if not env.pending_bumps:
            return
        for order in orders:
            left = env.pending_bumps.get(order["OrderNo"], 0)
            if left <= 0:
                continue
            env.pending_bumps[order["OrderNo"]] = left - 1
            current = env.orders.by_key[order["OrderNo"]]
            env.touch(current, env.orders)
            self.env_stats(env.namespace)["concurrent_changes"] += 1

    def page_size(self, req: Request) -> tuple[int, int | None]:
        cap = max(1, int(self.settings["page_size"]))
        for pref in req.headers.get("prefer", "").split(","):
            name, _, value = pref.strip().partition("=")
            if name.strip().lower() == "odata.maxpagesize":
                size = nonnegative(value.strip(), "odata.maxpagesize")
                if size:
                    return min(cap, size), size
        return cap, None

    # --- faults from core.py, in IFS's envelope -----------------------------------------------------
    def injected_429(self, req: Request) -> Response:
        resp = error(429, "TOO_MANY_REQUESTS", "Too many requests. Retry after 1 s.", {"Retry-After": "1"})
        self.count_fault(req, resp, "injected_429")
        return resp

    def injected_5xx(self, req: Request) -> Response:
        with self.lock:
            self.fault_turn += 1
            status = 503 if self.fault_turn % 2 else 500
        resp = (
            error(503, "SERVICE_UNAVAILABLE", "The service is temporarily unavailable.")
            if status == 503
            else error(500, "INTERNAL_SERVER_ERROR", "An unexpected error occurred on the server.")
        )
        self.count_fault(req, resp, "injected_5xx")
        return resp

    def count_fault(self, req: Request, resp: Response, kind: str) -> None:
        namespace = self.namespace_of(req)
        with self.lock:
            self.count(req, namespace, resp)
            if namespace is not None:
                self.env_stats(namespace)[kind] += 1

    # --- the control API ----------------------------------------------------------------------------
    def control(self, req: Request, subpath: str) -> Response:
        return Control(self).route(req, subpath)


def bearer(req: Request) -> str | None:
    header = req.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip() or None
    return None


def entity_of(path: str) -> str:
    if path.startswith(AUTH_PREFIX):
        return "token"
    rest = unquote(path[len(PROJECTION_PREFIX) :]).partition("/")[2]
    return re.split(r"[(/]", rest, maxsplit=1)[0] or "service"


def parse_key(table: Table, text: str) -> str | None:
    """ "OrderNo='C100001'" or "'C100001'" → "C100001"; None when malformed."""
    text = text.strip()
    if "=" in text:
        field, _, text = text.partition("=")
        if field.strip() != table.key:
            return None
        text = text.strip()
    if len(text) < 2 or text[0] != "'" or text[-1] != "'" or "'" in text[1:-1].replace("''", ""):
        return None
    return text[1:-1].replace("''", "'")


def nonnegative(value: str | None, name: str) -> int | None:
    if value is None or value == "":
        return None
    if not value.isdigit():
        raise QueryError(f"Invalid value '{value}' for {name}.")
    return int(value)


def selection(value: str | None, table: Table) -> list[str] | None:
    if not value or value.strip() == "*":
        return None
    names = [n.strip() for n in value.split(",") if n.strip()]
    for name in names:
        if name not in table.fields:
            raise QueryError(f"Could not find a property named '{name}' on type '{table.type_name}'.")
    return names
