"""OData for every ERP client: query building (V2/V3 and V4 literals), following the next-page
link of each dialect, date values and error bodies. Nothing here talks to the network: clients pass
a `fetch(url, params)` callable that does the HTTP (with the retry loop of `connectors.http`).

Dialects seen on the wire (docs/wire/erps.md):
- V2 (S/4HANA): `{"d": {"results": [...], "__next": "..."}}`, `/Date(ms)/`, `datetime'…'`/`time'…'`;
- V3-style JSON (SAP B1 v1): `{"value": [...], "odata.nextLink": "Items?$skip=20"}` (relative);
- V4 (B1 v2, IFS, Sage 300): `{"value": [...], "@odata.nextLink": "..."}`, ISO dates.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urljoin

from connectors.base import ConnectorError

NEXT_LINK_KEYS = ("@odata.nextLink", "odata.nextLink")
_DATE_MS = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")


# --- literals ----------------------------------------------------------------------------------------
def quote_string(value: Any) -> str:
    """An OData string literal: single quotes doubled."""
    return "'" + str(value).replace("'", "''") + "'"


def literal_datetime_v2(value: datetime) -> str:
    """V2 `datetime'2024-05-01T14:03:22'` (no zone: SAP V2 services read it as UTC)."""
    value = value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    return f"datetime'{value.replace(microsecond=0).isoformat()}'"


def literal_time_v2(value: time) -> str:
    """V2 `time'PT14H03M22S'` (an Edm.Time duration)."""
    return f"time'PT{value.hour:02d}H{value.minute:02d}M{value.second:02d}S'"


def literal_date_v4(value: date) -> str:
    """V4 dates are bare: `2024-05-01`."""
    return value.isoformat()


def literal_datetime_v4(value: datetime) -> str:
    """V4 DateTimeOffset is bare with a zone: `2024-05-01T14:03:22Z`."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


# --- values ------------------------------------------------------------------------------------------
def parse_datetime(value: Any) -> datetime | None:
    """`/Date(1714572202000)/`, `/Date(1714572202000+0200)/` or ISO text → aware UTC datetime; None when
    absent or unreadable (one bad value must not stop a read)."""
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    text = str(value).strip()
    match = _DATE_MS.match(text)
    if match:
        # The offset of /Date(ms+hhmm)/ only says which zone to show; the ms are already UTC.
        return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=int(match.group(1)))
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_time(value: Any) -> time | None:
    """`PT14H03M22S` (V2 Edm.Time) or `14:03:22` → time; None when unreadable."""
    if value in (None, ""):
        return None
    text = str(value).strip()
    match = re.match(r"^PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)(?:\.\d+)?S)?$", text)
    if match:
        h, m, s = (int(g or 0) for g in match.groups())
        return time(h % 24, m, s)
    try:
        return time.fromisoformat(text[:8])
    except ValueError:
        return None


def moment_of(day: Any, clock: Any, *, unreadable: str) -> datetime | None:
    """A date value and a time-of-day value read as one moment (SAP keeps them in two fields: B1
    UpdateDate/UpdateTime, S/4 LastChangeDate/LastChangeTime); None without a day. An unreadable day
    is a permanent error: `unreadable` says whose ("… sent an unreadable date")."""
    if day in (None, ""):
        return None
    moment = parse_datetime(day if str(day).startswith("/Date(") else str(day)[:10])
    if moment is None:
        raise ConnectorError(f"{unreadable}: {day!r}.", permanent=True)
    parsed = parse_time(clock)
    if parsed is not None:
        moment = moment.replace(hour=parsed.hour, minute=parsed.minute, second=parsed.second)
    return moment


def moment_fields(moment: datetime | None, day_key: str, time_key: str) -> dict[str, str]:
    """The moment as the two cursor fields `moment_of` reads back ({} for None)."""
    if moment is None:
        return {}
    return {day_key: moment.date().isoformat(), time_key: moment.strftime("%H:%M:%S")}


def strip_metadata(record: dict[str, Any]) -> dict[str, Any]:
    """Drop `__metadata`, `odata.*` and `@odata.*` annotations (nested navigation results too)."""
    clean: dict[str, Any] = {}
    for key, value in record.items():
        if key == "__metadata" or key.startswith(("odata.", "@odata.")) or "@odata." in key:
            continue
        if isinstance(value, dict) and "results" in value and isinstance(value["results"], list):
            value = value["results"]  # V2 expanded collection
        if isinstance(value, list):
            value = [strip_metadata(v) if isinstance(v, dict) else v for v in value]
        elif isinstance(value, dict) and "__deferred" in value:
            continue  # V2 navigation not expanded
        elif isinstance(value, dict):
            value = strip_metadata(value)
        clean[key] = value
    return clean


def etag_of(record: dict[str, Any]) -> str:
    """The entity's ETag in any dialect ('' when the server sent none)."""
    for key in ("@odata.etag", "odata.etag"):
        if record.get(key):
            return str(record[key])
    meta = record.get("__metadata")
    if isinstance(meta, dict) and meta.get("etag"):
        return str(meta["etag"])
    return ""


