"""Sage 300 Web API simulator: AR customers per company, over the real URLs, auth and error envelope.

Wire facts (docs/wire/erps.md §3): `/Sage300WebApi/v1.0/-/{COMPANY}/AR/ARCustomers` and
`ARCustomers('KEY')`; HTTP Basic on every request; `Content-Type: application/json` required on every
request (missing → HTTP 500); at most 100 rows per GET; `$filter`/`$select`/`$top`/`$skip`/`$orderby`/
`$count=true` (count as a string); `@odata.nextLink` while rows remain; errors as
`{"error": {"code": ..., "message": {"lang": "en-US", "value": ...}}}`.

Choices where the wire doc leaves room:
- Credentials are checked case-insensitively (user ids are upper-case, classic Sage sign-on stores
  passwords upper-case), so `admin:admin` and `ADMIN:ADMIN` both sign on to a company created with
  ADMIN/ADMIN. An unknown company answers 401 like a bad password (the sign-on is per company).
- The Content-Type check comes after authentication; any type other than application/json is a 500.
- Rate limiting: `max_concurrent` (settings) answers 429 TooManyRequests, without Retry-After (Sage
  documents none); injected 429 faults use the same envelope. Every request that arrives while
  `max_concurrent` others are being served is counted in stats `over_limit` (and the most served at
  once in `max_in_flight`), so a test can see at the server whether reads ever overlapped.
- DateLastMaintained is date-only (`YYYY-MM-DDT00:00:00`) and moves to the company's "today" on every
  write; "today" is set by the control API so tests control time.

Control API (under /_sandbox/sage300/; bodies and answers are JSON):
  POST companies                      {company, user, password, customers, seed, today} → company info
  GET  companies | companies/{C}      list / one company's info; DELETE companies/{C}
  POST companies/{C}/mutate           {count | fraction, seed, today, create, delete, fields, records}
                                      → {changed, created, deleted, today}; changed rows get today's date;
                                      `fields` (wire names) limits the edits to those fields; `records`:
                                      true adds {before, after}: each changed customer as it was and is
  POST companies/{C}/today            {today}
  GET/PUT/PATCH/DELETE companies/{C}/customers/{KEY}   PUT upserts, PATCH merges (wire field names)
  POST companies/{C}/malformed        {kinds: [...MALFORMED_KINDS]} → {created: {key: kind}}
  POST companies/{C}/raw_customers    {records: [{CustomerNumber, <wire fields>...}]} → {stored: [keys]}:
                                      values stored exactly as given (any JSON type, no coercion), for
                                      generated bad input; DateLastMaintained is always today
  GET/POST settings                   {page_size, next_link, max_concurrent, latency_ms}
  GET/DELETE stats                    request counts by status/method/company, over_limit, max_in_flight,
                                      recent requests

Data lives in memory per company: rows (lists, in FIELDS order) sorted by CustomerNumber plus a key
index; filtered/ordered results are cached per (filter, orderby) until the company's next write, so
paging through 100,000 customers never re-filters or re-sorts per request.
This package imports no product code.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import random
import re
import threading
import time
from collections import OrderedDict, deque
from datetime import date, timedelta
from typing import Any
from urllib.parse import quote, unquote, urlencode

from sandbox import generator
from sandbox.core import Request, Response, json_response
from sandbox.odata import QueryError, compile_filter, parse_orderby, sort_key

# Wire field order and OData types (enum values are serialized as names).
FIELDS: tuple[tuple[str, str], ...] = (
    ("CustomerNumber", "string"), ("GroupCode", "string"), ("NationalAccount", "string"),
    ("ShortName", "string"), ("Status", "enum"), ("InactiveDate", "date"), ("DateLastMaintained", "date"),
    ("OnHold", "enum"), ("StartDate", "date"), ("CustomerName", "string"), ("AddressLine1", "string"),
    ("AddressLine2", "string"), ("AddressLine3", "string"), ("AddressLine4", "string"), ("City", "string"),
    ("StateProvince", "string"), ("ZipPostalCode", "string"), ("Country", "string"),
    ("ContactName", "string"), ("PhoneNumber", "string"), ("FaxNumber", "string"),
    ("TerritoryCode", "string"), ("AccountSet", "string"), ("AccountType", "enum"), ("Terms", "string"),
    ("TaxGroup", "string"), ("CurrencyCode", "string"), ("CreditLimitCustomerCurrency", "number"),
    ("BalanceDueInCustomerCurrency", "number"), ("BalanceDueInFunctionalCurrency", "number"),
    ("AmountPastDue", "number"), ("NumberOfOpenDocuments", "number"), ("DateOfLastInvoice", "date"),
    ("Salesperson1", "string"), ("CustomerPriceList", "string"), ("Email", "string"),
    ("ContactsEmail", "string"), ("ContactsPhone", "string"), ("ContactsFax", "string"),
    ("WebSite", "string"), ("DeliveryMethod", "enum"), ("CheckCreditLimit", "bool"),
)
NAMES = tuple(name for name, _ in FIELDS)
FIELD_INDEX = {name: (i, typ) for i, (name, typ) in enumerate(FIELDS)}
KEY = 0
IDX = {name: i for i, name in enumerate(NAMES)}
LAST_MAINTAINED = IDX["DateLastMaintained"]
# generator's neutral names → Sage fields, for generator.mutate
MUTABLE = {"name": "CustomerName", "contact_name": "ContactName", "address1": "AddressLine1",
           "address2": "AddressLine2", "city": "City", "state": "StateProvince", "postal_code": "ZipPostalCode",
           "country": "Country", "phone": "PhoneNumber", "fax": "FaxNumber", "email": "Email",
           "website": "WebSite", "terms": "Terms", "group": "GroupCode",
           "credit_limit": "CreditLimitCustomerCurrency", "active": "Status"}
ACCOUNT_SETS = {"USD": "USA", "CAD": "CAN", "GBP": "UK", "EUR": "EURO", "AUD": "AUS", "ZAR": "ZAR"}
PAGE_SIZE = 100
KEY_MAX = 12  # IDCUST is 12 characters
PREFIX = "/Sage300WebApi/"
ENTITY = "Sage.CA.SBS.ERP.Sage300.AR.WebApi.Models.Customer"
MALFORMED_KINDS = ("missing_name", "null_name", "long_name", "control_chars", "absurd_credit_limit",
                   "negative_credit_limit", "wrong_type", "bad_date", "future_date", "bad_email",
                   "missing_fields", "all_empty")
_date_strings: dict[date, str] = {}


def wire_date(value: date | None) -> str | None:
    """date → 'YYYY-MM-DDT00:00:00' (one shared string per day keeps 100,000 rows small)."""
    if value is None:
        return None
    text = _date_strings.get(value)
    if text is None:
        text = _date_strings.setdefault(value, f"{value.isoformat()}T00:00:00")
    return text


def sage_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return json_response({"error": {"code": code, "message": {"lang": "en-US", "value": message}}}, status,
                         headers)


def parse_day(value: Any, field: str = "today") -> date:
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        raise ValueError(f"{field} must be a date like 2024-05-01 (got {value!r})") from None


class Company:
    def __init__(self, code: str, user: str, password: str, today: date, seed: int):
        self.code = code
        self.user = user
        self.password = password
        self.today = today
        self.seed = seed
        self.keys: list[str] = []  # sorted CustomerNumbers
        self.rows: list[list[Any]] = []  # rows in the same order
        self.by_key: dict[str, list[Any]] = {}
        self.missing: dict[str, frozenset[str]] = {}  # malformed rows whose fields are absent on the wire
        self.version = 0
        self.cache: OrderedDict[tuple[str, str], tuple[int, list[list[Any]]]] = OrderedDict()
        self.next_index = 0
        self.mutations = 0
        self.malformed = 0

    # --- rows --------------------------------------------------------------------------------------
    def row_from_generated(self, rec: dict[str, Any]) -> list[Any]:
        i = rec["index"]
        credit = float(rec["credit_limit"])
        balance = float(rec["balance"])
        past_due = round(balance * 0.2, 2) if i % 7 == 0 else 0.0
        last_invoice = rec["last_changed"] - timedelta(days=i % 45) if balance else None
        row = [
            str(1_000_000 + i), rec["group"], "", rec["short_name"], "Active" if rec["active"] else "Inactive",
            wire_date(rec["inactive_since"]), wire_date(rec["last_changed"]), "Yes" if i % 41 == 0 else "No",
            wire_date(rec["started"]), rec["name"], rec["address1"], rec["address2"], rec["address3"],
            rec["address4"], rec["city"], rec["state"], rec["postal_code"], rec["country"], rec["contact_name"],
            rec["phone"], rec["fax"], "", ACCOUNT_SETS.get(rec["currency"], "USA"),
            "BalanceForward" if i % 11 == 0 else "OpenItem", rec["terms"], rec["tax_group"], rec["currency"],
            credit, balance, balance, past_due, (i % 9) if balance else 0,
            wire_date(max(last_invoice, rec["started"])) if last_invoice else None, rec["salesperson"],
            rec["price_list"], rec["email"], rec["contact_email"], "", "", rec["website"],
            "Email" if rec["email"] else "Mail", credit > 0,
        ]
        return row

    def blank_row(self, key: str) -> list[Any]:
        row: list[Any] = []
        for _, typ in FIELDS:
            row.append({"string": "", "number": 0.0, "bool": False, "date": None}.get(typ, ""))
        row[KEY] = key
        row[IDX["Status"]] = "Active"
        row[IDX["OnHold"]] = "No"
        row[IDX["AccountType"]] = "OpenItem"
        row[IDX["DeliveryMethod"]] = "Mail"
        row[IDX["CurrencyCode"]] = "USD"
        row[IDX["AccountSet"]] = "USA"
        row[IDX["StartDate"]] = wire_date(self.today)
        return row

    def populate(self, count: int) -> None:
        rows = [self.row_from_generated(generator.company_record(i, self.seed, today=self.today))
                for i in range(self.next_index, self.next_index + count)]
        self.next_index += count
        rows.extend(self.rows)
        rows.sort(key=lambda r: r[KEY])
        self.rows = rows
        self.keys = [r[KEY] for r in rows]
        self.by_key = {r[KEY]: r for r in rows}
        self.touch()

    def touch(self) -> None:
        self.version += 1
        self.cache.clear()

    def insert(self, row: list[Any]) -> None:
        key = row[KEY]
        if key in self.by_key:
            self.by_key[key][:] = row
        else:
            at = bisect.bisect_left(self.keys, key)
            self.keys.insert(at, key)
            self.rows.insert(at, row)
            self.by_key[key] = row
        self.touch()

    def delete(self, key: str) -> bool:
        row = self.by_key.pop(key, None)
        if row is None:
            return False
        at = bisect.bisect_left(self.keys, key)
        del self.keys[at]
        del self.rows[at]
        self.missing.pop(key, None)
        self.touch()
        return True

    def as_record(self, row: list[Any], select: list[tuple[str, int]] | None = None) -> dict[str, Any]:
        record = {name: row[i] for name, i in select} if select else dict(zip(NAMES, row, strict=True))
        for name in self.missing.get(row[KEY], ()):
            record.pop(name, None)
        return record

    def apply(self, row: list[Any], data: dict[str, Any]) -> None:
        """Write wire fields into a row, the way the server's view would (types coerced, dates set)."""
        unknown = [name for name in data if name not in IDX]
        if unknown:
            raise ValueError(f"Unknown field(s): {', '.join(sorted(unknown))}.")
        for name, value in data.items():
            typ = FIELD_INDEX[name][1]
            if typ == "number" and value is not None and not isinstance(value, bool | int | float):
                raise ValueError(f"{name} must be a number.")
            if typ == "date" and value is not None:
                value = wire_date(parse_day(value, name))
            row[IDX[name]] = value
        self.missing.pop(row[KEY], None)

    def query(self, filter_text: str, orderby: str) -> list[list[Any]]:
        """The rows matching $filter in $orderby order; cached until the next write."""
        by_key = not orderby or orderby.strip() == "CustomerNumber"
        if not filter_text and by_key:
            return self.rows
        keyset = KEYSET.match(filter_text) if by_key else None
        if keyset and " or " not in (keyset["base"] or "").lower():
            # Paging by key (`… and CustomerNumber gt 'X'`): the base filter is cached and already in key
            # order, so each page is a bisection instead of a scan of every customer.
            base = self.query(keyset["base"] or "", orderby)
            after = keyset["key"].replace("''", "'")
            return base[bisect.bisect_right(base, after, key=lambda row: row[KEY]):]
        cache_key = (filter_text, orderby)
        hit = self.cache.get(cache_key)
        if hit and hit[0] == self.version:
            self.cache.move_to_end(cache_key)
            return hit[1]
        rows = self.rows
        if filter_text:
            predicate = compile_filter(filter_text, FIELD_INDEX, entity=ENTITY)
            rows = [row for row in rows if predicate(row)]
        if orderby:
            rows = list(rows)
            for index, descending in reversed(parse_orderby(orderby, FIELD_INDEX, entity=ENTITY)):
                rows.sort(key=sort_key(index), reverse=descending)  # stable: ties keep CustomerNumber order
        self.cache[cache_key] = (self.version, rows)
        while len(self.cache) > 16:
            self.cache.popitem(last=False)
        return rows


