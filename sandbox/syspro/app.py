"""SYSPRO 8 simulator: e.net Solutions over the WCF REST binding (`/SYSPROWCFService/Rest/...`) and the
read-only OData service (`/SysproOData/{CompanyId}/...`).

Wire facts (../shared/docs/wire/erps.md §1), followed exactly:
- Every e.net call is a GET with query parameters; paths match case-insensitively (`logon`, `Logon`,
  `REST`, `Rest`). Every answer is HTTP 200 with `Content-Type: application/octet-stream`, failures
  included: a failure is a plain-text body starting `ERROR: `.
- `Logon?Operator=&OperatorPassword=&CompanyId=&CompanyPassword=` → the session id: 32 upper-case hex
  digits + "00" followed by two spaces (36 bytes). `UserId` is accepted with or without that padding
  (`%20%20`). Wrong operator password → `ERROR: Invalid operator password`; unknown operator →
  `ERROR: Operator '<op>' is not defined`; unknown company or wrong company password → `ERROR: Invalid
  company '<co>'` / `ERROR: Invalid company password`; every seat taken → `ERROR: Licence limit reached:
  all <n> e.net licences are in use`. An empty `CompanyPassword=` is allowed when the company has none;
  `CompanyId` may be left out when the simulator holds a single company (the operator's default).
- `Query/Query?UserId=&BusinessObject=&XmlIn=` → XML out (Windows-1252). Business objects: COMFND
  (tables ArCustomer, SorMaster, SorDetail, InvMaster, InvWarehouse), ARSQRY, SORQRY, INVQRY; shapes in
  enet.py. Unknown/expired/logged-off session → `ERROR: The supplied UserID is invalid. The session may
  have expired or been logged off.`; unknown business object or bad XmlIn → `ERROR: <reason>`; a key
  not on file (ARSQRY/SORQRY/INVQRY) → `ERROR: Sales order '<n>' not found` (and alike).
  `Query/Fetch` and `Query/Browse` answer `ERROR: ... not supported by this simulator`.
- `Logoff?UserId=` → `0`; an id not logged on → `ERROR: Unable to read the SYSPRO base directory
  registry string BaseDir8` (what the recorded server said).
- `GetVersion` → `8.0.033`; `GetLogonProfile?UserId=` → a small XML profile.
- Writes: any `Transaction/...` or `Setup/...` call (Post, Build, Add, Update, Delete) is counted in
  `writes` and refused with `ERROR: This SYSPRO company is read-only for this operator`.
- Sessions: the idle timeout slides on every call (settings `idle_timeout_s`); `licence_limit` (0 =
  unlimited) caps concurrent live sessions. Expired sessions are counted in `sessions_expired`.

Choices where the wire doc leaves room (documented, stable):
- Table columns (entities.TABLES): ArCustomer (Customer, Name, ShortName, Branch, Salesperson,
  CustomerClass, Currency, TermsCode, CreditLimit, Telephone, Email, Contact, SoldToAddr1..5,
  SoldPostalCode, CustomerOnHold Y/N, DateCustAdded, LastModified); SorMaster (SalesOrder, Customer,
  CustomerName, CustomerPoNumber, OrderDate, ReqShipDate, OrderStatus, ShipmentStatus N/P/C, Currency,
  OrderValue, Branch, Salesperson, LastModified); SorDetail (SalesOrder, SalesOrderLine, LineType,
  MStockCode, MStockDes, MWarehouse, MOrderQty, MPrice, MOrderUom); InvMaster (StockCode, Description,
  StockUom, ProductClass, SellingPrice); InvWarehouse (StockCode, Warehouse, QtyOnHand, QtyAllocated,
  QtyAvailable). Codes: customers C00001, orders 000001, stock codes A00001, warehouses FG/NTH/STH,
  currencies ISO codes. LastModified moves (by the company clock, one second per change) whenever an
  order, its lines or a customer change;
  the clock starts at `today` 20:00:00, after every generated stamp.
- COMFND: ReturnRows caps the rows (and so does settings `max_rows`, default 5000); page by key with
  `Where SalesOrder GT <last>` + `OrderBy SalesOrder`. Dates compare as dates: Value `2026-11-20` or
  `2026-11-20T14:00:00`.
- OData (v4 JSON, Basic auth with an operator's password): GET `/SysproOData/{CompanyId}/{Table}` for
  ArCustomer, SorMaster, SorDetail, InvMaster, InvWarehouse; `$filter` (sandbox/odata.py syntax; dates as
  bare `2026-11-20T00:00:00Z` or quoted), `$orderby`, `$top`, `$skip`, `$select`, `$count=true`. Each
  response holds at most settings `odata_page_size` rows (default 5000) and then `@odata.nextLink` (an
  absolute URL with `$skip` moved on). Dates come out as `2026-11-20T14:03:22Z`. Wrong credentials → 401
  `WWW-Authenticate: Basic realm="SYSPRO OData"`; any other method than GET → 405, counted in `writes`.
- Malformed orders (control API): missing_customer (Customer and CustomerName empty everywhere),
  bad_amount (OrderValue `1O4.50` and the first line's MPrice `12,3x.00`, as text, also in OData),
  broken_xml (that order's SORQRY answer is cut off mid-tag; COMFND and OData rows stay valid).

Control API (under /_sandbox/syspro/; bodies and answers are JSON):
  POST companies                   {company_id ("SYS"), company_password (""), operator ("ADMIN"),
                                    password ("admin"), operators {op: pw} (more), customers, orders,
                                    lines_max (1-20, default 20), items (stock codes, default 200), seed,
                                    today} → company info (counts per table)
  GET  companies | companies/{CO}  list / one; DELETE companies/{CO}
  POST companies/{CO}/customers     {column: value, ...} a new customer (next code, generated, then these)
  POST companies/{CO}/orders        {customer, lines: [{stock_code, quantity, price?, warehouse?}],
                                    order_date?, po_number?} a new order (next number), stamped now
  POST companies/{CO}/clock        {now: "2026-11-21T09:00:00" or a date} → info
  POST companies/{CO}/orders/{SO}/status   {order_status, shipment_status} → the SorMaster row
  POST companies/{CO}/orders/{SO}/lines    {stock_code, quantity, price?, warehouse?} adds a line;
                                   {line, quantity?, price?, stock_code?, warehouse?, description?} changes one
  DELETE companies/{CO}/orders/{SO}/lines/{n}  removes line n
  POST companies/{CO}/orders/{SO}/malformed    {kind: missing_customer|bad_amount|broken_xml}
  GET  companies/{CO}/orders/{SO}  {header, lines}
  POST companies/{CO}/customers/{C}  {column: value, ...} changes a customer (stamps LastModified)
  POST companies/{CO}/stock/{StockCode}/{Warehouse}  {on_hand?, allocated?} → the InvWarehouse row
  GET/POST settings                {idle_timeout_s, licence_limit, max_rows, odata_page_size, latency_ms}
  POST expire_sessions             every live session expires now → {expired}
  GET/POST transient_faults        {rate 0..1, kinds ["500","503","drop","error"], operations ["logon",
                                    "query","logoff","odata"], seed}: that share of matching calls fails
                                    before it is served (HTTP 500/503 with an HTML body, a dropped
                                    connection, or an HTTP 200 body `ERROR: Exception of type
                                    'System.TimeoutException' was thrown: ...`; OData gets a 503 instead of
                                    an ERROR body); fired faults are counted in stats.faults. Operation
                                    "other" (GetVersion, Transaction/..., Setup/...) may be added.
  GET/DELETE stats                 requests, logons, logon_failures, logoffs, logoff_unknown,
                                    sessions_active, sessions_peak, sessions_expired, licence_refusals,
                                    session_rejections, queries {BO: n}, query_errors {BO: n}, odata {Table: n},
                                    odata_auth_failures, writes, writes_by_operation, faults {kind: n}, recent
  POST reset                       this simulator only
(`/_sandbox/syspro/faults` is core.py's generic 5xx/429/slow/drop injection; `/_sandbox/reset` clears all.)
This package imports no product code.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any
from urllib.parse import unquote

from sandbox.core import Request, Response
from sandbox.syspro import enet
from sandbox.syspro.control import Control, TransientFaults
from sandbox.syspro.odata_api import serve_odata
from sandbox.syspro.sessions import Sessions
from sandbox.syspro.store import Company
from sandbox.syspro.xmlout import document, element, encode

ENET_PREFIX = "/sysprowcfservice/rest/"
ODATA_PREFIX = "/sysproodata/"
OCTET = "application/octet-stream"
INVALID_SESSION = "The supplied UserID is invalid. The session may have expired or been logged off."
VERSION = "8.0.033"


def enet_text(text: str) -> Response:
    return Response(200, encode(text), content_type=OCTET)


def enet_error(message: str) -> Response:
    return enet_text(f"ERROR: {message}")


class SysproSimulator:
    name = "syspro"
    prefixes = ("/SYSPROWCFService/", "/SysproOData/")
    case_insensitive_prefixes = True  # IIS/WCF: real clients vary the case of path segments

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.companies: dict[str, Company] = {}
            self.settings: dict[str, Any] = {
                "idle_timeout_s": 600.0,
                "licence_limit": 0,
                "max_rows": 5000,
                "odata_page_size": 5000,
                "latency_ms": 0,
            }
            self.transient = TransientFaults()
            self.clear_stats()
            self.sessions = Sessions(self.settings, self.stats)

    def clear_stats(self) -> None:
        live = len(self.sessions.by_id) if hasattr(self, "sessions") else 0
        self.stats: dict[str, Any] = {
            "requests": 0,
            "logons": 0,
            "logon_failures": 0,
            "logoffs": 0,
            "logoff_unknown": 0,
            "sessions_peak": live,
            "sessions_expired": 0,
            "licence_refusals": 0,
            "session_rejections": 0,
            "queries": {},
            "query_errors": {},
            "odata": {},
            "odata_auth_failures": 0,
            "writes": 0,
            "writes_by_operation": {},
            "faults": {},
        }
        if hasattr(self, "sessions"):
            self.sessions.stats = self.stats
        self.recent: deque[dict[str, Any]] = deque(maxlen=300)

    def bump(self, bucket: str, key: str) -> None:
        counts = self.stats[bucket]
        counts[key] = counts.get(key, 0) + 1

    # --- dispatch -----------------------------------------------------------------------------------
    def handle(self, req: Request) -> Response | None:
        latency = self.settings["latency_ms"] / 1000
        if latency:
            time.sleep(latency)
        lowered = req.path.lower()
        odata = lowered.startswith(ODATA_PREFIX)
        operation = "odata" if odata else self.operation_kind(lowered[len(ENET_PREFIX) :])
        with self.lock:
            self.stats["requests"] += 1
            self.recent.append(
                {
                    "method": req.method,
                    "path": unquote(req.path),
                    "query": {
                        k: v[-1]
                        for k, v in req.query.items()
                        if k.lower() not in ("operatorpassword", "companypassword")
                    },
                }
            )
            fault = self.transient.draw(operation)
            if fault:
                self.bump("faults", fault)
        if fault:
            return self.injected(fault, odata)
        if odata:
            return serve_odata(self, req)
        if not lowered.startswith(ENET_PREFIX):
            return Response(404, "Endpoint not found.", content_type="text/html")
        return self.serve_enet(req, lowered[len(ENET_PREFIX) :].strip("/"))

    @staticmethod
    def operation_kind(op: str) -> str:
        op = op.strip("/")
        if op.startswith("query/"):
            return "query"
        return op if op in ("logon", "logoff") else "other"

    @staticmethod
    def injected(fault: str, odata: bool) -> Response | None:
        if fault == "drop":
            return None
        if fault == "500":
            return Response(
                500, "<html><body><h1>Internal Server Error</h1></body></html>", content_type="text/html"
            )
        if fault == "503":
            return Response(
                503,
                "<html><body><h1>Service Unavailable</h1></body></html>",
                content_type="text/html",
                headers={"Retry-After": "1"},
            )
        if odata:  # an ERROR body is e.net's; OData fails with a 503 instead
            return Response(503, {"error": {"code": "ServiceUnavailable", "message": "The service is busy."}})
        return enet_error(
            "Exception of type 'System.TimeoutException' was thrown: the e.net communications "
            "service did not answer in time"
        )

    def arg(self, req: Request, name: str) -> str | None:
        """Query parameters by name, case-insensitively (WCF binds them that way)."""
        value = req.arg(name)
        if value is not None:
            return value
        low = name.lower()
        for key, values in req.query.items():
            if key.lower() == low and values:
                return values[-1]
        return None

    def serve_enet(self, req: Request, op: str) -> Response:
        if op == "logon":
            return self.logon(req)
        if op == "logoff":
            return self.logoff(req)
        if op == "getversion":
            return enet_text(VERSION)
        first = op.split("/", 1)[0]
        if first in ("transaction", "setup"):
            with self.lock:
                self.stats["writes"] += 1
                self.bump("writes_by_operation", f"{op}:{self.arg(req, 'BusinessObject') or ''}")
            return enet_error("This SYSPRO company is read-only for this operator")
        with self.lock:
            session = self.sessions.touch(self.arg(req, "UserId"))
            if session is None:
                self.stats["session_rejections"] += 1
                return enet_error(INVALID_SESSION)
            company = self.companies.get(session.company)
        if company is None:
            return enet_error(INVALID_SESSION)
        if op == "getlogonprofile":
            return enet_text(profile(company, session.operator))
        if op == "query/query":
            return self.query(req, company)
        if op in ("query/fetch", "query/browse"):
            return enet_error(
                f"{op.split('/')[1].title()} is not supported by this simulator: use Query/Query"
            )
        return Response(404, "Endpoint not found.", content_type="text/html")

    # --- sessions -----------------------------------------------------------------------------------
    def logon(self, req: Request) -> Response:
        operator = self.arg(req, "Operator") or ""
        password = self.arg(req, "OperatorPassword") or ""
        company_id = self.arg(req, "CompanyId")
        company_password = self.arg(req, "CompanyPassword") or ""
        with self.lock:
            if not company_id and len(self.companies) == 1:
                company_id = next(iter(self.companies))
            company = self.companies.get(company_id or "")
            message = None
            if company is None:
                message = f"Invalid company '{company_id or ''}'"
            elif operator not in company.operators:
                message = f"Operator '{operator}' is not defined"
            elif company.operators[operator] != password:
                message = "Invalid operator password"
            elif company.company_password and company.company_password != company_password:
                message = "Invalid company password"
            if message:
                self.stats["logon_failures"] += 1
                return enet_error(message)
            assert company is not None
            session = self.sessions.open(company.company_id, operator)
            if session is None:
                self.stats["licence_refusals"] += 1
                return enet_error(
                    f"Licence limit reached: all {self.settings['licence_limit']} e.net licences are in use"
                )
            self.stats["logons"] += 1
            self.stats["sessions_peak"] = max(self.stats["sessions_peak"], len(self.sessions.by_id))
        return enet_text(session.id + "  ")

    def logoff(self, req: Request) -> Response:
        with self.lock:
            if not self.sessions.close(self.arg(req, "UserId")):
                self.stats["logoff_unknown"] += 1
                return enet_error("Unable to read the SYSPRO base directory registry string BaseDir8")
            self.stats["logoffs"] += 1
        return enet_text("0")

    # --- queries ------------------------------------------------------------------------------------
    def query(self, req: Request, company: Company) -> Response:
        bo = (self.arg(req, "BusinessObject") or "").strip().upper()
        with self.lock:
            self.bump("queries", bo or "(none)")
            if bo not in enet.BUSINESS_OBJECTS:
                self.bump("query_errors", bo or "(none)")
                return enet_error(
                    f"Business object '{bo}' is not a query object this server offers "
                    f"({', '.join(enet.BUSINESS_OBJECTS)})"
                )
            try:
                body = enet.run(company, bo, self.arg(req, "XmlIn"), self.settings["max_rows"])
            except enet.EnetError as exc:
                self.bump("query_errors", bo)
                return enet_error(str(exc))
        return enet_text(body)

    # --- the control API ----------------------------------------------------------------------------
    def control(self, req: Request, subpath: str) -> Response:
        return Control(self).route(req, subpath)


def profile(company: Company, operator: str) -> str:
    return document(
        "LogonProfile",
        [
            element("CompanyName", company.company_id),
            element("CompanyId", company.company_id),
            element("OperatorCode", operator),
            element("SystemLanguage", "05"),
            element("SysproVersion", VERSION),
            element("EnetVersion", VERSION),
            element("CompanyDate", company.today.isoformat()),
        ],
    )
