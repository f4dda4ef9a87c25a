"""SYSPRO 8 client: customers, sales orders with their lines, stock items and warehouse stock, read
incrementally through e.net (REST binding) or, where the connection says so, the OData service.

Wire facts (docs/wire/erps.md §1): every e.net call is a GET answered HTTP 200, failures included, as
a plain-text body starting `ERROR`; so the body is checked for that prefix before anything is parsed
as XML. `Logon` returns a session id padded with two spaces; each session holds an e.net licence seat
until `Logoff` or its idle timeout, so one client logs on once (lazily), shares the session with its
threads, logs on again once when SYSPRO says the UserID is invalid (expired), and logs off when it
closes, also after errors. A logon refused because every seat is taken waits for a seat with
backoff (another flow's run is about to log off) instead of failing the run. Reads are COMFND table
queries: `LastModified GE <last seen less an overlap>` and key paging (`Customer GT <last key>`),
never ReturnRows offsets. Nothing is ever written to SYSPRO.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import requests

from connectors.auth import SessionLogon
from connectors.base import UNREADABLE, ConnectorError, Page, PingResult
from connectors.client import ErpClient
from connectors.http import (
    DEFAULT_POLICY,
    RetryPolicy,
    retry_after_seconds,
    session_build,
    status_error,
)
from connectors.syspro import xml
from connectors.syspro.odata_path import ODataReader
from connectors.syspro.reads import TableReadsMixin
from connectors.syspro.records import (
    TABLES,
    Table,
    unreadable_rows,
)

SYSTEM = "SYSPRO"
ENET_PATH = "/SYSPROWCFService/Rest"
ODATA_PATH = "/SysproOData"
PAGE_SIZE = 200
TIME_OVERLAP = timedelta(minutes=5)  # our clock vs. SYSPRO's, and writes committing late
SESSION_INVALID = "session_invalid"
LICENCE = "licence"
SEAT_WAIT_S = 300.0
# ERROR bodies that are SYSPRO's passing trouble (its service timing out, busy), retried like a 503
TRANSIENT_WORDS = (
    "timeout",
    "did not answer",
    "not answer in time",
    "busy",
    "try again",
    "deadlock",
)  # how long a logon waits for a licence seat before the run is retried later


@dataclass
class SeatWait:
    """Backoff while every e.net licence seat is taken: the other holder is usually a run about to end."""

    total_s: float = SEAT_WAIT_S
    base_s: float = 0.25
    cap_s: float = 5.0


class SysproClient(TableReadsMixin, ErpClient):
    """One client per run (use it as a context manager): log on lazily, share the session across the
    run's threads, log off on close."""

    system = SYSTEM

    def __init__(
        self,
        *,
        base_url: str,
        operator: str,
        password: str,
        company_id: str = "",
        company_password: str = "",
        api: str = "enet",
        ca_bundle_pem: str = "",
        pinned_sha256: str = "",
        session: requests.Session | None = None,
        timeout: Any = None,
        policy: RetryPolicy = DEFAULT_POLICY,
        sleep: Callable[[float], None] = time.sleep,
        page_size: int | None = None,
        seat_wait: SeatWait | None = None,
    ):
        if not (operator or "").strip():
            raise ConnectorError("The SYSPRO operator is required.", permanent=True)
        if api not in ("enet", "odata"):
            raise ConnectorError("The SYSPRO interface must be e.net or OData.", permanent=True)
        base_url = (base_url or "").strip().rstrip("/")
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConnectorError(
                "The SYSPRO address must be a URL like https://syspro.example.com:20000.", permanent=True
            )
        if api == "enet" and not parts.path.lower().endswith(ENET_PATH.lower()):
            base_url += ENET_PATH  # a bare host: the e.net REST service's own path
        if api == "odata" and not parts.path.lower().endswith(ODATA_PATH.lower()):
            base_url += ODATA_PATH
        self.base_url = base_url
        self.api = api
        self.operator = operator.strip()
        self.company_id = (company_id or "").strip()
        self._password = password or ""
        self._company_password = company_password or ""
        self.session = session or session_build(ca_bundle_pem=ca_bundle_pem, pinned_sha256=pinned_sha256)
        self.timeout = timeout
        self.policy = policy
        self.sleep = sleep
        self.page_size = page_size or PAGE_SIZE
        self.seat_wait = seat_wait or SeatWait()
        self._rng = random.Random()
        self.logon = SessionLogon(logon=self._logon, logoff=self._logoff, expired=_session_invalid)
        self.odata = ODataReader(self) if api == "odata" else None

    @classmethod
    def from_connection(cls, connection: Any, **kwargs: Any) -> SysproClient:
        options = connection.options or {}
        credentials = connection.credentials or {}
        return cls(
            base_url=connection.base_url,
            operator=options.get("operator", ""),
            company_id=options.get("company_id", ""),
            api=options.get("api") or "enet",
            password=credentials.get("password", ""),
            company_password=credentials.get("company_password", ""),
            ca_bundle_pem=connection.tls_ca_bundle or "",
            pinned_sha256=connection.tls_pinned_sha256 or "",
            **kwargs,
        )

    # --- session ------------------------------------------------------------------------------------
    def _logon(self) -> str:
        params = {
            "Operator": self.operator,
            "OperatorPassword": self._password,
            "CompanyId": self.company_id,
            "CompanyPassword": self._company_password,
        }
        if not self.company_id:
            del params["CompanyId"]  # the operator's default company
        waited, attempt = 0.0, 0
        while True:
            try:
                text = self._get("Logon", params, logon=True)
                break
            except ConnectorError as exc:
                if exc.code != LICENCE or waited >= self.seat_wait.total_s:
                    raise
            delay = min(self.seat_wait.cap_s, self.seat_wait.base_s * 2**attempt) * self._rng.uniform(
                0.5, 1.0
            )
            self.sleep(delay)
            waited, attempt = waited + delay, attempt + 1
        session_id = text.decode("cp1252", errors="replace").strip()
        if not session_id or any(ch.isspace() or ch == "<" for ch in session_id):
            raise ConnectorError(f"{SYSTEM} accepted the logon but sent no session id.", permanent=True)
        return session_id

    def _logoff(self, session_id: str) -> None:
        """Any `ERROR:` on logoff means the session is already gone (wire doc); SessionLogon.close
        ignores a failed logoff (the seat then frees at SYSPRO's idle timeout)."""
        self._get("Logoff", {"UserId": session_id}, policy=RetryPolicy(retries=2, base_s=0.2))

    def _get(
        self, path: str, params: dict[str, str], *, logon: bool = False, policy: RetryPolicy | None = None
    ) -> bytes:
        """One e.net GET through the retry loop. An `ERROR` body is classified there, before anyone
        parses it: transient ones (SYSPRO's own timeouts) are retried like an HTTP 503, the rest raise."""
        try:
            resp = self._send(
                "GET",
                f"{self.base_url}/{path}",
                classify=partial(self._classify, logon=logon),
                policy=policy,
                params=params,
            )
        except ConnectorError as exc:
            if logon:  # the transport's own error text quotes the URL, which carries the passwords
                exc.__cause__, exc.__context__, exc.__suppress_context__ = None, None, True
            raise
        return resp.content

    def query(self, xml_in: str, *, business_object: str = "COMFND") -> bytes:
        """Query/Query on the shared session (logged on again once if it expired); the raw XmlOut."""

        def attempt(session_id: str) -> bytes:
            return self._get(
                "Query/Query", {"UserId": session_id, "BusinessObject": business_object, "XmlIn": xml_in}
            )

        return self.logon.run(attempt, system=SYSTEM)

    def table_rows(
        self,
        table: str,
        *,
        where: tuple[xml.Expression, ...] = (),
        order_by: tuple[str, ...] = (),
        return_rows: int = 0,
        columns: tuple[str, ...] = (),
        key: str = "",
    ) -> list[dict[str, Any]]:
        """Rows of one COMFND query. Rows SYSPRO sent as broken XML come back as {key, UNREADABLE: why}
        (each fails alone in the engine); a wholly unreadable answer fails the call."""
        body = self.query(
            xml.comfnd(table=table, columns=columns, where=where, order_by=order_by, return_rows=return_rows)
        )
        try:
            root = xml.parse(body)
        except xml.XmlUnreadable as exc:
            rows = unreadable_rows(body, key=key)
            if rows is None:
                raise ConnectorError(
                    f"{SYSTEM} answered a {table} query with XML we could not read: {exc}.",
                    permanent=False,
                    code="bad_xml",
                ) from None
            return rows
        problems = xml.errors_of(root)
        if problems:
            raise ConnectorError(
                f"{SYSTEM} refused the {table} query: {'; '.join(problems)[:500]}",
                permanent=True,
                code="business_object",
            )
        return xml.rows_of(root)

    # --- ErpConnector ------------------------------------------------------------------------------
    def test_connection(self) -> PingResult:
        details: dict[str, Any] = {
            "operator": self.operator,
            "company_id": self.company_id or "(default)",
            "base_url": self.base_url,
            "api": self.api,
        }
        try:
            if self.odata is not None:
                count = self.odata.ping()
                return PingResult(
                    True, f"Connected to SYSPRO OData as {self.operator} ({count} customers seen)", details
                )
            self.logon.current()
        except ConnectorError as exc:
            return PingResult(
                False, exc.message, details | {"kind": exc.kind, "status": exc.status, "code": exc.code}
            )
        finally:
            self.logon.close()
        company = f"company {self.company_id}" if self.company_id else "the operator's default company"
        return PingResult(True, f"Logged on to SYSPRO {company} as {self.operator} and off again", details)

    def changed_since(self, obj: str, cursor: dict[str, Any]) -> Iterator[Page]:
        """Pages of `obj` changed at or after the cursor's moment less an overlap, in key order. Pages
        but the last carry {"since", "after", "max_seen"} to resume after that page's last key; the last
        carries the next run's start, the latest change seen."""
        table = self._table(obj)
        if obj == "customer_stock":
            yield Page(records=self.customer_stock(), cursor={})
            return
        cursor = cursor or {}
        since = _moment(cursor.get("since"))
        max_seen = _moment(cursor.get("max_seen"))
        after = cursor.get("after") or ""
        start = since - TIME_OVERLAP if since and table.changed else None
        while True:
            rows = self._page(table, start=start, after=after)
            for row in rows:
                moment = _moment(row.get(table.changed)) if table.changed else None
                if moment and (max_seen is None or moment > max_seen):
                    max_seen = moment
            keys = [str(r.get(table.key) or "") for r in rows if r.get(table.key)]
            if table.lines is not None and rows:
                rows = self._with_lines(table, rows)
            if table.warehouses and rows:
                rows = self._with_warehouses(rows)
            more = len(keys) >= self.page_size
            if more:
                after = max(keys)
                page_cursor = {
                    "after": after,
                    **_moment_field(max_seen, "max_seen"),
                    **_moment_field(since, "since"),
                }
                yield Page(records=rows, cursor=page_cursor)
                continue
            latest = max((m for m in (since, max_seen) if m), default=None)
            yield Page(records=rows, cursor=_moment_field(latest, "since"), remaining=len(rows))
            return

    def read_one(self, obj: str, key: str) -> dict[str, Any] | None:
        table = self._table(obj)
        if obj == "customer_stock":
            return next((r for r in self.customer_stock() if r.get(table.key) == key), None)
        rows = self._rows(table, where=(xml.Expression(table.key, "EQ", key),), return_rows=1)
        if not rows:
            return None
        if table.lines is not None:
            rows = self._with_lines(table, rows)
        if table.warehouses:
            rows = self._with_warehouses(rows)
        return rows[0]

    # --- helpers ----------------------------------------------------------------------------------
    def _table(self, obj: str) -> Table:
        table = TABLES.get(obj)
        if table is None or obj not in ("customers", "sales_orders", "stock_items", "customer_stock"):
            known = "customers, sales_orders, stock_items, customer_stock"
            raise ConnectorError(f"{SYSTEM} has no object {obj!r} here (known: {known}).", permanent=True)
        return table

    def _classify(self, resp: requests.Response, *, logon: bool = False) -> ConnectorError | None:
        status = resp.status_code
        if status < 300:
            head = resp.content[:16].decode("cp1252", errors="replace").lstrip().upper()
            if head.startswith("ERROR"):
                return self._error_body(resp.content.decode("cp1252", errors="replace").strip(), logon=logon)
            return None
        message = self._scrub(
            resp.content[:300].decode("cp1252", errors="replace").strip()
            or f"HTTP {status} {resp.reason or ''}".strip()
        )
        if status in (401, 403):
            return ConnectorError(
                f"{SYSTEM} refused the operator {self.operator}: {message}", auth=True, status=status
            )
        return status_error(
            SYSTEM, status, message, retry_after=retry_after_seconds(resp.headers.get("Retry-After"))
        )

    def _error_body(self, text: str, *, logon: bool = False) -> ConnectorError:
        """An `ERROR: …` body in plain words: invalid session (log on again), licence seats (wait),
        rejected logon (auth), anything else permanent for this call."""
        message = self._scrub(text.split(":", 1)[1].strip() if ":" in text else text)[:500] or "no details"
        lowered = message.lower()
        if (
            "userid is invalid" in lowered
            or "user id is invalid" in lowered
            or "session" in lowered
            and ("expired" in lowered or "invalid" in lowered)
        ):
            # permanent for the retry loop: the session logon renews it once (see `query`)
            return ConnectorError(
                f"{SYSTEM}: the session expired ({message}).", permanent=True, code=SESSION_INVALID
            )
        if any(word in lowered for word in TRANSIENT_WORDS):
            return ConnectorError(
                f"{SYSTEM} could not answer just now: {message}", permanent=False, code="busy"
            )
        if "licen" in lowered or "seat" in lowered or "concurrent" in lowered:
            return ConnectorError(
                f"{SYSTEM} has no free e.net licence seat right now ({message}); the run "
                "waits for one and is retried later if none frees up.",
                permanent=False,
                code=LICENCE,
            )
        if logon:
            return ConnectorError(
                f"{SYSTEM} refused the logon of operator {self.operator}"
                f"{' on company ' + self.company_id if self.company_id else ''}: {message} "
                "(check the operator, passwords and company).",
                auth=True,
                code="logon",
            )
        return ConnectorError(f"{SYSTEM} refused the request: {message}", permanent=True, code="error_body")

    def _secrets(self) -> tuple[str, ...]:
        return (self._password, self._company_password)


def _session_invalid(exc: ConnectorError) -> bool:
    return exc.code == SESSION_INVALID


def _moment(value: Any) -> datetime | None:
    text = str(value or "").strip()
    if not text:
        return None
    text = text.replace(" ", "T").rstrip("Z")
    try:
        moment = datetime.fromisoformat(text[:19] if len(text) >= 19 else text[:10])
    except ValueError:
        return None
    return moment.replace(tzinfo=None)


def _moment_field(moment: datetime | None, key: str) -> dict[str, str]:
    return {key: moment.strftime("%Y-%m-%dT%H:%M:%S")} if moment else {}


__all__ = ["SysproClient", "UNREADABLE"]