KEYSET = re.compile(r"^(?:(?P<base>.+?)\s+and\s+)?CustomerNumber\s+gt\s+'(?P<key>(?:[^']|'')*)'$", re.IGNORECASE)


class Sage300Simulator:
    name = "sage300"
    prefixes = (PREFIX,)

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.companies: dict[str, Company] = {}
            self.settings: dict[str, Any] = {"page_size": PAGE_SIZE, "next_link": True, "max_concurrent": 0,
                                             "latency_ms": 0}
            self.in_flight = 0
            self.stats: dict[str, Any] = self.stats_new()
            self.recent: deque[dict[str, Any]] = deque(maxlen=200)

    @staticmethod
    def stats_new() -> dict[str, Any]:
        return {"requests": 0, "by_status": {}, "by_method": {}, "by_company": {}, "over_limit": 0,
                "max_in_flight": 0}

    # --- the Web API -------------------------------------------------------------------------------
    def handle(self, req: Request) -> Response:
        with self.lock:
            self.in_flight += 1
            self.stats["max_in_flight"] = max(self.stats["max_in_flight"], self.in_flight)
            limit = self.settings["max_concurrent"]
            flooded = bool(limit) and self.in_flight > limit
            if flooded:
                self.stats["over_limit"] += 1
            latency = self.settings["latency_ms"] / 1000
        try:
            if latency:
                time.sleep(latency)
            resp = self.too_many() if flooded else self.serve(req)
        finally:
            with self.lock:
                self.in_flight -= 1
        self.count(req, resp)
        return resp

    def injected_429(self, req: Request) -> Response:
        resp = self.too_many()
        self.count(req, resp)
        return resp

    @staticmethod
    def too_many() -> Response:
        return sage_error(429, "TooManyRequests",
                          "The server was flooded with too many concurrent requests. Try again later.")

    def count(self, req: Request, resp: Response) -> None:
        parts = req.path.split("/")
        company = unquote(parts[4]).upper() if len(parts) > 4 else ""
        with self.lock:
            stats = self.stats
            stats["requests"] += 1
            for bucket, value in (("by_status", str(resp.status)), ("by_method", req.method),
                                  ("by_company", company)):
                stats[bucket][value] = stats[bucket].get(value, 0) + 1
            query = "&".join(f"{k}={v[-1]}" for k, v in req.query.items())
            self.recent.append({"method": req.method, "path": unquote(req.path), "query": query,
                                "status": resp.status})

    def serve(self, req: Request) -> Response:
        # /Sage300WebApi/v1.0/-/{COMPANY}/{MODULE}/{RESOURCE}[(key)]
        parts = req.path[len(PREFIX):].split("/")
        if len(parts) < 4 or parts[0] != "v1.0" or parts[1] != "-":
            return sage_error(404, "ResourceNotFound", f"The resource '{unquote(req.path)}' is not found.")
        company = self.companies.get(unquote(parts[2]).upper())
        denied = self.authenticate(req, company)
        if denied:
            return denied
        assert company is not None
        content_type = req.headers.get("content-type", "")
        if content_type.split(";")[0].strip().lower() != "application/json":
            return sage_error(500, "InternalServerError",
                              "An error has occurred: the request must carry 'Content-Type: application/json'.")
        module, resource = parts[3].upper(), unquote("/".join(parts[4:]))
        if module != "AR":
            return sage_error(404, "ResourceNotFound", f"The module '{parts[3]}' is not available.")
        if resource == "$metadata":
            return Response(200, metadata_xml(), content_type="application/xml")
        base = f"http://{req.headers.get('host', '127.0.0.1')}{PREFIX}v1.0/-/{company.code}/AR"
        if resource == "ARCustomers":
            if req.method == "GET":
                return self.customer_list(req, company, base)
            if req.method == "POST":
                return self.customer_create(req, company, base)
            return sage_error(405, "MethodNotAllowed", f"The method {req.method} is not allowed here.")
        if resource.startswith("ARCustomers(") and resource.endswith(")"):
            key = entity_key(resource[len("ARCustomers("):-1])
            if key is None:
                return sage_error(400, "InvalidEntityKey", f"The entity key in '{resource}' is not valid.")
            return self.customer_one(req, company, key, base)
        return sage_error(404, "ResourceNotFound", f"The resource '{resource}' is not found in module AR.")

    def authenticate(self, req: Request, company: Company | None) -> Response | None:
        header = req.headers.get("authorization", "")
        user = password = None
        if header[:6].lower() == "basic ":
            try:
                user, _, password = base64.b64decode(header[6:].strip()).decode("utf-8").partition(":")
            except (binascii.Error, UnicodeDecodeError):
                user = None
        if (company is None or user is None or user.upper() != company.user.upper()
                or password.upper() != company.password.upper()):
            return sage_error(401, "Unauthorized", "Authorization has been denied for this request.",
                              {"WWW-Authenticate": 'Basic realm="Sage300WebApi"'})
        return None

    def customer_list(self, req: Request, company: Company, base: str) -> Response:
        allowed = {"$filter", "$select", "$top", "$skip", "$orderby", "$count", "$format", "$expand"}
        unknown = [k for k in req.query if k.startswith("$") and k not in allowed]
        if unknown:
            return invalid(f"The query parameter '{unknown[0]}' is not supported.")
        try:
            top = nonnegative(req.arg("$top"), "$top")
            skip = nonnegative(req.arg("$skip"), "$skip") or 0
            count = (req.arg("$count") or "false").lower()
            if count not in ("true", "false"):
                raise QueryError(f"'{req.arg('$count')}' is not a valid value for $count.")
            select = selection(req.arg("$select"))
            filter_text = (req.arg("$filter") or "").strip()
            orderby = (req.arg("$orderby") or "").strip()
            with self.lock:
                rows = company.query(filter_text, orderby)
                page_size = self.settings["page_size"]
                take = page_size if top is None else min(top, page_size)
                page = rows[skip:skip + take]
                total = len(rows)
                value = [company.as_record(row, select) for row in page]
        except QueryError as exc:
            return invalid(str(exc))
        context = f"{base}/$metadata#ARCustomers"
        if select:
            context += f"({','.join(name for name, _ in select)})"
        body: dict[str, Any] = {"@odata.context": context}
        if count == "true":
            body["@odata.count"] = str(total)
        body["value"] = value
        after = skip + len(page)
        if self.settings["next_link"] and page and after < total:
            query = {k: v[-1] for k, v in req.query.items()}
            query["$skip"] = str(after)
            if top is not None:
                query["$top"] = str(take)
            encoded = urlencode(query, quote_via=quote, safe="$,()':")
            body["@odata.nextLink"] = f"{base}/ARCustomers?{encoded}"
        return json_response(body)

    def customer_one(self, req: Request, company: Company, key: str, base: str) -> Response:
        with self.lock:
            row = company.by_key.get(key)
            if req.method == "DELETE":
                if not company.delete(key):
                    return not_found(key)
                return Response(204)
            if req.method in ("PATCH", "PUT"):
                try:
                    data = req.json()
                except ValueError:
                    data = None
                if not isinstance(data, dict):
                    return sage_error(400, "InvalidPayload", "The request body must be a JSON object.")
                if row is None and req.method == "PATCH":
                    return not_found(key)
                if data.get("CustomerNumber", key) != key:
                    return sage_error(400, "InvalidPayload", "CustomerNumber cannot be changed.")
                new = list(row) if (row is not None and req.method == "PATCH") else company.blank_row(key)
                try:
                    company.apply(new, data)
                except ValueError as exc:
                    return sage_error(400, "InvalidPayload", str(exc))
                new[LAST_MAINTAINED] = wire_date(company.today)
                company.insert(new)
                return Response(204)
            if req.method != "GET":
                return sage_error(405, "MethodNotAllowed", f"The method {req.method} is not allowed here.")
            if row is None:
                return not_found(key)
            try:
                select = selection(req.arg("$select"))
            except QueryError as exc:
                return invalid(str(exc))
            record = company.as_record(row, select)
        return json_response({"@odata.context": f"{base}/$metadata#ARCustomers/$entity", **record})

    def customer_create(self, req: Request, company: Company, base: str) -> Response:
        try:
            data = req.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            return sage_error(400, "InvalidPayload", "The request body must be a JSON object.")
        key = data.get("CustomerNumber")
        if not isinstance(key, str) or not key.strip() or len(key) > KEY_MAX:
            return sage_error(400, "InvalidPayload", f"CustomerNumber is required (1 to {KEY_MAX} characters).")
        with self.lock:
            if key in company.by_key:
                return sage_error(409, "RecordDuplicate", f"Customer '{key}' already exists.")
            row = company.blank_row(key)
            try:
                company.apply(row, data)
            except ValueError as exc:
                return sage_error(400, "InvalidPayload", str(exc))
            row[LAST_MAINTAINED] = wire_date(company.today)
            company.insert(row)
            record = company.as_record(row)
        location = f"{base}/ARCustomers('{quote(key.replace(chr(39), chr(39) * 2))}')"
        return json_response({"@odata.context": f"{base}/$metadata#ARCustomers/$entity", **record}, 201,
                             {"Location": location})

    # --- the control API ---------------------------------------------------------------------------
    def control(self, req: Request, subpath: str) -> Response:
        parts = [unquote(p) for p in subpath.strip("/").split("/") if p]
        try:
            data = req.json() if req.body else {}
        except ValueError:
            return json_response({"error": "the body must be JSON"}, 400)
        data = data or {}
        try:
            with self.lock:
                return self.control_route(req.method, parts, data)
        except (ValueError, TypeError) as exc:
            return json_response({"error": str(exc)}, 400)

    def control_route(self, method: str, parts: list[str], data: dict[str, Any]) -> Response:
        if parts == ["stats"]:
            if method == "DELETE":
                self.stats = self.stats_new()
                self.recent.clear()
            return json_response({**self.stats, "recent": list(self.recent),
                                  "customers": {c.code: len(c.rows) for c in self.companies.values()}})
        if parts == ["settings"]:
            if method == "POST":
                for key in ("page_size", "max_concurrent", "latency_ms"):
                    if key in data:
                        self.settings[key] = max(0, int(data[key]))
                if "next_link" in data:
                    self.settings["next_link"] = bool(data["next_link"])
                self.settings["page_size"] = self.settings["page_size"] or PAGE_SIZE
            return json_response(self.settings)
        if parts == ["companies"]:
            if method == "POST":
                return json_response(self.company_create(data), 201)
            return json_response({"companies": [self.company_info(c) for c in self.companies.values()]})
        if len(parts) < 2 or parts[0] != "companies":
            return json_response({"error": "unknown sage300 control path"}, 404)
        company = self.companies.get(parts[1].upper())
        if company is None:
            return json_response({"error": f"no company {parts[1]!r}"}, 404)
        rest = parts[2:]
        if not rest:
            if method == "DELETE":
                del self.companies[company.code]
                return json_response({"deleted": company.code})
            return json_response(self.company_info(company))
        if rest == ["mutate"] and method == "POST":
            return json_response(self.company_mutate(company, data))
        if rest == ["today"] and method == "POST":
            company.today = parse_day(data.get("today"))
            return json_response(self.company_info(company))
        if rest == ["malformed"] and method == "POST":
            return json_response(self.company_malformed(company, data), 201)
        if rest == ["raw_customers"] and method == "POST":
            return json_response(self.company_raw(company, data), 201)
        if len(rest) == 2 and rest[0] == "customers":
            return self.control_customer(method, company, rest[1], data)
        return json_response({"error": "unknown sage300 control path"}, 404)

    @staticmethod
    def company_info(company: Company) -> dict[str, Any]:
        return {"company": company.code, "user": company.user, "customers": len(company.rows),
                "today": company.today.isoformat(), "seed": company.seed, "version": company.version}

    def company_create(self, data: dict[str, Any]) -> dict[str, Any]:
        code = str(data.get("company") or "SAMLTD").upper()
        if not code.isalnum() or len(code) > 6:
            raise ValueError("company must be 1 to 6 letters or digits, like SAMLTD")
        today = parse_day(data["today"]) if data.get("today") else date.today()
        company = Company(code, str(data.get("user") or "ADMIN").upper(), str(data.get("password", "ADMIN")),
                          today, int(data.get("seed", 0)))
        company.populate(max(0, int(data.get("customers", 0))))
        self.companies[code] = company
        return self.company_info(company)

    def company_mutate(self, company: Company, data: dict[str, Any]) -> dict[str, Any]:
        """One day's changes: edit `count` (or `fraction`) customers, optionally create and delete some."""
        if data.get("today"):
            company.today = parse_day(data["today"])
        company.mutations += 1
        rng = random.Random(int(data["seed"]) if "seed" in data else company.seed * 7919 + company.mutations)
        size = len(company.rows)
        count = int(data["count"]) if "count" in data else round(float(data.get("fraction", 0.01)) * size)
        count = max(0, min(count, size))
        today = wire_date(company.today)
        mutable = MUTABLE
        if data.get("fields") is not None:
            allowed = set(data["fields"])
            unknown = allowed - set(NAMES)
            if unknown:
                raise ValueError(f"unknown Sage 300 fields {sorted(unknown)}")
            mutable = {neutral: wire for neutral, wire in MUTABLE.items() if wire in allowed}
        changed, before, after = [], {}, {}
        for position in sorted(rng.sample(range(size), count)):
            row = company.rows[position]
            record = dict(zip(NAMES, row, strict=True))
            if data.get("records"):
                before[row[KEY]] = company.as_record(row)
            keys = generator.mutate(record, rng, mutable)
            for name in keys:
                row[IDX[name]] = record[name]
            if "Status" in keys:
                row[IDX["InactiveDate"]] = today if record["Status"] == "Inactive" else None
            row[LAST_MAINTAINED] = today
            changed.append(row[KEY])
            if data.get("records"):
                after[row[KEY]] = company.as_record(row)
        deleted = []
        for _ in range(min(int(data.get("delete", 0)), len(company.rows))):
            key = company.keys[rng.randrange(len(company.keys))]
            company.delete(key)
            deleted.append(key)
        created = []
        for _ in range(int(data.get("create", 0))):
            rec = generator.company_record(company.next_index, company.seed, today=company.today)
            company.next_index += 1
            row = company.row_from_generated(rec)
            row[LAST_MAINTAINED] = row[IDX["StartDate"]] = today
            company.insert(row)
            created.append(row[KEY])
        company.touch()
        answer = {"changed": changed, "created": created, "deleted": sorted(deleted),
                  "today": company.today.isoformat()}
        if data.get("records"):
            answer.update(before=before, after=after)
        return answer

    def control_customer(self, method: str, company: Company, key: str, data: dict[str, Any]) -> Response:
        """Operator access to one customer; no auth. PUT upserts (missing fields get defaults), PATCH
        merges. DateLastMaintained moves to today unless the body sets it."""
        row = company.by_key.get(key)
        if method == "GET":
            if row is None:
                return json_response({"error": f"no customer {key!r}"}, 404)
            return json_response(company.as_record(row))
        if method == "DELETE":
            return json_response({"deleted": company.delete(key)}, 200 if row is not None else 404)
        if method not in ("PUT", "PATCH"):
            return json_response({"error": f"{method} not supported here"}, 405)
        if row is None and method == "PATCH":
            return json_response({"error": f"no customer {key!r}"}, 404)
        if len(key) > KEY_MAX:
            raise ValueError(f"a customer number has at most {KEY_MAX} characters")
        new = list(row) if (row is not None and method == "PATCH") else company.blank_row(key)
        data = {k: v for k, v in data.items() if k != "CustomerNumber"}
        if "DateLastMaintained" not in data:
            new[LAST_MAINTAINED] = wire_date(company.today)
        company.apply(new, data)
        company.insert(new)
        return json_response(company.as_record(company.by_key[key]))

    def company_raw(self, company: Company, data: dict[str, Any]) -> dict[str, Any]:
        """Rows as a broken import could leave them: whatever JSON value each field holds. Only the key
        and the maintenance date stay well-formed, so paging and the changed-since filter still work."""
        stored = []
        today = wire_date(company.today)
        for rec in data.get("records") or []:
            key = rec.get("CustomerNumber")
            if not isinstance(key, str) or not key or len(key) > KEY_MAX:
                raise ValueError(f"CustomerNumber must be 1 to {KEY_MAX} characters (got {key!r})")
            row = company.blank_row(key)
            for name, value in rec.items():
                if name in IDX and name not in ("CustomerNumber", "DateLastMaintained"):
                    row[IDX[name]] = value
            row[LAST_MAINTAINED] = today
            company.missing.pop(key, None)
            company.insert(row)
            stored.append(key)
        return {"stored": stored}

    def company_malformed(self, company: Company, data: dict[str, Any]) -> dict[str, Any]:
        """Customers a real Sage database can end up holding (bad imports, old data): one per kind."""
        kinds = data.get("kinds") or list(MALFORMED_KINDS)
        bad = [k for k in kinds if k not in MALFORMED_KINDS]
        if bad:
            raise ValueError(f"unknown kinds {bad}; known: {list(MALFORMED_KINDS)}")
        today = wire_date(company.today)
        made: dict[str, str] = {}
        for kind in kinds:
            rec = generator.company_record(company.next_index, company.seed, today=company.today)
            company.next_index += 1
            company.malformed += 1
            row = company.row_from_generated(rec)
            key = f"BAD{company.malformed:04d}"
            row[KEY] = key
            row[LAST_MAINTAINED] = today
            if kind == "missing_name":
                row[IDX["CustomerName"]] = ""
            elif kind == "null_name":
                row[IDX["CustomerName"]] = None
            elif kind == "long_name":
                row[IDX["CustomerName"]] = ("Very Long Company Name " * 20).strip()
            elif kind == "control_chars":
                row[IDX["CustomerName"]] = "Tab\there\nNew line\x00Nul \u200bZero-width Ltd"
            elif kind == "absurd_credit_limit":
                row[IDX["CreditLimitCustomerCurrency"]] = 1e18
            elif kind == "negative_credit_limit":
                row[IDX["CreditLimitCustomerCurrency"]] = -50000.0
            elif kind == "wrong_type":
                row[IDX["CreditLimitCustomerCurrency"]] = "n/a"
                row[IDX["PhoneNumber"]] = 5551234
            elif kind == "bad_date":
                row[LAST_MAINTAINED] = None
                row[IDX["StartDate"]] = "0000-00-00T00:00:00"
            elif kind == "future_date":
                row[LAST_MAINTAINED] = "9999-12-31T00:00:00"
            elif kind == "bad_email":
                row[IDX["Email"]] = "accounts at example dot com"
                row[IDX["WebSite"]] = "htp:/broken"
            elif kind == "missing_fields":
                company.missing[key] = frozenset({"CustomerName", "AddressLine1", "City", "Email"})
            elif kind == "all_empty":
                for name, typ in FIELDS:
                    if typ == "string" and name != "CustomerNumber":
                        row[IDX[name]] = ""
            company.insert(row)
            made[key] = kind
        return {"created": made}


