"""Sage 300 Web API client: AR customers of one company, read incrementally by DateLastMaintained.

Wire facts (docs/wire/erps.md §3): `{base}/-/{COMPANY}/AR/ARCustomers`, HTTP Basic and
`Content-Type: application/json` on every request, at most 100 rows per GET, `$skip`/`$top` paging,
`datetime'…'` filter literals, the `{"error": {"code", "message": {"value"}}}` envelope.
DateLastMaintained has no time part, so each run re-reads from the day before the last date seen;
the engine's payload hash makes the overlap free downstream.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlsplit

import requests

from connectors.base import ConnectorError, Page, PingResult
from connectors.client import ErpClient
from connectors.http import (
    DEFAULT_POLICY,
    RetryPolicy,
    retry_after_seconds,
    session_build,
    status_error,
    timeout_default,
    url_check,
)

SYSTEM = "Sage 300"
PAGE_SIZE = 100  # the Web API's default and maximum rows per GET
OBJECTS = {"customers": "AR/ARCustomers"}


class Sage300Client(ErpClient):
    system = SYSTEM

    def __init__(
        self,
        *,
        base_url: str,
        company: str,
        user: str,
        password: str = "",
        ca_bundle_pem: str = "",
        pinned_sha256: str = "",
        session: requests.Session | None = None,
        timeout: Any = None,
        policy: RetryPolicy = DEFAULT_POLICY,
        retries: int | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        base_url = (base_url or "").strip().rstrip("/")
        url_check(base_url)
        path = urlsplit(base_url).path.rstrip("/").lower()
        if not path:
            base_url += "/Sage300WebApi/v1.0"  # a bare host: the default IIS application path
        elif path.endswith("/sage300webapi"):
            base_url += "/v1.0"
        company = (company or "").strip().upper()
        if not company or not company.isalnum() or len(company) > 6:
            raise ConnectorError("The Sage 300 company ID must be 1 to 6 letters or digits, like SAMLTD.",
                                 permanent=True)
        if not (user or "").strip():
            raise ConnectorError("The Sage 300 user ID is missing.", permanent=True)
        self.base_url = base_url
        self.company = company
        self.user = user.strip().upper()
        # Sage 300 user ids are upper-case and classic sign-on stores passwords upper-case; sending both
        # upper-cased is what the wire notes call safe.
        self._password = password or ""
        self.session = session or session_build(ca_bundle_pem=ca_bundle_pem, pinned_sha256=pinned_sha256)
        self.session.auth = (self.user.encode(), self._password.upper().encode())
        self.session.headers.update({"Content-Type": "application/json", "Accept": "application/json"})
        self.timeout = timeout or timeout_default()
        self.policy = policy if retries is None else replace(policy, retries=retries)
        self.sleep = sleep
        self._rng = random.Random()

    @classmethod
    def from_connection(cls, connection: Any, **kwargs: Any) -> Sage300Client:
        options = connection.options or {}
        credentials = connection.credentials or {}
        return cls(
            base_url=connection.base_url,
            company=options.get("company", ""),
            user=options.get("user", ""),
            password=credentials.get("password", ""),
            ca_bundle_pem=connection.tls_ca_bundle or "",
            pinned_sha256=connection.tls_pinned_sha256 or "",
            **kwargs,
        )

    # --- ErpConnector ------------------------------------------------------------------------------
    def test_connection(self) -> PingResult:
        details: dict[str, Any] = {"company": self.company, "user": self.user, "base_url": self.base_url}
        try:
            body = self._get(self._url("customers"), {"$top": "1", "$count": "true",
                                                      "$select": "CustomerNumber"}, retries=1)
        except ConnectorError as exc:
            return PingResult(False, exc.message, details | {"kind": exc.kind, "status": exc.status,
                                                             "code": exc.code})
        count = _as_int(body.get("@odata.count"))
        if count is None:
            count_text = "customer count not reported"
        else:
            count_text = f"{count:,} customer{'' if count == 1 else 's'}"
        return PingResult(True, f"Connected to Sage 300 company {self.company} ({count_text})",
                          details | {"customers": count})

    def count(self, obj: str) -> int | None:
        """How many records of `obj` the company holds (OData $count), None when not reported."""
        return _as_int(self._get(self._url(obj), {"$top": "1", "$count": "true"}, retries=1).get("@odata.count"))

    def changed_since(self, obj: str, cursor: dict[str, Any]) -> Iterator[Page]:
        """Pages of customers maintained on or after the day before `cursor["since"]` (all customers
        when absent), in CustomerNumber order, paged by key (`CustomerNumber gt 'last'`) so rows
        deleted or added mid-read never shift a page boundary and hide a record.

        Every page but the last carries {"since", "after", "max_seen"}: resuming with it continues
        after that page's last key. The last page carries the next run's cursor, {"since": <latest
        date seen>}.
        """
        url = self._url(obj)
        cursor = cursor or {}
        since = _cursor_day(cursor.get("since"), "since")
        max_seen = _cursor_day(cursor.get("max_seen"), "max_seen")
        after = cursor.get("after")
        if after is not None and not isinstance(after, str):
            raise ConnectorError(f"The saved Sage 300 cursor has an invalid key: {after!r}.", permanent=True)
        base_filter = ""
        if since:
            overlap = since - timedelta(days=1)  # date-only field: re-read the day before
            base_filter = f"DateLastMaintained ge datetime'{overlap.isoformat()}T00:00'"
        horizon = datetime.now(UTC).date() + timedelta(days=1)
        while True:
            clauses = [c for c in (base_filter, _key_after(after)) if c]
            params = {"$orderby": "CustomerNumber", "$top": str(PAGE_SIZE), "$count": "true"}
            if clauses:
                params["$filter"] = " and ".join(clauses)
            body = self._get(url, params)
            rows = body.get("value")
            if not isinstance(rows, list):
                raise ConnectorError("Sage 300 answered without a list of customers (is the base URL right?).",
                                     permanent=True)
            for row in rows:
                day = _record_day(row.get("DateLastMaintained") if isinstance(row, dict) else None, horizon)
                if day and (max_seen is None or day > max_seen):
                    max_seen = day
            keys = [str(row.get("CustomerNumber")) for row in rows if isinstance(row, dict)
                    and row.get("CustomerNumber") not in (None, "")]
            total = _as_int(body.get("@odata.count"))  # rows matching the filter from `after` on
            # Not trusting a short page alone: a server configured with a PageSize under 100 would end
            # the read early. The count (or a nextLink) says whether rows remain.
            more = (len(rows) < total) if total is not None else len(rows) >= PAGE_SIZE
            more = bool(keys) and (more or bool(body.get("@odata.nextLink")))
            if more:
                after = max(keys)
                page_cursor: dict[str, Any] = {"after": after, "max_seen": _day_text(max_seen)}
                if since:
                    page_cursor = {"since": since.isoformat(), **page_cursor}
                yield Page(records=rows, cursor=page_cursor, remaining=total)
                continue
            next_since = max((d for d in (since, max_seen) if d), default=None)
            yield Page(records=rows, cursor={"since": next_since.isoformat()} if next_since else {},
                       remaining=total)
            return

    def read_one(self, obj: str, key: str) -> dict[str, Any] | None:
        if not key:
            raise ConnectorError("A Sage 300 customer number is required.", permanent=True)
        literal = quote(str(key).replace("'", "''"), safe="")
        try:
            body = self._get(f"{self._url(obj)}('{literal}')")
        except ConnectorError as exc:
            if exc.status == 404 and exc.code == "RecordNotFound":
                return None
            raise
        return {k: v for k, v in body.items() if not k.startswith("@odata.")}

    # --- transport ---------------------------------------------------------------------------------
    def _url(self, obj: str) -> str:
        try:
            resource = OBJECTS[obj]
        except KeyError:
            raise ConnectorError(f"Sage 300 has no object {obj!r} here (known: {', '.join(OBJECTS)}).",
                                 permanent=True) from None
        return f"{self.base_url}/-/{quote(self.company)}/{resource}"

    def _get(self, url: str, params: dict[str, str] | None = None, *, retries: int | None = None) -> dict:
        """GET through the toolkit's retry loop (connectors.http.send); the body is read by `_classify`,
        so an answer cut off mid-JSON is retried like any other transient failure."""
        policy = self.policy if retries is None else replace(self.policy, retries=retries)
        resp = self._send("GET", url, classify=self._classify, policy=policy, params=params)
        return resp.parsed

    def _classify(self, resp: requests.Response) -> ConnectorError | None:
        if resp.status_code != 200:
            return self._error(resp)
        try:
            resp.parsed = self._json(resp)  # parsed once, here, and handed back with the answer
        except ConnectorError as exc:
            return exc
        return None

    def _json(self, resp: requests.Response) -> dict:
        try:
            body = resp.json()
        except ValueError:
            if "json" in resp.headers.get("Content-Type", ""):
                raise ConnectorError("Sage 300 sent an incomplete response.", permanent=False,
                                     status=resp.status_code) from None
            raise ConnectorError("Sage 300 answered with something other than JSON (is the base URL the "
                                 "Sage300WebApi address?).", permanent=True, status=resp.status_code) from None
        if not isinstance(body, dict):
            raise ConnectorError("Sage 300 sent an unexpected response.", permanent=True, status=resp.status_code)
        return body

    def _error(self, resp: requests.Response) -> ConnectorError:
        code, message = _envelope(resp)
        message = self._scrub(message)
        status = resp.status_code
        if status == 403:
            # A user outside the "Sage 300 Web API" security group (or ADMIN without
            # AllowWebApiAccessForAdmin) is a credentials problem the customer has to fix.
            return ConnectorError(
                f"Sage 300 denied access for user {self.user} ({message}). The user needs the "
                "'Sage 300 Web API' security group for AR; ADMIN also needs AllowWebApiAccessForAdmin.",
                auth=True, status=status, code=code)
        if status == 401:
            message = f"{message.rstrip('.')} (check the company ID, user ID and password)."
        retry_after = retry_after_seconds(resp.headers.get("Retry-After"))
        return status_error(SYSTEM, status, message, retry_after=retry_after, code=code)

    def _secrets(self) -> tuple[str, ...]:
        return (self._password, self._password.upper())  # sent upper-cased, so echoed either way


def _envelope(resp: requests.Response) -> tuple[str, str]:
    """(code, plain message) from the Sage error envelope, or from the status line."""
    fallback = f"HTTP {resp.status_code} {resp.reason or ''}".strip()
    try:
        body = resp.json()
    except ValueError:
        return "", fallback
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, str):
        return "", error[:300]
    if not isinstance(error, dict):
        return "", fallback
    message = error.get("message")
    if isinstance(message, dict):
        message = message.get("value")
    return str(error.get("code") or ""), (str(message)[:300] if message else fallback)


def _key_after(key: str | None) -> str:
    if not key:
        return ""
    return "CustomerNumber gt '" + key.replace("'", "''") + "'"


def _as_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _cursor_day(value: Any, name: str) -> date | None:
    if value in (None, ""):
        return None
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        raise ConnectorError(f"The saved Sage 300 cursor has an invalid {name}: {value!r}.",
                             permanent=True) from None


def _record_day(value: Any, horizon: date) -> date | None:
    """A record's DateLastMaintained as a date; None when unreadable or absurdly in the future
    (one bad record must not push the cursor past every real change)."""
    if not isinstance(value, str):
        return None
    try:
        day = date.fromisoformat(value[:10])
    except ValueError:
        return None
    return day if day <= horizon else None


def _day_text(day: date | None) -> str | None:
    return day.isoformat() if day else None
