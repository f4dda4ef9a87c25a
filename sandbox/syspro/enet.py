"""The e.net query business objects: XmlIn parsed, the company's tables read, XmlOut rendered.

COMFND  <Query><TableName/><ReturnRows/><Columns><Column/>…</Columns><Where><Expression>
        <OpenBracket>(</OpenBracket><AndOr>And</AndOr><Column/><Condition>EQ|NE|GT|GE|LT|LE|LIKE</Condition>
        <Value/><CloseBracket>)</CloseBracket></Expression>…</Where><OrderBy><Column/>…</OrderBy></Query>
        → <{TableName} …><HeaderDetails>…</HeaderDetails><Row>…</Row>…<RowsReturned>       n</RowsReturned>
ARSQRY  <Query><Key><Customer/></Key></Query> → <CustomerQuery …> one element per ArCustomer column
SORQRY  <Query><Key><SalesOrder/></Key><Option><IncludeStockedLines>Y</IncludeStockedLines>…</Option></Query>
        → <SorDetail …> header, then (lines asked for) <SalesOrderLine><Merchandise>…</Merchandise>…</SalesOrderLine>
INVQRY  <Query><Key><StockCode/></Key><Option><IncludeWarehouses>Y</IncludeWarehouses></Option></Query>
        → <InvQuery …><SystemInformation/><StockItem/><WarehouseItem>…<WarehouseTotals/>
A whole-call failure raises EnetError: the caller answers `ERROR: <message>`."""

from __future__ import annotations

import bisect
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sandbox.syspro import entities as ent
from sandbox.syspro.store import Company
from sandbox.syspro.xmlout import column, document, element, number

BUSINESS_OBJECTS = ("COMFND", "ARSQRY", "SORQRY", "INVQRY")
CONDITIONS = {
    "EQ": lambda a, b: a == b,
    "NE": lambda a, b: a != b,
    "GT": lambda a, b: a > b,
    "GE": lambda a, b: a >= b,
    "LT": lambda a, b: a < b,
    "LE": lambda a, b: a <= b,
}
_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")


class EnetError(Exception):
    pass


def parse_xml_in(xml_in: str | None, business_object: str) -> ET.Element:
    if not xml_in or not xml_in.strip():
        raise EnetError(f"XmlIn is empty: {business_object} needs an XML document")
    try:
        root = ET.fromstring(_DECLARATION.sub("", xml_in, count=1))
    except ET.ParseError as exc:
        raise EnetError(f"XmlIn is not valid XML ({exc})") from None
    if root.tag != "Query":
        raise EnetError(f"XmlIn for {business_object} must have the root element 'Query', not '{root.tag}'")
    return root


def run(company: Company, business_object: str, xml_in: str | None, max_rows: int) -> str:
    root = parse_xml_in(xml_in, business_object)
    if business_object == "COMFND":
        return comfnd(company, root, max_rows)
    if business_object == "ARSQRY":
        return arsqry(company, root)
    if business_object == "SORQRY":
        return sorqry(company, root)
    return invqry(company, root)


def key(root: ET.Element, name: str) -> str:
    value = (root.findtext(f"Key/{name}") or "").strip()
    if not value:
        raise EnetError(f"XmlIn has no <Key><{name}>: the {name} to query is required")
    return value


def flag(root: ET.Element, name: str, default: str = "N") -> bool:
    return (root.findtext(f"Option/{name}") or default).strip().upper() == "Y"


# --- COMFND ---------------------------------------------------------------------------------------------
def normalize(value: str, kind: str, column_name: str) -> Any:
    value = value.strip() if kind != "text" else value
    try:
        if kind in ("int", "money", "qty"):
            return float(value)
        if kind in ("date", "datetime"):
            return datetime.fromisoformat(value.strip()).replace(tzinfo=None, microsecond=0).isoformat()
    except ValueError:
        raise EnetError(f"Value '{value}' is not valid for column {column_name}") from None
    return value


def condition(columns: dict[str, str], expr: ET.Element) -> Callable[[dict[str, Any]], bool]:
    name = (expr.findtext("Column") or "").strip()
    if name not in columns:
        raise EnetError(f"Column '{name}' is not a column of the table")
    cond = (expr.findtext("Condition") or "EQ").strip().upper()
    raw = expr.findtext("Value") or ""
    if cond == "LIKE":
        pattern = re.compile("^" + ".*".join(re.escape(p) for p in raw.split("%")) + "$", re.S)
        return lambda row: isinstance(row[name], str) and pattern.match(row[name]) is not None
    if cond not in CONDITIONS:
        raise EnetError(f"Condition '{cond}' is not supported (EQ, NE, GT, GE, LT, LE, LIKE)")
    test, value = CONDITIONS[cond], normalize(raw, columns[name], name)

    def check(row: dict[str, Any]) -> bool:
        try:
            return test(row[name], value)
        except TypeError:  # a malformed row (text in a numeric column) matches nothing
            return False

    return check


