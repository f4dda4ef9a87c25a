"""The SYSPRO tables ml-connector reads, and how their rows become the records flows map: an order
carries its lines, a stock item its warehouses, a customer's stock record the availability of what it
buys. Pure functions: the client does the reading."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from connectors.base import UNREADABLE
from connectors.syspro import xml


@dataclass(frozen=True)
class Table:
    name: str  # the SYSPRO table (COMFND TableName, OData entity set)
    key: str
    changed: str = ""  # the last-modified column that change detection filters on ("" = read in full)
    parent_key: str = ""  # for detail tables: the header's key column
    lines: Table | None = None  # an order's lines, attached as "Lines"
    warehouses: bool = False  # a stock item's warehouse rows, attached as "Warehouses"


ORDER_LINES = Table("SorDetail", key="SalesOrderLine", parent_key="SalesOrder")
TABLES = {
    "customers": Table("ArCustomer", key="Customer", changed="LastModified"),
    "sales_orders": Table("SorMaster", key="SalesOrder", changed="LastModified", lines=ORDER_LINES),
    "stock_items": Table("InvMaster", key="StockCode", warehouses=True),
    "warehouse_stock": Table("InvWarehouse", key="Warehouse", parent_key="StockCode"),
    "customer_stock": Table("ArCustomer", key="Customer"),
}


def lines_attach(
    orders: list[dict[str, Any]], lines: list[dict[str, Any]], *, key: str, parent_key: str
) -> list[dict[str, Any]]:
    """Each order with its own lines under "Lines" ([] when it has none: every line was removed). An
    order with an unreadable line fails whole: sending the rest would delete that line's deal product."""
    by_order: dict[str, list[dict[str, Any]]] = {}
    for line in lines:
        by_order.setdefault(str(line.get(parent_key) or ""), []).append(line)
    result = []
    for order in orders:
        mine = by_order.get(str(order.get(key) or ""), [])
        broken = next((line[UNREADABLE] for line in mine if UNREADABLE in line), "")
        if UNREADABLE in order:
            result.append(order)
        elif broken:
            result.append({**order, UNREADABLE: f"A line of this order could not be read: {broken}"})
        else:
            result.append({**order, "Lines": mine})
    return result


def number(value: Any) -> float | None:
    """SYSPRO's right-aligned numbers ('      12.500000', '1,234.50') as floats; None when not a number."""
    text = str(value if value is not None else "").replace(",", "").strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        return None


def stock_by_customer(
    *,
    customers: list[dict[str, Any]],
    orders: list[dict[str, Any]],
    lines: list[dict[str, Any]],
    stock: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """One record per customer that has ordered stocked items: {Customer, Name, StockCodes, Stock}, where
    Stock is [{StockCode, Available, Warehouses: {code: available}}] in stock-code order."""
    customer_of = {str(o.get("SalesOrder") or ""): str(o.get("Customer") or "") for o in orders}
    codes: dict[str, set[str]] = {}
    for line in lines:
        customer = customer_of.get(str(line.get("SalesOrder") or ""))
        code = str(line.get("MStockCode") or "").strip()
        if customer and code:
            codes.setdefault(customer, set()).add(code)
    available: dict[str, dict[str, float]] = {}
    for row in stock:
        value = number(row.get("QtyAvailable"))
        if value is None:
            value = (number(row.get("QtyOnHand")) or 0.0) - (number(row.get("QtyAllocated")) or 0.0)
        available.setdefault(str(row.get("StockCode") or ""), {})[str(row.get("Warehouse") or "")] = value
    records = []
    for customer in customers:
        code = str(customer.get("Customer") or "")
        bought = sorted(codes.get(code, ()))
        records.append(
            {
                "Customer": code,
                "Name": customer.get("Name") or "",
                "StockCodes": bought,
                "Stock": [
                    {
                        "StockCode": c,
                        "Available": sum(available.get(c, {}).values()),
                        "Warehouses": dict(sorted(available.get(c, {}).items())),
                    }
                    for c in bought
                ],
            }
        )
    return records


def sorqry_lines(root: Any, number: str) -> list[dict[str, Any]]:
    """SORQRY's `<SalesOrderLine><Merchandise>…` as detail rows (`Line` is the line number)."""
    lines = []
    for node in root.iter("Merchandise"):
        row = {child.tag: (child.text or "").strip() for child in node}
        row["SalesOrderLine"] = row.pop("Line", "")
        row["SalesOrder"] = number
        lines.append(row)
    return lines


_ROW = re.compile(rb"<Row>(.*?)</Row>", re.S)


def unreadable_rows(body: bytes, *, key: str) -> list[dict[str, Any]] | None:
    """A COMFND answer that is not well-formed as a whole, read row by row: good rows as usual, a broken
    row as {key: its key if it can be seen, UNREADABLE: why}, so it fails alone. None when no row can be
    told apart (the whole answer is unusable)."""
    chunks = _ROW.findall(body)
    if not chunks:
        return None
    rows: list[dict[str, Any]] = []
    for chunk in chunks:
        try:
            root = xml.parse(b'<?xml version="1.0" encoding="Windows-1252"?><Row>' + chunk + b"</Row>")
        except xml.XmlUnreadable as exc:
            found = re.search(rb"<" + re.escape(key.encode()) + rb">([^<]*)</", chunk) if key else None
            ext = found.group(1).decode("cp1252", errors="replace").strip() if found else ""
            rows.append({key: ext, UNREADABLE: f"SYSPRO sent this record as broken XML ({exc})."})
            continue
        rows.append({child.tag: (child.text or "").strip() for child in root})
    return rows
