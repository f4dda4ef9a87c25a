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
- `<Projection>.svc/$metadata` answers a CSDL (XML) document: properties, the enum type, the bound actions.
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
  POST environments/{ns}/mutate     {customers, orders, new_customers, new_orders, seed?}: IFS users' changes
                                     (customers edited; orders one state on: Planned→Released→Reserved→
                                     Delivered→Invoiced, finished ones get a new CustomerPoNo; new orders are
                                     Planned), all stamped now → {changed: {CustomerInfoSet: [ids],
                                     CustomerOrderSet: [nos]}, created: {...}}
  GET/POST settings                 {token_ttl_s=180, rate_limit=1000, rate_window_s=60, page_size=500}
  POST expire_tokens                {namespace?} every live token expires now → {expired}; with
                                     {namespace, after_requests: n} the realm's tokens expire right after its
                                     next n authenticated projection requests → {expires_after: n}
  GET/POST commit_faults            {fraction 0..1, mode "502"|"drop"|"mixed", seed}: that share of successful
                                     bound actions change the order, then answer 502 BAD_GATEWAY or drop the
                                     connection (counted as after_commit_faults)
  GET/DELETE stats                  {namespace: {tokens_issued, token_failures, requests, by_entity, by_method,
                                     by_status, calls ("GET CustomerOrderSet 200"), auth_rejections,
                                     rate_limited (limit 429s), injected_429, injected_5xx, actions_called,
                                     actions {Release: n}, actions_by_order {OrderNo: {Release: n}},
                                     transitions, transitions_by_order {OrderNo: ["Planned->Released"]},
                                     precondition_failed (412), precondition_required (428), if_match_any,
                                     invalid_transitions, writes_other (PATCH/PUT/DELETE/POST that are not
                                     actions), concurrent_changes, after_commit_faults, tokens_live}, "unattributed": {...}}
  GET  environments/{ns}/stats      the same for one realm; POST reset: this simulator only.
This package imports no product code.
"""

from __future__ import annotations

import re
import threading
from typing import Any
from urllib.parse import unquote

from sandbox.core import Request, Response
from sandbox.faults import CommitFaults
from sandbox.ifs import iam
from sandbox.ifs.auth import RateWindow, Tokens, bearer
from sandbox.ifs.control import Control
from sandbox.ifs.errors import error
from sandbox.ifs.iam import AUTH_PREFIX, TOKEN_PATH
from sandbox.ifs.projections import PROJECTION_PREFIX, Projections
from sandbox.ifs.store import Environment, new_stats

DEFAULT_SETTINGS = {"token_ttl_s": 180.0, "rate_limit": 1000, "rate_window_s": 60.0, "page_size": 500}


class IfsSimulator:
    name = "ifs"
    prefixes = (AUTH_PREFIX, PROJECTION_PREFIX)

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.projections = Projections(self)
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.settings: dict[str, Any] = dict(DEFAULT_SETTINGS)
            self.environments: dict[str, Environment] = {}
            self.tokens = Tokens(self.settings)
            self.windows: dict[str, RateWindow] = {}
            # namespace → authenticated requests until its tokens expire
            self.expire_after: dict[str, int] = {}
            self.commit_faults = CommitFaults()
            self.fault_turn = 0
            self.clear_stats()

    def clear_stats(self) -> None:
        self.stats: dict[str, dict[str, Any]] = {ns: new_stats() for ns in self.environments}
        self.unattributed = {"requests": 0, "auth_rejections": 0}

    def env_stats(self, namespace: str) -> dict[str, Any]:
        return self.stats.setdefault(namespace, new_stats())

    # --- entry --------------------------------------------------------------------------------------
    def handle(self, req: Request) -> Response | None:
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
            resp = iam.token(self, req)
        else:
            resp = self.projections.serve(req, namespace)
        with self.lock:
            self.count(req, namespace, resp)
            answered = resp is not None and resp.status != 401
            if namespace in self.expire_after and not req.path.startswith(AUTH_PREFIX) and answered:
                self.expire_after[namespace] -= 1
                if self.expire_after[namespace] <= 0:  # expiry lands mid-run at a known point, no sleeping
                    del self.expire_after[namespace]
                    self.tokens.expire_all(namespace)
        return resp

    def namespace_of(self, req: Request) -> str | None:
        match = TOKEN_PATH.match(req.path)
        if match:
            return unquote(match.group(1)) if unquote(match.group(1)) in self.environments else None
        with self.lock:
            return self.tokens.namespace(bearer(req))

    def count(self, req: Request, namespace: str | None, resp: Response | None) -> None:
        status = str(resp.status) if resp is not None else "dropped"  # a commit fault's lost answer
        if namespace is None:
            self.unattributed["requests"] += 1
            if status == "401":
                self.unattributed["auth_rejections"] += 1
            return
        stats = self.env_stats(namespace)
        stats["requests"] += 1
        entity = entity_of(req.path)
        for bucket, value in (
            ("by_entity", entity),
            ("by_method", req.method),
            ("by_status", status),
            ("calls", f"{req.method} {entity} {status}"),
        ):
            stats[bucket][value] = stats[bucket].get(value, 0) + 1
        if status == "401" and entity != "token":
            stats["auth_rejections"] += 1

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


def entity_of(path: str) -> str:
    if path.startswith(AUTH_PREFIX):
        return "token"
    rest = unquote(path[len(PROJECTION_PREFIX) :]).partition("/")[2]
    return re.split(r"[(/]", rest, maxsplit=1)[0] or "service"
