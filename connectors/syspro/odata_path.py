"""SYSPRO's read-only OData service (v4 JSON, HTTP Basic with an operator enabled for OData), the other
way to read the same tables where a connection is set to it: `{base}/{CompanyId}/{Table}` with
`$filter`, `$orderby`, `$top`, following `@odata.nextLink` (wire doc §1 "SYSPRO OData": responses are
capped, 5,000 rows). No sessions and no licence seats: nothing to log off."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import requests

from connectors import odata
from connectors.base import ConnectorError
from connectors.http import retry_after_seconds, status_error
from connectors.syspro.records import TABLES

if TYPE_CHECKING:
    from connectors.syspro.client import SysproClient
    from connectors.syspro.records import Table
    from connectors.syspro.xml import Expression

SYSTEM = "SYSPRO OData"
DATE_COLUMNS = frozenset({"LastModified", "OrderDate", "ReqShipDate", "DateCustAdded"})
OPERATORS = {"EQ": "eq", "NE": "ne", "GT": "gt", "GE": "ge", "LT": "lt", "LE": "le"}


class ODataReader:
    def __init__(self, client: SysproClient):
        self.client = client
        if not client.company_id:
            raise ConnectorError("The SYSPRO OData service needs the company ID.", permanent=True)
        self.root = f"{client.base_url}/{quote(client.company_id, safe='')}"

    def ping(self) -> int:
        rows = self.rows(TABLES["customers"], return_rows=1, columns=("Customer",))
        return len(rows)

    def count(self, table: Table) -> int | None:
        """The table's rows (`$count=true`), None when the service does not report it."""
        body = self._fetch(f"{self.root}/{table.name}", {"$top": "1", "$select": table.key, "$count": "true"})
        return odata.count_of(body) if isinstance(body, dict) else None

    def rows(
        self,
        table: Table,
        *,
        where: tuple[Expression, ...] = (),
        order_by: tuple[str, ...] = (),
        return_rows: int = 0,
        columns: tuple[str, ...] = (),
    ) -> list[dict[str, Any]]:
        params: dict[str, str] = {}
        clauses = [self._clause(e) for e in where]
        if clauses:
            params["$filter"] = " and ".join(clauses)
        if order_by:
            params["$orderby"] = ",".join(order_by)
        if return_rows:
            params["$top"] = str(int(return_rows))
        if columns:
            params["$select"] = ",".join(columns)
        found: list[dict[str, Any]] = []
        for page, _body in odata.pages(
            self._fetch, f"{self.root}/{table.name}", _Params(params), system=SYSTEM
        ):
            found += [_plain(odata.strip_metadata(r)) for r in page if isinstance(r, dict)]
            if return_rows and len(found) >= return_rows:
                return found[:return_rows]
        return found

    def _fetch(self, url: str, params: dict[str, str] | None) -> Any:
        client = self.client
        resp = client._send(
            "GET",
            url,
            classify=self._classify,
            params=params,
            auth=(client.operator, client._password),
            headers={"Accept": "application/json"},
        )
        try:
            return resp.json()
        except ValueError:
            raise ConnectorError(
                f"{SYSTEM} answered with something other than JSON (is the address the OData service?).",
                permanent=True,
                status=resp.status_code,
            ) from None

    def _clause(self, e: Expression) -> str:
        op = OPERATORS.get(e.condition.upper())
        if op is None:
            raise ConnectorError(f"{SYSTEM}: the condition {e.condition} has no OData form.", permanent=True)
        value = str(e.value)
        literal = (
            (value + ("Z" if len(value) > 10 else "T00:00:00Z"))
            if e.column in DATE_COLUMNS
            else odata.quote_string(value)
        )
        return f"{e.column} {op} {literal}"

    def _classify(self, resp: requests.Response) -> ConnectorError | None:
        status = resp.status_code
        if status < 300:
            return None
        message = self.client._scrub(odata.error_of(resp)[1])
        if status in (401, 403):
            return ConnectorError(
                f"{SYSTEM} refused the operator {self.client.operator}: {message} (check the "
                "operator, its password and that it is enabled for OData).",
                auth=True,
                status=status,
            )
        return status_error(
            SYSTEM, status, message, retry_after=retry_after_seconds(resp.headers.get("Retry-After"))
        )


class _Params:
    """The query odata.pages sends with its first request."""

    def __init__(self, params: dict[str, str]):
        self._params = params

    def params(self) -> dict[str, str]:
        return dict(self._params)


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    """Dates as SYSPRO's e.net prints them (no zone), so both paths give flows the same records."""
    for key in DATE_COLUMNS & row.keys():
        if isinstance(row[key], str) and row[key].endswith("Z"):
            row[key] = row[key][:-1]
    return row