def update_with_etag(*, read: Callable[[], tuple[str, Any]], write: Callable[[str, Any], Any], system: str,
                     what: str) -> Any:
    """Optimistic concurrency for updates: `read()` gives (etag, current object); `write(etag, current)`
    sends the change with `If-Match: etag`. A 412 (someone changed it since we read) re-reads and tries
    once more; a second 412 is a clear transient failure, never a blind overwrite."""
    for attempt in range(2):
        etag, current = read()
        try:
            return write(etag, current)
        except ConnectorError as exc:
            if exc.status != 412:
                raise
            if attempt:
                raise ConnectorError(
                    f"{system}: {what} kept changing while we updated it (HTTP 412 twice); the update is tried "
                    "again later.", permanent=False, status=412, code=exc.code) from exc
    raise AssertionError("unreachable")


# --- queries -----------------------------------------------------------------------------------------
@dataclass
class Query:
    """System query options; `params()` gives them to requests (which encodes them)."""

    filter: str = ""
    select: tuple[str, ...] = ()
    expand: tuple[str, ...] = ()
    orderby: str = ""
    top: int | None = None
    skip: int | None = None
    count: str = ""  # "v2" → $inlinecount=allpages, "v4" → $count=true
    extra: dict[str, str] = field(default_factory=dict)

    def params(self) -> dict[str, str]:
        out: dict[str, str] = {}
        if self.filter:
            out["$filter"] = self.filter
        if self.select:
            out["$select"] = ",".join(self.select)
        if self.expand:
            out["$expand"] = ",".join(self.expand)
        if self.orderby:
            out["$orderby"] = self.orderby
        if self.top is not None:
            out["$top"] = str(self.top)
        if self.skip is not None:
            out["$skip"] = str(self.skip)
        if self.count == "v2":
            out["$inlinecount"] = "allpages"
        elif self.count == "v4":
            out["$count"] = "true"
        out.update(self.extra)
        return out


def all_of(*clauses: str) -> str:
    parts = [c for c in clauses if c]
    if len(parts) <= 1:
        return parts[0] if parts else ""
    return " and ".join(f"({c})" for c in parts)


# --- answers -----------------------------------------------------------------------------------------
def rows_of(body: Any, *, system: str) -> list[dict[str, Any]]:
    """The entity list of a collection answer in any dialect."""
    if isinstance(body, dict):
        if isinstance(body.get("value"), list):
            return body["value"]
        d = body.get("d")
        if isinstance(d, dict) and isinstance(d.get("results"), list):
            return d["results"]
        if isinstance(d, list):
            return d
    raise ConnectorError(f"{system} answered without a list of records (is the base URL right?).", permanent=True)


def count_of(body: Any) -> int | None:
    if not isinstance(body, dict):
        return None
    for value in (body.get("@odata.count"), body.get("odata.count"),
                  (body.get("d") or {}).get("__count") if isinstance(body.get("d"), dict) else None):
        try:
            return int(value)
        except (TypeError, ValueError):
            continue
    return None


def next_link(body: Any, *, base_url: str) -> str:
    """The absolute URL of the next page, or ''. Relative links (B1's `Items?$skip=20`) resolve against
    the collection URL they answered, as the server means them."""
    if not isinstance(body, dict):
        return ""
    link = next((body[k] for k in NEXT_LINK_KEYS if body.get(k)), "")
    if not link and isinstance(body.get("d"), dict):
        link = body["d"].get("__next") or ""
    return urljoin(base_url, str(link)) if link else ""


def error_message(body: Any) -> tuple[str, str]:
    """(code, message) from `{"error": {"code", "message": {"value"} | "..."}}` (V2/V3/V4, SAP and IFS
    shapes); ('', '') when the body is not an OData error."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, str):
        return "", error[:300]
    if not isinstance(error, dict):
        return "", ""
    message = error.get("message")
    if isinstance(message, dict):
        message = message.get("value")
    details = error.get("details")
    if not message and isinstance(details, list) and details and isinstance(details[0], dict):
        message = details[0].get("message")
    return str(error.get("code") if error.get("code") is not None else ""), str(message or "")[:300]


def error_of(resp: Any) -> tuple[str, str]:
    """(code, message) of an HTTP error answer: the OData error body's, else "HTTP <status> <reason>"."""
    try:
        code, message = error_message(resp.json())
    except ValueError:
        code, message = "", ""
    return code, message or f"HTTP {resp.status_code} {resp.reason or ''}".strip()


Fetch = Callable[[str, dict[str, str] | None], Any]


def pages(fetch: Fetch, url: str, query: Query | None = None, *, system: str,
          max_pages: int = 1_000_000) -> Iterator[tuple[list[dict[str, Any]], Any]]:
    """Follow next-page links to the end: yields (rows, body) per page. The first request carries the
    query; the links carry it on. A link that repeats is a server bug that would loop forever."""
    params: dict[str, str] | None = query.params() if query else None
    seen: set[str] = set()
    for _ in range(max_pages):
        body = fetch(url, params)
        yield rows_of(body, system=system), body
        following = next_link(body, base_url=url)
        if not following:
            return
        if following in seen:
            raise ConnectorError(f"{system} sent the same next-page link twice; stopping the read.", permanent=True)
        seen.add(following)
        url, params = following, None
    raise ConnectorError(f"{system} kept sending next-page links past {max_pages} pages.", permanent=True)