def where(columns: dict[str, str], root: ET.Element) -> Callable[[dict[str, Any]], bool] | None:
    """The Where expressions as one predicate: brackets, And binding tighter than Or."""
    tokens: list[Any] = []
    for n, expr in enumerate(root.findall("Where/Expression")):
        if n:
            tokens.append((expr.findtext("AndOr") or "And").strip().lower())
        tokens += ["("] * (expr.findtext("OpenBracket") or "").count("(")
        tokens.append(condition(columns, expr))
        tokens += [")"] * (expr.findtext("CloseBracket") or "").count(")")
    if not tokens:
        return None
    pos = 0

    def parse_or():
        nonlocal pos
        node = parse_and()
        while pos < len(tokens) and tokens[pos] == "or":
            pos += 1
            left, right = node, parse_and()
            node = lambda row, a=left, b=right: a(row) or b(row)  # noqa: E731
        return node

    def parse_and():
        nonlocal pos
        node = parse_atom()
        while pos < len(tokens) and tokens[pos] == "and":
            pos += 1
            left, right = node, parse_atom()
            node = lambda row, a=left, b=right: a(row) and b(row)  # noqa: E731
        return node

    def parse_atom():
        nonlocal pos
        if pos >= len(tokens):
            raise EnetError("The Where clause ends too early")
        tok = tokens[pos]
        pos += 1
        if tok == "(":
            node = parse_or()
            if pos >= len(tokens) or tokens[pos] != ")":
                raise EnetError("The Where clause has unbalanced brackets")
            pos += 1
            return node
        if callable(tok):
            return tok
        raise EnetError(f"The Where clause has '{tok}' where a condition belongs")

    predicate = parse_or()
    if pos != len(tokens):
        raise EnetError("The Where clause has unbalanced brackets")
    return predicate


def key_range(root: ET.Element, first_key: str) -> tuple[tuple | None, tuple | None]:
    """Bisect bounds on the table's first key column when the Where clause is a plain And of conditions,
    so paging by key (`SalesOrder GT <last>`) never scans the whole table; the predicate still decides."""
    exprs = root.findall("Where/Expression")
    if any((e.findtext("AndOr") or "And").strip().lower() == "or" for e in exprs[1:]):
        return None, None
    lo = hi = None
    for expr in exprs:
        if (expr.findtext("Column") or "").strip() != first_key:
            continue
        cond, value = (expr.findtext("Condition") or "EQ").strip().upper(), expr.findtext("Value") or ""
        after = (value + "\x00",)  # sorts after every key starting with (value, ...)
        low = {"GT": after, "GE": (value,), "EQ": (value,)}.get(cond)
        high = {"LT": (value,), "LE": after, "EQ": after}.get(cond)
        if low and (lo is None or low > lo):
            lo = low
        if high and (hi is None or high < hi):
            hi = high
    return lo, hi


def comfnd(company: Company, root: ET.Element, max_rows: int) -> str:
    table_name = (root.findtext("TableName") or "").strip()
    if table_name not in ent.TABLES:
        raise EnetError(f"Table '{table_name}' is not available to COMFND ({', '.join(ent.TABLES)})")
    columns = ent.TABLES[table_name]
    wanted = [(c.text or "").strip() for c in root.findall("Columns/Column") if (c.text or "").strip()]
    for name in wanted:
        if name not in columns:
            raise EnetError(f"Column '{name}' is not a column of {table_name}")
    order_by = [(c.text or "").strip() for c in root.findall("OrderBy/Column") if (c.text or "").strip()]
    for name in order_by:
        if name not in columns:
            raise EnetError(f"OrderBy column '{name}' is not a column of {table_name}")
    limit_text = (root.findtext("ReturnRows") or "").strip()
    if limit_text and not limit_text.isdigit():
        raise EnetError(f"ReturnRows '{limit_text}' is not a number")
    limit = min(int(limit_text), max_rows) if limit_text and int(limit_text) > 0 else max_rows
    predicate = where(columns, root)
    table = company.tables[table_name]
    lo, hi = key_range(root, table.key_columns[0])
    rows = table.rows[
        bisect.bisect_left(table.keys, lo) if lo else 0 : bisect.bisect_left(table.keys, hi) if hi else None
    ]
    if order_by and tuple(order_by) != ent.KEYS[table_name][: len(order_by)]:
        rows = sorted(rows, key=lambda r: tuple(sort_value(r[c]) for c in order_by))
    found = []
    for row in rows:
        if predicate is None or predicate(row):
            found.append(row)
            if len(found) >= limit:
                break
    shown = wanted or list(columns)
    out = [
        "<HeaderDetails>",
        element("TableName", table_name),
        "<Columns>",
        *(element("Column", c) for c in wanted),
        "</Columns>",
        "<OrderBy>",
        *(element("Column", c) for c in order_by),
        "</OrderBy>",
        "</HeaderDetails>",
    ]
    for row in found:
        out.append("<Row>")
        for name in shown:
            out += column(name, row[name], columns[name])
        out.append("</Row>")
    out.append(element("RowsReturned", number(len(found), "int")))
    return document(table_name, out)


