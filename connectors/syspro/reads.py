"""How SysproClient reads its tables: a page of changed rows, an order page's lines (one SORQRY per order
through e.net, a SorDetail range through OData), stock items' warehouses, and whole detail tables for the
customers' stock. A mixin of SysproClient (client.py), which supplies the session, `table_rows`,
`query` and `odata`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from connectors.base import UNREADABLE, ConnectorError
from connectors.syspro import xml
from connectors.syspro.records import TABLES, Table, lines_attach, sorqry_lines, stock_by_customer

SYSTEM = "SYSPRO"
LINES_PAGE = 5000  # detail rows per COMFND call (the sandbox's and OData's cap)


class TableReadsMixin:
    odata: Any
    page_size: int
    _table: Any

    def count(self, obj: str) -> int | None:
        """How many records of `obj` the company holds, through OData's `$count`; None through e.net (a
        COMFND query has no count, and reading every key to count it is no cheaper than the sync), and for
        customer_stock (a grouping, not a table): the estimate then uses a sample."""
        table = self._table(obj)
        if self.odata is None or obj == "customer_stock":
            return None
        return self.odata.count(table)

    def _rows(self, table: Table, **kwargs: Any) -> list[dict[str, Any]]:
        if self.odata is not None:
            return self.odata.rows(table, **kwargs)
        return self.table_rows(table.name, key=table.parent_key or table.key, **kwargs)

    def _page(self, table: Table, *, start: datetime | None, after: str) -> list[dict[str, Any]]:
        where = []
        if start is not None:
            where.append(xml.Expression(table.changed, "GE", start.strftime("%Y-%m-%dT%H:%M:%S")))
        if after:
            where.append(xml.Expression(table.key, "GT", after))
        return self._rows(table, where=tuple(where), order_by=(table.key,), return_rows=self.page_size)

    def _with_lines(self, table: Table, orders: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The page's orders with their lines under "Lines": through e.net one SORQRY per order (the sales
        order query returns its stocked lines; an answer that is not XML fails that order alone), through
        OData the page's order-number range of SorDetail."""
        if self.odata is not None:
            spec = table.lines
            keys = sorted(str(o.get(table.key) or "") for o in orders if o.get(table.key))
            if not keys:
                return orders
            where = (
                xml.Expression(spec.parent_key, "GE", keys[0]),
                xml.Expression(spec.parent_key, "LE", keys[-1]),
            )
            lines = self.odata.rows(spec, where=where, order_by=(spec.parent_key, spec.key))
            return lines_attach(orders, lines, key=table.key, parent_key=spec.parent_key)
        result = []
        for order in orders:
            number = str(order.get(table.key) or "")
            if UNREADABLE in order or not number:
                result.append(order)
                continue
            try:
                lines = self.order_lines(number)
            except ConnectorError as exc:
                if exc.code not in ("bad_xml", "error_body", "business_object"):
                    raise  # SYSPRO unreachable or the session lost: the run's problem, not this order's
                result.append(
                    {**order, UNREADABLE: f"SYSPRO's sales order query for {number} failed: {exc.message}"}
                )
                continue
            result.append({**order, "Lines": lines})
        return result

    def order_lines(self, number: str) -> list[dict[str, Any]]:
        """SORQRY with stocked lines: [{SalesOrder, SalesOrderLine, LineType, MStockCode, MOrderQty, MPrice, …}]."""
        body = self.query(xml.sorqry(number), business_object="SORQRY")
        try:
            root = xml.parse(body)
        except xml.XmlUnreadable as exc:
            raise ConnectorError(
                f"{SYSTEM} answered the sales order query for {number} with XML we could not read: {exc}.",
                permanent=True,
                code="bad_xml",
            ) from None
        problems = xml.errors_of(root)
        if problems:
            raise ConnectorError(
                f"{SYSTEM} refused the sales order query for {number}: {'; '.join(problems)[:300]}",
                permanent=True,
                code="business_object",
            )
        return sorqry_lines(root, number)

    def _with_warehouses(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        codes = sorted(str(i.get("StockCode") or "") for i in items if i.get("StockCode"))
        if not codes:
            return items
        spec = TABLES["warehouse_stock"]
        rows = self._rows(
            spec,
            where=(xml.Expression("StockCode", "GE", codes[0]), xml.Expression("StockCode", "LE", codes[-1])),
            order_by=("StockCode", "Warehouse"),
        )
        by_code: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            by_code.setdefault(str(row.get("StockCode") or ""), []).append(row)
        return [{**item, "Warehouses": by_code.get(str(item.get("StockCode") or ""), [])} for item in items]

    def _all(self, table: Table, *, columns: tuple[str, ...] = ()) -> list[dict[str, Any]]:
        rows, after = [], ""
        while True:
            where = (xml.Expression(table.key, "GT", after),) if after else ()
            page = self._rows(
                table, where=where, order_by=(table.key,), return_rows=LINES_PAGE, columns=columns
            )
            rows += page
            if len(page) < LINES_PAGE:
                return rows
            after = str(page[-1].get(table.key) or "")

    def customer_stock(self) -> list[dict[str, Any]]:
        """Per customer, the available stock of every stock code on its orders (read in full each poll:
        stock moves without touching the customer; the engine's hash makes an unchanged one free)."""
        customers = self._all(TABLES["customers"], columns=("Customer", "Name"))
        orders = self._all(TABLES["sales_orders"], columns=("SalesOrder", "Customer"))
        lines = self._all_lines()
        stock = self._all_stock()
        return stock_by_customer(customers=customers, orders=orders, lines=lines, stock=stock)

    def _all_lines(self) -> list[dict[str, Any]]:
        spec = TABLES["sales_orders"].lines
        return self._all_grouped(
            spec,
            group=spec.parent_key,
            order_by=(spec.parent_key, spec.key),
            columns=(spec.parent_key, spec.key, "MStockCode"),
        )

    def _all_stock(self) -> list[dict[str, Any]]:
        return self._all_grouped(
            TABLES["warehouse_stock"], group="StockCode", order_by=("StockCode", "Warehouse")
        )

    def _all_grouped(
        self, table: Table, *, group: str, order_by: tuple[str, ...], columns: tuple[str, ...] = ()
    ) -> list[dict[str, Any]]:
        """Every row of a detail table, paged by its header key: a page that ends inside one header's
        rows is cut before that header, which the next page starts with."""
        rows: list[dict[str, Any]] = []
        low = ""
        while True:
            where = (xml.Expression(group, "GE", low),) if low else ()
            page = self._rows(table, where=where, order_by=order_by, return_rows=LINES_PAGE, columns=columns)
            if len(page) < LINES_PAGE:
                return rows + page
            last = str(page[-1].get(group) or "")
            complete = [r for r in page if str(r.get(group) or "") < last]
            if not complete:  # one header with more rows than a call returns: keep what came
                return rows + page
            rows += complete
            low = last
