"""SAP Business One Service Layer simulator: `/b1s/v1/` (OData V3-style JSON) and `/b1s/v2/` (V4).

Wire facts (../shared/docs/wire/erps.md §2):
- `POST Login` {CompanyDB, UserName, Password} → 200 {SessionId, Version, SessionTimeout (minutes)} with
  `Set-Cookie: B1SESSION=<id>;HttpOnly;` (no Path, trailing semicolon) and `Set-Cookie: ROUTEID=.node1;
  path=/b1s`. Bad credentials → 401 {"error": {"code": 100000027, "message": {"lang": "en-us", "value":
  "Login failed"}}}. `POST Logout` → 204. Every other call needs the B1SESSION cookie; the idle timeout
  slides (each call resets it); an unknown, logged-out or expired session → HTTP 401 code 301 "Invalid
  session or session already timeout." (not -5002, whatever the seed page says).
- v1 bodies carry `odata.metadata`, `odata.nextLink`, `odata.etag`, `odata.count` (a string, with
  `$inlinecount=allpages`); v2 bodies `@odata.context`, `@odata.nextLink`, `@odata.etag`, `@odata.count`
  (a number, with `$count=true`). Collections are `{"value": [...]}`.
- Default page 20; `Prefer: odata.maxpagesize=N` (0 = everything) is echoed in `Preference-Applied`;
  `$top` never raises a page above the page size. The next link is relative to the service root and
  carries the original options with `$skip` moved on: `BusinessPartners?$filter=…&$skip=20`.
- Errors everywhere: `{"error": {"code": <int>, "message": {"lang": "en-us", "value": "..."}}}`. A missing
  record → 404 code -2028 "No matching records found (ODBC -2028)"; a business rule → 400 code -5002.
- Dates are "2024-05-01T00:00:00Z" (day granularity), times "14:03:22". `$filter=UpdateDate ge
  '2024-05-01'` (quoted text, v1 style), bare `2024-05-01` and datetime'…' all work; `UpdateTime ge
  '14:00:00'` too. Enum literals plain ('cCustomer') or qualified (SAPB1.BoCardTypes'cCustomer').

Entity sets: BusinessPartners('C0001') with ContactEmployees (InternalCode key, unique across the
company) and BPAddresses; Items('A00001') with ItemPrices and ItemWarehouseInfoCollection; Invoices(1)
and Orders(1) (DocEntry key) with DocumentLines; ProfitCenters('EAST'); BusinessPartnerGroups(100) and
Industries(1), which GroupCode and Industry refer to. `…/$count` answers a plain number.

Choices where the wire doc leaves room:
- CardCode is the CardType's letter + index (C0001 customer, S0005 supplier, L0008 lead); about 8 % of
  partners are frozen (Valid tNO, Frozen tYES). The profit center is the user-defined field
  `U_ProfitCenter` (a ProfitCenters code or ""); the segment is `Industry` (an Industries code, -1 none).
- UserName and Password are case-sensitive; an unknown CompanyDB is the same 401 as a bad password.
  A body that is not JSON → 400 code -1000.
- `$inlinecount` is v1 only and `$count` v2 only (the other → 400 -1000); unknown options → 400 -1000.
  Unknown entity set → 404 code -1000 "Resource not found for the segment '…'".
- `POST Orders` {CardCode, NumAtCard?, Comments?, DocDate?, DocDueDate?, DocumentLines: [{ItemCode,
  Quantity, UnitPrice | Price?, WarehouseCode?}]} → 201 with the order (DocEntry, DocNum = 200000 +
  DocEntry; invoices use 100000 +) and `Location`. A line without a price gets the partner's price list.
  400 -5002: unknown CardCode, a supplier, a frozen partner, no lines, an unknown ItemCode, Quantity not
  > 0; 400 -1000: unknown properties ("Property 'X' of 'Document' is invalid"). Nothing is idempotent:
  posting twice makes two orders. `PATCH Orders(n)` (Comments, NumAtCard, DocDueDate, U_*) honours
  `If-Match` (a stale etag → 412 code -2039) and answers 204.
- A write moves UpdateDate/UpdateTime to the company clock (today + time, set by the control API; it
  does not tick by itself).
- Sessions belong to the sandbox process; SessionTimeout reports the idle timeout rounded up to minutes.
  A session works under both versions, but the B1SESSION cookie has no Path, so a browser-like cookie
  jar scopes it to the Login's directory (/b1s/v1): log in under the version you use.
- ROUTEID is set but never checked (one node).

Control API (under /_sandbox/sap_b1/; bodies and answers are JSON):
  POST companies                     {company_db, user, password, partners, contacts_max (0-5), items, invoices,
                                      seed, today} → company info (counts per entity set, contacts)
  GET  companies | companies/{DB}    list / one; DELETE companies/{DB}
  POST companies/{DB}/mutate         {partners, items, invoices (counts edited), remove_contacts, add_contacts,
                                      new_partners, today, time, seed} → {changed: {entity: [keys]},
                                      contacts_removed/contacts_added: [{CardCode, InternalCode, Name}] (their
                                      partners' UpdateDate/UpdateTime move too), partners_created, today, time}
  POST companies/{DB}/clock          {today, time} → info
  GET  companies/{DB}/orders         {orders: what POST Orders created (with the posted body), rejected}
  GET/PATCH/DELETE companies/{DB}/records/{Entity}/{key}
                                     operator access (key unquoted: C0001, 12); PATCH merges top-level fields
                                     (collections replaced whole) and stamps the clock unless UpdateDate is given
  GET/POST settings                  {page_size, session_timeout_s, latency_ms}
  POST expire_sessions               every session expires now → {expired}
  POST reset                         this simulator only: companies, sessions, settings, stats, commit faults
  GET/POST commit_faults             {fraction 0..1, mode "502"|"drop"|"mixed", seed}: that share of successful
                                      POST Orders creates the order, then answers 502 or drops the connection
  GET/DELETE stats                   requests by entity/method/status, logins, login_failures, logouts,
                                      sessions_active, sessions_peak, session_rejections, orders, recent requests
  GET  tls                           starts (once) an HTTPS listener on 127.0.0.1 serving this same sandbox with a
                                      self-signed certificate (SAN IP:127.0.0.1, DNS:localhost) → {port, url,
                                      cert_pem, sha256 (hex of the DER), sha256_colon}
(`/_sandbox/sap_b1/faults` is core.py's generic 5xx/429/slow/drop injection; `/_sandbox/reset` clears all,
but an HTTPS listener keeps running with its certificate.)
This package imports no product code.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from typing import Any
from urllib.parse import quote, unquote, urlencode

from sandbox.core import Request, Response, json_response
from sandbox.faults import CommitFaults
from sandbox.odata import QueryError, key_segment, nonnegative, string_literal
from sandbox.sap_b1 import entities as ent
from sandbox.sap_b1.control import Control
from sandbox.sap_b1.orders import create_order, patch_order
from sandbox.sap_b1.sessions import Session, Sessions, cookie
from sandbox.sap_b1.store import Company, Table
from sandbox.sap_b1.tls import TlsListener

PREFIX = "/b1s/"
VERSIONS = ("v1", "v2")
PAGE_SIZE = 20
SESSION_TIMEOUT_S = 30 * 60
B1_VERSION = "1000190"
LIST_OPTIONS = {"$filter", "$select", "$orderby", "$top", "$skip", "$expand", "$format"}


def b1_error(status: int, code: int, message: str, headers: dict[str, Any] | None = None) -> Response:
    return json_response({"error": {"code": code, "message": {"lang": "en-us", "value": message}}}, status, headers)


def session_error() -> Response:
    return b1_error(401, 301, "Invalid session or session already timeout.")


def not_found() -> Response:
    return b1_error(404, -2028, "No matching records found (ODBC -2028)")


class SapB1Simulator:
    name = "sap_b1"
    prefixes = (PREFIX,)

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.tls = TlsListener()
        self.reset()

    def bind(self, sandbox: Any) -> None:
        self.sandbox = sandbox

    def reset(self) -> None:
        with self.lock:
            self.companies: dict[str, Company] = {}
            self.settings: dict[str, Any] = {"page_size": PAGE_SIZE, "session_timeout_s": SESSION_TIMEOUT_S,
                                             "latency_ms": 0}
            self.sessions = Sessions(self.settings)
            self.commit_faults = CommitFaults()
            self.clear_stats()

    def clear_stats(self) -> None:
        self.stats: dict[str, Any] = {
            "requests": 0, "by_entity": {}, "by_method": {}, "by_status": {}, "calls": {}, "logins": 0,
            "login_failures": 0, "logouts": 0, "sessions_peak": len(self.sessions.by_id),
            "session_rejections": 0, "orders_created": 0, "orders_rejected": 0, "after_commit_faults": 0}
        self.recent: deque[dict[str, Any]] = deque(maxlen=300)

    # --- the Service Layer --------------------------------------------------------------------------
    def handle(self, req: Request) -> Response | None:
        latency = self.settings["latency_ms"] / 1000
        if latency:
            time.sleep(latency)
        version, _, resource = req.path[len(PREFIX):].partition("/")
        resource = unquote(resource)
        if version not in VERSIONS:
            resp: Response | None = b1_error(404, -1000, f"Resource not found for the segment '{version}'.")
        else:
            resp = self.serve(req, version, resource)
        self.count(req, resource, resp)
        return resp

    def count(self, req: Request, resource: str, resp: Response | None) -> None:
        entity = resource.split("(", 1)[0].split("/", 1)[0]
        status = str(resp.status) if resp is not None else "dropped"
        with self.lock:
            stats = self.stats
            stats["requests"] += 1
            for bucket, value in (("by_entity", entity), ("by_method", req.method), ("by_status", status),
                                  ("calls", f"{req.method} {entity} {status}")):
                stats[bucket][value] = stats[bucket].get(value, 0) + 1
            self.recent.append({"method": req.method, "path": unquote(req.path), "status": status,
                                "query": "&".join(f"{k}={v[-1]}" for k, v in req.query.items()),
                                "prefer": req.headers.get("prefer", "")})

    def serve(self, req: Request, version: str, resource: str) -> Response | None:
        root = f"{'https' if self.tls.serves(req) else 'http'}://{req.headers.get('host', '127.0.0.1')}{PREFIX}{version}/"
        if resource == "Login":
            return self.login(req, version, root) if req.method == "POST" else self.method_not_allowed(req)
        session = self.authenticate(req)
        if session is None:
            return session_error()
        if resource == "Logout":
            if req.method != "POST":
                return self.method_not_allowed(req)
            with self.lock:
                self.sessions.close(session.id)
                self.stats["logouts"] += 1
            return Response(204)
        company = self.companies.get(session.company)
        if company is None:  # the company was deleted under a live session
            return session_error()
        name, _, rest = resource.partition("(")
        name, _, tail = name.partition("/") if not rest else (name, "", "")
        if name not in ent.ENTITIES or name == "":
            return b1_error(404, -1000, f"Resource not found for the segment '{name or resource}'.")
        table = company.tables[name]
        if rest:
            key_text, _, tail = rest.partition(")")
            key = self.parse_key(table, key_text)
            if key is None:
                return b1_error(400, -1000, f"Invalid key predicate '({key_text})' for '{name}'.")
            if tail:
                return b1_error(404, -1000, f"Resource not found for the segment '{tail.strip('/')}'.")
            return self.entity_one(req, version, root, company, table, key)
        if tail == "$count" and req.method == "GET":
            return self.entity_count(req, company, table)
        if tail:
            return b1_error(404, -1000, f"Resource not found for the segment '{tail}'.")
        if req.method == "GET":
            return self.entity_list(req, version, root, table)
        if req.method == "POST" and name == "Orders":
            return self.order_create(req, version, root, company)
        return self.method_not_allowed(req)

    @staticmethod
    def method_not_allowed(req: Request) -> Response:
        return b1_error(405, -1000, f"The HTTP method '{req.method}' is not supported for this resource.")

    # --- sessions -----------------------------------------------------------------------------------
    def login(self, req: Request, version: str, root: str) -> Response:
        try:
            data = req.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            return b1_error(400, -1000, "Invalid JSON in the request body.")
        company = self.companies.get(str(data.get("CompanyDB", "")))
        with self.lock:
            if company is None or data.get("UserName") != company.user or data.get("Password") != company.password:
                self.stats["login_failures"] += 1
                return b1_error(401, 100000027, "Login failed")
            session = self.sessions.open(company.db, company.user)
            self.stats["logins"] += 1
            self.stats["sessions_peak"] = max(self.stats["sessions_peak"], self.sessions.live())
            minutes = max(1, math.ceil(self.settings["session_timeout_s"] / 60))
        meta = ({"odata.metadata": f"{root}$metadata#B1Sessions/@Element"} if version == "v1"
                else {"@odata.context": f"{root}$metadata#B1Sessions/$entity"})
        cookies = [f"B1SESSION={session.id};HttpOnly;", "ROUTEID=.node1; path=/b1s"]
        return json_response({**meta, "SessionId": session.id, "Version": B1_VERSION, "SessionTimeout": minutes},
                             200, {"Set-Cookie": cookies})

    def authenticate(self, req: Request) -> Session | None:
        with self.lock:
            session = self.sessions.touch(cookie(req.headers.get("cookie", ""), "B1SESSION"))
            if session is None:
                self.stats["session_rejections"] += 1
            return session

    # --- reads --------------------------------------------------------------------------------------
    @staticmethod
    def parse_key(table: Table, text: str) -> Any:
        """"'C0001'", "CardCode='C0001'" or "12" (number keys) → the key; None when malformed."""
        text = key_segment(text, table.key_field)
        if text is None:
            return None
        if table.key_type == "number":
            return int(text) if text.isdigit() else None
        return string_literal(text)

    def entity_one(self, req: Request, version: str, root: str, company: Company, table: Table,
                   key: Any) -> Response:
        if req.method == "PATCH" and table.entity == "Orders":
            with self.lock:
                return patch_order(req, company, table, key)
        if req.method != "GET":
            return self.method_not_allowed(req)
        try:
            select = selection(req.arg("$select"), table)
        except QueryError as exc:
            return b1_error(400, -1000, str(exc))
        with self.lock:
            record = table.by_key.get(key)
            if record is None:
                return not_found()
            etag = table.etag(key)
        body = project(record, select)
        meta = ({"odata.metadata": f"{root}$metadata#{table.entity}/@Element", "odata.etag": etag}
                if version == "v1" else
                {"@odata.context": f"{root}$metadata#{table.entity}/$entity", "@odata.etag": etag})
        return json_response({**meta, **body}, 200, {"ETag": etag})

    def entity_count(self, req: Request, company: Company, table: Table) -> Response:
        try:
            with self.lock:
                rows = table.query((req.arg("$filter") or "").strip(), "")
        except QueryError as exc:
            return b1_error(400, -1000, str(exc))
        return Response(200, str(len(rows)), content_type="text/plain")

    def entity_list(self, req: Request, version: str, root: str, table: Table) -> Response:
        allowed = LIST_OPTIONS | ({"$inlinecount"} if version == "v1" else {"$count"})
        unknown = [k for k in req.query if k.startswith("$") and k not in allowed]
        if unknown:
            return b1_error(400, -1000, f"Query option '{unknown[0]}' is not supported.")
        try:
            top = nonnegative(req.arg("$top"), "$top")
            skip = nonnegative(req.arg("$skip"), "$skip") or 0
            counted = (req.arg("$inlinecount") == "allpages" if version == "v1"
                       else (req.arg("$count") or "").lower() == "true")
            select = selection(req.arg("$select"), table)
            page_size, preferred = self.page_size(req)
            with self.lock:
                rows = table.query((req.arg("$filter") or "").strip(), (req.arg("$orderby") or "").strip())
        except QueryError as exc:
            return b1_error(400, -1000, str(exc))
        take = page_size or len(rows)
        if top is not None:
            take = min(take, top)
        page = rows[skip:skip + take]
        value = [project(record, select) for record in page]
        prefix = "odata." if version == "v1" else "@odata."
        context = f"{root}$metadata#{table.entity}"
        if select:
            context += f"({','.join(select)})"
        body: dict[str, Any] = {("odata.metadata" if version == "v1" else "@odata.context"): context}
        if counted:
            body[f"{prefix}count"] = str(len(rows)) if version == "v1" else len(rows)
        body["value"] = value
        after = skip + len(page)
        remaining = len(rows) - after if top is None else min(len(rows), skip + top) - after
        if page and remaining > 0:
            query = {k: v[-1] for k, v in req.query.items()}
            query["$skip"] = str(after)
            if top is not None:
                query["$top"] = str(top - len(page))
            encoded = urlencode(query, quote_via=quote, safe="$,()':/")
            body[f"{prefix}nextLink"] = f"{table.entity}?{encoded}"
        headers = {"Preference-Applied": f"odata.maxpagesize={preferred}"} if preferred is not None else {}
        return json_response(body, 200, headers)

    def page_size(self, req: Request) -> tuple[int, int | None]:
        """(rows per page, 0 = all; the honoured `odata.maxpagesize` preference or None)."""
        for pref in req.headers.get("prefer", "").split(","):
            name, _, value = pref.strip().partition("=")
            if name.strip().lower() == "odata.maxpagesize":
                size = nonnegative(value.strip(), "odata.maxpagesize")
                assert size is not None
                return size, size
        return self.settings["page_size"], None

    # --- writes -------------------------------------------------------------------------------------
    def order_create(self, req: Request, version: str, root: str, company: Company) -> Response | None:
        with self.lock:
            status, body, posted = create_order(req, company)
            if status != 201:
                company.rejected_orders += 1
                self.stats["orders_rejected"] += 1
                return json_response(body, status)
            self.stats["orders_created"] += 1
            fault = self.commit_faults.draw()
            posted["answered"] = fault or "201"
            if fault:
                self.stats["after_commit_faults"] += 1
            table = company.tables["Orders"]
            etag = table.etag(body["DocEntry"])
        if fault == "drop":
            return None
        if fault:
            return b1_error(502, -1000, "Bad Gateway")
        meta = ({"odata.metadata": f"{root}$metadata#Orders/@Element", "odata.etag": etag} if version == "v1"
                else {"@odata.context": f"{root}$metadata#Orders/$entity", "@odata.etag": etag})
        return json_response({**meta, **body}, 201, {"Location": f"{root}Orders({body['DocEntry']})",
                                                     "ETag": etag})

    def injected_429(self, req: Request) -> Response:
        """core.py's injected rate-limit faults, in B1's envelope (the Service Layer documents no 429)."""
        resp = b1_error(429, -1000, "Too many requests", {"Retry-After": "1"})
        self.count(req, unquote(req.path[len(PREFIX):].partition("/")[2]), resp)
        return resp

    # --- the control API ----------------------------------------------------------------------------
    def control(self, req: Request, subpath: str) -> Response:
        return Control(self).route(req, subpath)


def selection(value: str | None, table: Table) -> list[str] | None:
    if not value or value.strip() == "*":
        return None
    names = [n.strip() for n in value.split(",") if n.strip()]
    known = set(table.fields) | {"ContactEmployees", "BPAddresses", "ItemPrices", "ItemWarehouseInfoCollection",
                                 "DocumentLines"}
    for name in names:
        if name not in known:
            raise QueryError(f"Property '{name}' of '{table.type_name}' is invalid.")
    return names


def project(record: dict[str, Any], select: list[str] | None) -> dict[str, Any]:
    if not select:
        return record
    return {name: record[name] for name in select if name in record}
