"""SAP Business One Service Layer client: business partners, items, invoices read incrementally;
sales orders created for write-back.

Wire facts (docs/wire/erps.md §2): `POST {base}/b1s/v1/Login` {CompanyDB, UserName, Password} sets
`B1SESSION` and `ROUTEID` cookies, both sent on every later call; the session idles out after
SessionTimeout minutes (sliding), and an expired session is HTTP 401 with error code 301, answered by
one new Login and one retry; `POST Logout` at the end. Default server page 20, raised with
`Prefer: odata.maxpagesize`; errors `{"error": {"code", "message": {"value"}}}`; `-5002` is a business
validation error (400), `-2028` "no matching records" (404). UpdateDate has day granularity and
UpdateTime the time of day, so a run re-reads from the last day seen and filters by time here; the
engine's hash makes the overlap free downstream. Reads page by key (`CardCode gt 'last'`) rather than
`$skip`, so a record changed mid-read can neither hide another nor appear twice.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from http.cookiejar import DefaultCookiePolicy
from typing import Any
from urllib.parse import quote, urlsplit

import requests

from connectors import odata
from connectors.auth import SessionLogon
from connectors.base import ConnectorError, NotFound, Page, PingResult
from connectors.client import ErpClient, json_object, status_answer
from connectors.http import (
    DEFAULT_POLICY,
    RetryPolicy,
    session_build,
    url_check,
)

SYSTEM = "SAP Business One"
PAGE_SIZE = 100
TIME_OVERLAP = timedelta(minutes=5)  # our clock vs. the B1 server's, and writes committing late
SESSION_EXPIRED = "301"
LOGIN_FAILED = "100000027"


class Entity:
    def __init__(self, path: str, key: str, *, numeric_key: bool = False, select: tuple[str, ...] = ()):
        self.path, self.key, self.numeric_key, self.select = path, key, numeric_key, select

    def key_literal(self, value: Any) -> str:
        if self.numeric_key:
            try:
                return str(int(value))
            except (TypeError, ValueError):
                raise ConnectorError(f"{SYSTEM}: {self.key} must be a number (got {value!r}).", permanent=True) from None
        return odata.quote_string(value)


OBJECTS = {
    "business_partners": Entity("BusinessPartners", "CardCode"),
    "items": Entity("Items", "ItemCode"),
    "invoices": Entity("Invoices", "DocEntry", numeric_key=True),
    "orders": Entity("Orders", "DocEntry", numeric_key=True),
    "profit_centers": Entity("ProfitCenters", "CenterCode"),
}


class SapB1Client(ErpClient):
    """One client per run: log on lazily, share the session across the run's threads, log off on close
    (use it as a context manager)."""

    system = SYSTEM
    objects = OBJECTS

    def __init__(self, *, base_url: str, company_db: str, user: str, password: str, ca_bundle_pem: str = "",
                 pinned_sha256: str = "", session: requests.Session | None = None, timeout: Any = None,
                 policy: RetryPolicy = DEFAULT_POLICY, sleep: Callable[[float], None] = time.sleep,
                 page_size: int | None = None):
        base_url = (base_url or "").strip().rstrip("/")
        url_check(base_url)
        path = urlsplit(base_url).path.rstrip("/").lower()
        if not path:
            base_url += "/b1s/v1"  # a bare host: the Service Layer's own path
        elif path.endswith("/b1s"):
            base_url += "/v1"
        if not base_url.lower().endswith(("/b1s/v1", "/b1s/v2")):
            raise ConnectorError("The SAP Business One address must be the Service Layer, like "
                                 "https://b1.example.com:50000/b1s/v1.", permanent=True)
        if not (company_db or "").strip() or not (user or "").strip():
            raise ConnectorError("The SAP Business One company database and user name are required.", permanent=True)
        self.base_url = base_url
        self.v4 = base_url.lower().endswith("/v2")
        self.company_db = company_db.strip()
        self.user = user.strip()
        self._password = password or ""
        self.session = session or session_build(ca_bundle_pem=ca_bundle_pem, pinned_sha256=pinned_sha256)
        # The session cookie is ours to send (the Service Layer's Set-Cookie has no Path and a trailing
        # semicolon, which cookie jars handle inconsistently): the jar keeps nothing.
        self.session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
        self.session.headers.update({"Accept": "application/json"})
        self.timeout = timeout
        self.policy = policy
        self.sleep = sleep
        self.page_size = page_size or PAGE_SIZE
        self._rng = random.Random()
        self.logon = SessionLogon(logon=self._login, logoff=self._logout, expired=_session_expired)

    @classmethod
    def from_connection(cls, connection: Any, **kwargs: Any) -> SapB1Client:
        options = connection.options or {}
        credentials = connection.credentials or {}
        return cls(base_url=connection.base_url, company_db=options.get("company_db", ""),
                   user=options.get("user", ""), password=credentials.get("password", ""),
                   ca_bundle_pem=connection.tls_ca_bundle or "", pinned_sha256=connection.tls_pinned_sha256 or "",
                   **kwargs)

    # --- session ------------------------------------------------------------------------------------
    def _login(self) -> str:
        resp = self._send("POST", f"{self.base_url}/Login", classify=self._classify, idempotent=True,
                          json={"CompanyDB": self.company_db, "UserName": self.user, "Password": self._password})
        body = self._json(resp)
        session_id = str(body.get("SessionId") or resp.cookies.get("B1SESSION") or "")
        if not session_id:
            raise ConnectorError(f"{SYSTEM} accepted the login but sent no session id.", permanent=True)
        route = resp.cookies.get("ROUTEID") or ""
        return f"B1SESSION={session_id}" + (f"; ROUTEID={route}" if route else "")

    def _logout(self, cookie: str) -> None:
        self._send("POST", f"{self.base_url}/Logout", classify=self._classify, policy=RetryPolicy(retries=0),
                   headers={"Cookie": cookie})

    def call(self, method: str, path: str, *, params: dict[str, str] | None = None, json: Any = None,
             headers: dict[str, str] | None = None) -> requests.Response:
        """One Service Layer call on the shared session (logged on again once if it expired)."""
        url = path if path.startswith("http") else f"{self.base_url}/{path.lstrip('/')}"

        def attempt(cookie: str) -> requests.Response:
            return self._send(method, url, classify=self._classify, params=params, json=json,
                              headers={**(headers or {}), "Cookie": cookie})

        return self.logon.run(attempt, system=SYSTEM)

    # --- ErpConnector ------------------------------------------------------------------------------
    def test_connection(self) -> PingResult:
        details: dict[str, Any] = {"company_db": self.company_db, "user": self.user, "base_url": self.base_url}
        try:
            resp = self.call("GET", "BusinessPartners", params={"$select": "CardCode", "$top": "1",
                                                                 **self._count_param()})
            count = odata.count_of(self._json(resp))
        except ConnectorError as exc:
            return PingResult(False, exc.message, details | {"kind": exc.kind, "status": exc.status, "code": exc.code})
        finally:
            self.logon.close()
        count_text = "business partner count not reported" if count is None else f"{count:,} business partners"
        return PingResult(True, f"Connected to SAP Business One company {self.company_db} ({count_text})",
                          details | {"business_partners": count})

    def count(self, obj: str) -> int | None:
        """How many records of `obj` the company holds ($count / $inlinecount), None when not reported."""
        entity = self._object(obj)
        resp = self.call("GET", entity.path, params={"$select": entity.key, "$top": "1", **self._count_param()})
        return odata.count_of(self._json(resp))

    def changed_since(self, obj: str, cursor: dict[str, Any]) -> Iterator[Page]:
        """Pages of `obj` updated at or after the cursor's (date, time) less an overlap, in key order.

        Pages but the last carry {"since", "time", "after", "max_seen"} to resume after that page's last
        key; the last carries the next run's start, the latest (UpdateDate, UpdateTime) seen."""
        entity = self._object(obj)
        cursor = cursor or {}
        since = _cursor_moment(cursor.get("since"), cursor.get("time"))
        max_seen = _cursor_moment(cursor.get("max_seen"), cursor.get("max_seen_time"))
        after = cursor.get("after")
        start = since - TIME_OVERLAP if since else None
        base_filter = f"UpdateDate ge {odata.quote_string(start.date().isoformat())}" if start else ""
        horizon = datetime.now(UTC) + timedelta(days=1)
        while True:
            key_clause = f"{entity.key} gt {entity.key_literal(after)}" if after not in (None, "") else ""
            params = {"$orderby": entity.key, "$filter": odata.all_of(base_filter, key_clause), **self._count_param()}
            if not params["$filter"]:
                del params["$filter"]
            body = self._json(self.call("GET", entity.path, params=params,
                                        headers={"Prefer": f"odata.maxpagesize={self.page_size}"}))
            rows = [odata.strip_metadata(r) for r in odata.rows_of(body, system=SYSTEM) if isinstance(r, dict)]
            for row in rows:
                moment = _record_moment(row)
                if moment and moment <= horizon and (max_seen is None or moment > max_seen):
                    max_seen = moment
            fresh = [r for r in rows if start is None or (_record_moment(r) or horizon) >= start]
            keys = [r.get(entity.key) for r in rows if r.get(entity.key) not in (None, "")]
            remaining = odata.count_of(body)
            more = bool(keys) and (bool(odata.next_link(body, base_url=self.base_url + "/"))
                                   or (remaining is not None and len(rows) < remaining))
            if more:
                after = max(keys)
                page_cursor = {"after": after, **odata.moment_fields(max_seen, "max_seen", "max_seen_time")}
                if since:
                    page_cursor.update(odata.moment_fields(since, "since", "time"))
                yield Page(records=fresh, cursor=page_cursor, remaining=remaining)
                continue
            latest = max((m for m in (since, max_seen) if m), default=None)
            yield Page(records=fresh, cursor=odata.moment_fields(latest, "since", "time") if latest else {},
                       remaining=remaining)
            return

    def read_one(self, obj: str, key: str) -> dict[str, Any] | None:
        entity = self._object(obj)
        try:
            resp = self.call("GET", f"{entity.path}({quote(entity.key_literal(key), safe=chr(39))})")
        except NotFound:
            return None
        return odata.strip_metadata(self._json(resp))

    # --- write-back -------------------------------------------------------------------------------
    def order_find(self, *, reference: str) -> dict[str, Any] | None:
        """The sales order carrying our reference in NumAtCard (adopt before create), if any."""
        resp = self.call("GET", "Orders", params={"$filter": f"NumAtCard eq {odata.quote_string(reference)}",
                                                  "$select": "DocEntry,DocNum,CardCode,NumAtCard,DocTotal"})
        rows = odata.rows_of(self._json(resp), system=SYSTEM)
        return odata.strip_metadata(rows[0]) if rows else None

    def order_create(self, *, card_code: str, reference: str, lines: list[dict[str, Any]],
                     comments: str = "") -> dict[str, Any]:
        """POST Orders. B1 has no idempotency key: a lost answer raises with `ambiguous` and the caller
        looks for the reference before trying again."""
        if not lines:
            raise ConnectorError("The deal has no products, so there are no order lines to send.", permanent=True)
        body = {"CardCode": card_code, "NumAtCard": reference, "Comments": comments[:254],
                "DocDueDate": date.today().isoformat(), "DocumentLines": lines}
        return odata.strip_metadata(self._json(self.call("POST", "Orders", json=body)))

    def order_update(self, doc_entry: int, changes: dict[str, Any]) -> None:
        """PATCH an order's header fields (Comments, NumAtCard, DocDueDate, U_*) with If-Match: the ETag of
        a fresh read. A 412 re-reads and retries once (connectors.odata.update_with_etag)."""
        path = f"Orders({int(doc_entry)})"

        def read() -> tuple[str, Any]:
            resp = self.call("GET", path)
            body = self._json(resp)
            return odata.etag_of(body) or resp.headers.get("ETag", ""), body

        def write(etag: str, _current: Any) -> None:
            self.call("PATCH", path, json=changes, headers={"If-Match": etag} if etag else None)

        odata.update_with_etag(read=read, write=write, system=SYSTEM, what=f"order {doc_entry}")

    # --- helpers ----------------------------------------------------------------------------------
    def _count_param(self) -> dict[str, str]:
        return {"$count": "true"} if self.v4 else {"$inlinecount": "allpages"}

    def _json(self, resp: requests.Response) -> dict[str, Any]:
        return json_object(resp, system=SYSTEM, not_json=f"{SYSTEM} answered with something other than JSON (is "
                           "the address the Service Layer, ending in /b1s/v1?).")

    def _classify(self, resp: requests.Response) -> ConnectorError | None:
        status = resp.status_code
        if status < 300:
            return None
        if 300 <= status < 400:
            return ConnectorError(f"{SYSTEM} answered with a redirect; enter the Service Layer's final address.",
                                  permanent=True, status=status)
        code, message = odata.error_of(resp)
        message = self._scrub(_plain(message))
        if status == 401 and code == SESSION_EXPIRED:
            # permanent for the retry loop: the session logon renews it once (see `call`)
            return ConnectorError(f"{SYSTEM}: the session expired.", permanent=True, status=status, code=code)
        if status == 401 or code == LOGIN_FAILED:
            return ConnectorError(f"{SYSTEM} rejected the login for {self.user} on {self.company_db}: {message} "
                                  "(check the company database, user name and password).",
                                  auth=True, status=status, code=code)
        return status_answer(resp, system=SYSTEM, message=message, code=code)

    def _secrets(self) -> tuple[str, ...]:
        return (self._password,)


_FIELD_MESSAGE = re.compile(r"^\[(?P<field>[^\]]+)\](?:\[line: (?P<line>\d+)\])?\s*,\s*'(?P<text>.*)'$", re.S)


def _plain(message: str) -> str:
    """B1's "[ORDR.CardCode] , 'Business partner C0003 is inactive'" in plain words:
    "Business partner C0003 is inactive (ORDR.CardCode)"."""
    match = _FIELD_MESSAGE.match((message or "").strip())
    if not match:
        return message
    where = match["field"] + (f", line {match['line']}" if match["line"] else "")
    return f"{match['text']} ({where})"


def _session_expired(exc: ConnectorError) -> bool:
    return exc.status == 401 and exc.code == SESSION_EXPIRED


def _record_moment(row: dict[str, Any]) -> datetime | None:
    day = odata.parse_datetime(row.get("UpdateDate"))
    if day is None:
        return None
    clock = odata.parse_time(row.get("UpdateTime"))
    if clock is not None:
        day = day.replace(hour=clock.hour, minute=clock.minute, second=clock.second)
    return day


def _cursor_moment(day: Any, clock: Any) -> datetime | None:
    return odata.moment_of(day, clock, unreadable=f"The saved {SYSTEM} cursor has an invalid date")