def sort_value(value: Any) -> tuple:
    return (1, value) if isinstance(value, int | float) and not isinstance(value, bool) else (2, str(value))


# --- the keyed queries ----------------------------------------------------------------------------------
def arsqry(company: Company, root: ET.Element) -> str:
    code = key(root, "Customer")
    row = company.tables["ArCustomer"].get(code)
    if row is None:
        raise EnetError(f"Customer '{code}' not found")
    out: list[str] = []
    for name, kind in ent.TABLES["ArCustomer"].items():
        out += column(name, row[name], kind, with_edited=True)
    return document("CustomerQuery", out)


def sorqry(company: Company, root: ET.Element) -> str:
    number_ = key(root, "SalesOrder")
    header = company.tables["SorMaster"].get(number_)
    if header is None:
        raise EnetError(f"Sales order '{number_}' not found")
    cust = company.tables["ArCustomer"].get(header["Customer"]) or {}
    kinds = ent.TABLES["SorMaster"]
    out = [
        element("SalesOrder", header["SalesOrder"]),
        element("DocumentType", "O"),
        element("DocumentTypeDesc", "Order"),
        element("Customer", header["Customer"]),
        element("CustomerName", header["CustomerName"]),
        element("SoldToName", header["CustomerName"]),
    ]
    for n in range(1, 6):
        out.append(element(f"SoldAddr{n}", str(cust.get(f"SoldToAddr{n}", ""))))
    out += [
        element("SoldPostalCode", str(cust.get("SoldPostalCode", ""))),
        element("Salesperson", header["Salesperson"]),
        element("OrderStatus", header["OrderStatus"]),
        element("OrderStatusDesc", ent.ORDER_STATUSES.get(header["OrderStatus"], "")),
        element("ShipmentStatus", header["ShipmentStatus"]),
        element("ShipmentStatusDesc", ent.SHIPMENT_STATUSES.get(header["ShipmentStatus"], "")),
        element("CustomerPoNumber", header["CustomerPoNumber"]),
    ]
    out += column("OrderDate", header["OrderDate"], kinds["OrderDate"])
    out += column("ReqShipDate", header["ReqShipDate"], kinds["ReqShipDate"])
    out += [element("Branch", header["Branch"]), element("Currency", header["Currency"])]
    out += column("LastModified", header["LastModified"], kinds["LastModified"])
    if flag(root, "IncludeStockedLines"):
        values = flag(root, "IncludeValues")
        line_kinds = ent.TABLES["SorDetail"]
        out.append("<SalesOrderLine>")
        for line in company.order_lines(number_):
            out += ["<Merchandise>", element("Line", number(line["SalesOrderLine"], "int"))]
            for name in (
                "LineType",
                "MStockCode",
                "MStockDes",
                "MWarehouse",
                "MOrderQty",
                "MOrderUom",
                "MPrice",
            ):
                out += column(name, line[name], line_kinds[name], with_edited=True)
            if values:
                try:
                    value = round(line["MOrderQty"] * line["MPrice"], 2)
                except TypeError:
                    value = line["MPrice"]
                out += column("MLineValue", value, "money", with_edited=True)
            out.append("</Merchandise>")
        out.append("</SalesOrderLine>")
    body = document("SorDetail", out)
    if "broken_xml" in company.malformed.get(number_, ()):
        cut = body.index("<Customer>") + 5  # truncated inside a tag, as a dropped stream would leave it
        body = body[:cut]
    return body


def invqry(company: Company, root: ET.Element) -> str:
    code = key(root, "StockCode")
    item = company.tables["InvMaster"].get(code)
    if item is None:
        raise EnetError(f"Stock code '{code}' not found")
    kinds = ent.TABLES["InvWarehouse"]
    out = [
        "<SystemInformation>",
        element("CompanyId", company.company_id),
        element("CompanyDate", company.today.isoformat()),
        "</SystemInformation>",
        "<StockItem>",
    ]
    for name, kind in ent.TABLES["InvMaster"].items():
        out += column(name, item[name], kind, with_edited=True)
    out.append("</StockItem>")
    rows = company.stock_rows(code)
    if flag(root, "IncludeWarehouses", "Y"):
        for row in rows:
            out += [
                "<WarehouseItem>",
                element("Warehouse", row["Warehouse"]),
                element("Description", ent.WAREHOUSES.get(row["Warehouse"], "")),
            ]
            for name in ("QtyOnHand", "QtyAllocated", "QtyAvailable"):
                out += column(name, row[name], kinds[name], with_edited=True)
            out.append("</WarehouseItem>")
    out.append("<WarehouseTotals>")
    for name in ("QtyOnHand", "QtyAllocated", "QtyAvailable"):
        out += column(name, sum(r[name] for r in rows), "qty", with_edited=True)
    out.append("</WarehouseTotals>")
    return document("InvQuery", out)
