"""The read-only SYSPRO OData service (v4 JSON, Basic auth): `/SysproOData/{CompanyId}/{Table}`."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlencode

from sandbox.core import Request, Response, json_response
from sandbox.odata import QueryError, compile_filter, parse_orderby, sort_key
from sandbox.syspro import entities as ent

if TYPE_CHECKING:
    from sandbox.syspro.app import SysproSimulator
    from sandbox.syspro.store import Company

OPTIONS = {"$filter", "$orderby", "$top", "$skip", "$select", "$count", "$format"}
ODATA_TYPES = {
    "text": "string",
    "int": "number",
    "money": "number",
    "qty": "number",
    "date": "date",
    "datetime": "date",
}
FIELDS = {
    table: {name: (name, ODATA_TYPES[kind]) for name, kind in columns.items()}
    for table, columns in ent.TABLES.items()
}


def date_literal(text: str) -> str:
    """A date or date-time literal → the stored 'YYYY-MM-DDTHH:MM:SS' (UTC, no offset)."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise QueryError(f"The literal '{text}' is not a valid Edm.DateTimeOffset.") from None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.replace(microsecond=0).isoformat()


def odata_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return json_response({"error": {"code": code, "message": message}}, status, headers)


def authenticate(company: Company, header: str) -> str | None:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        operator, _, password = base64.b64decode(encoded.strip()).decode("utf-8").partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return operator if company.operators.get(operator) == password and operator else None


def serve_odata(sim: SysproSimulator, req: Request) -> Response:
    parts = [unquote(p) for p in req.path.split("/")[2:] if p]  # after /SysproOData/
    company = sim.companies.get(parts[0]) if parts else None
    unauthorized = odata_error(
        401,
        "Unauthorized",
        "Authorization has been denied for this request.",
        {"WWW-Authenticate": 'Basic realm="SYSPRO OData"'},
    )
    with sim.lock:
        if company is None or authenticate(company, req.headers.get("authorization", "")) is None:
            sim.stats["odata_auth_failures"] += 1
            return unauthorized
        if req.method not in ("GET", "HEAD"):
            sim.stats["writes"] += 1
            sim.bump("writes_by_operation", f"odata:{req.method}")
            return odata_error(405, "MethodNotAllowed", "The SYSPRO OData service is read-only.")
        table = parts[1] if len(parts) > 1 else ""
        sim.bump("odata", table or "(service)")
    root = f"http://{req.headers.get('host', '127.0.0.1')}/SysproOData/{company.company_id}/"
    if not table:
        return json_response(
            {
                "@odata.context": f"{root}$metadata",
                "value": [{"name": name, "kind": "EntitySet", "url": name} for name in ent.TABLES],
            }
        )
    if table not in ent.TABLES or len(parts) > 2:
        return odata_error(404, "NotFound", f"No resource was found for the segment '{'/'.join(parts[1:])}'.")
    unknown = [k for k in req.query if k.startswith("$") and k not in OPTIONS]
    if unknown:
        return odata_error(400, "BadRequest", f"The query option '{unknown[0]}' is not supported.")
    try:
        top = count_option(req.arg("$top"), "$top")
        skip = count_option(req.arg("$skip"), "$skip") or 0
        select = selection(req.arg("$select"), table)
        with sim.lock:
            rows = matching(
                company, table, (req.arg("$filter") or "").strip(), (req.arg("$orderby") or "").strip()
            )
            page_size = sim.settings["odata_page_size"]
    except QueryError as exc:
        return odata_error(400, "BadRequest", str(exc))
    take = page_size if top is None else min(page_size, top)
    page = rows[skip : skip + take]
    kinds = ent.TABLES[table]
    body: dict[str, Any] = {"@odata.context": f"{root}$metadata#{table}"}
    if (req.arg("$count") or "").lower() == "true":
        body["@odata.count"] = len(rows)
    body["value"] = [render(row, kinds, select) for row in page]
    after = skip + len(page)
    end = len(rows) if top is None else min(len(rows), skip + top)
    if page and after < end:
        query = {k: v[-1] for k, v in req.query.items()}
        query["$skip"] = str(after)
        if top is not None:
            query["$top"] = str(top - len(page))
        body["@odata.nextLink"] = f"{root}{table}?{urlencode(query, quote_via=quote, safe='$,():')}"
    return json_response(body)


def count_option(value: str | None, name: str) -> int | None:
    if value is None or value == "":
        return None
    if not value.isdigit():
        raise QueryError(f"Invalid value '{value}' for {name}.")
    return int(value)


def selection(value: str | None, table: str) -> list[str] | None:
    if not value or value.strip() == "*":
        return None
    names = [n.strip() for n in value.split(",") if n.strip()]
    for name in names:
        if name not in ent.TABLES[table]:
            raise QueryError(f"Could not find a property named '{name}' on type '{table}'.")
    return names


def matching(company: Company, table: str, filter_text: str, orderby: str) -> list[dict[str, Any]]:
    """Rows in order, cached per (company state, filter, order) so paging never re-filters."""
    rows = company.tables[table].rows
    if not filter_text and not orderby:
        return rows
    cache = company.views
    key = (company.version, table, filter_text, orderby)
    hit = cache.get(key)
    if hit is not None:
        return hit
    if filter_text:
        predicate = compile_filter(
            filter_text,
            FIELDS[table],
            entity=f"SYSPRO.{table}",
            date_literal=date_literal,
            text_as={"date": date_literal},
        )
        rows = [row for row in rows if predicate(row)]
    if orderby:
        rows = list(rows)
        for column, descending in reversed(parse_orderby(orderby, FIELDS[table], entity=f"SYSPRO.{table}")):
            rows.sort(key=sort_key(column), reverse=descending)
    cache[key] = rows
    while len(cache) > 16:
        cache.popitem(last=False)
    return rows


def render(row: dict[str, Any], kinds: dict[str, str], select: list[str] | None) -> dict[str, Any]:
    out = {}
    for name in select or kinds:
        value = row[name]
        if kinds[name] in ("date", "datetime") and isinstance(value, str) and value:
            value = f"{value}Z"
        out[name] = value
    return out