def entity_key(text: str) -> str | None:
    """"'1100'" or "CustomerNumber='1100'" → "1100" (quotes doubled inside)."""
    text = text.strip()
    if "=" in text and not text.startswith("'"):
        name, _, text = text.partition("=")
        if name.strip() != "CustomerNumber":
            return None
        text = text.strip()
    if len(text) < 2 or text[0] != "'" or text[-1] != "'":
        return None
    inner = text[1:-1]
    if "'" in inner.replace("''", ""):
        return None
    return inner.replace("''", "'")


def nonnegative(value: str | None, name: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        number = int(value)
    except ValueError:
        raise QueryError(f"Invalid value '{value}' for {name} query option.") from None
    if number < 0:
        raise QueryError(f"Invalid value '{value}' for {name} query option: it must not be negative.")
    return number


def selection(value: str | None) -> list[tuple[str, int]] | None:
    if not value or value.strip() == "*":
        return None
    names = [n.strip() for n in value.split(",") if n.strip()]
    for name in names:
        if name not in IDX:
            raise QueryError(f"Could not find a property named '{name}' on type "
                             f"'{ENTITY}'.")
    return [(name, IDX[name]) for name in names]


def invalid(message: str) -> Response:
    return sage_error(400, "InvalidParameters", f"The query specified in the URI is not valid. {message}")


def not_found(key: str) -> Response:
    return sage_error(404, "RecordNotFound", f"A Record cannot be found for the specified entity key '{key}'.")


def metadata_xml() -> str:
    edm = {"string": "Edm.String", "enum": "Edm.String", "date": "Edm.DateTimeOffset", "number": "Edm.Decimal",
           "bool": "Edm.Boolean"}
    props = "".join(f'<Property Name="{name}" Type="{edm[typ]}"/>' for name, typ in FIELDS)
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx"><edmx:DataServices>'
        '<Schema Namespace="Sage.CA.SBS.ERP.Sage300.AR.WebApi.Models" xmlns="http://docs.oasis-open.org/odata/ns/edm">'
        f'<EntityType Name="Customer"><Key><PropertyRef Name="CustomerNumber"/></Key>{props}</EntityType>'
        '<EntityContainer Name="Container"><EntitySet Name="ARCustomers" '
        'EntityType="Sage.CA.SBS.ERP.Sage300.AR.WebApi.Models.Customer"/></EntityContainer>'
        "</Schema></edmx:DataServices></edmx:Edmx>"
    )
