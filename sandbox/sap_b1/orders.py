"""`POST Orders` and `PATCH Orders(n)`: B1's validation and its error bodies (callers hold the lock)."""

from __future__ import annotations

from datetime import date
from typing import Any

from sandbox.core import Request, Response, json_response
from sandbox.sap_b1 import entities as ent
from sandbox.sap_b1.store import Company, Table, due_date

HEADER_FIELDS = {"CardCode", "NumAtCard", "Comments", "DocDate", "DocDueDate", "TaxDate", "DocumentLines",
                 "SalesPersonCode", "DocCurrency"}
LINE_FIELDS = {"ItemCode", "Quantity", "UnitPrice", "Price", "WarehouseCode", "ItemDescription", "CostingCode",
               "DiscountPercent", "LineNum"}
PATCHABLE = {"Comments", "NumAtCard", "DocDueDate"}


def error(status: int, code: int, message: str) -> tuple[int, dict[str, Any], dict[str, Any]]:
    return status, {"error": {"code": code, "message": {"lang": "en-us", "value": message}}}, {}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _day(value: Any, default: date) -> date | None:
    if value in (None, ""):
        return default
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def create_order(req: Request, company: Company) -> tuple[int, dict[str, Any], dict[str, Any]]:
    """(status, body, posted record); the order is stored only when the status is 201."""
    try:
        data = req.json()
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return error(400, -1000, "Invalid JSON in the request body.")
    unknown = sorted(k for k in data if k not in HEADER_FIELDS and not k.startswith("U_"))
    if unknown:
        return error(400, -1000, f"Property '{unknown[0]}' of 'Document' is invalid")
    partner = company.tables["BusinessPartners"].by_key.get(data.get("CardCode"))
    if partner is None:
        return error(400, -5002, f"[ORDR.CardCode] , 'Invalid BP code: {data.get('CardCode')}'")
    if partner["CardType"] == "cSupplier":
        return error(400, -5002, f"[ORDR.CardCode] , 'Business partner {partner['CardCode']} is a vendor'")
    if partner["Frozen"] == "tYES":
        return error(400, -5002, f"[ORDR.CardCode] , 'Business partner {partner['CardCode']} is inactive'")
    lines_in = data.get("DocumentLines")
    if not isinstance(lines_in, list) or not lines_in:
        return error(400, -5002, "Document must contain at least one row")
    doc_date = _day(data.get("DocDate"), company.today)
    due = _day(data.get("DocDueDate"), due_date(company.today))
    if doc_date is None or due is None:
        return error(400, -1000, "DocDate and DocDueDate must be dates like 2024-05-01")
    items = company.tables["Items"].by_key
    lines = []
    for n, raw in enumerate(lines_in, start=1):
        if not isinstance(raw, dict):
            return error(400, -1000, f"DocumentLines[{n - 1}] must be an object")
        extra = sorted(k for k in raw if k not in LINE_FIELDS and not k.startswith("U_"))
        if extra:
            return error(400, -1000, f"Property '{extra[0]}' of 'DocumentLine' is invalid")
        item = items.get(raw.get("ItemCode"))
        if item is None:
            return error(400, -5002, f"[RDR1.ItemCode][line: {n}] , 'Invalid item code: {raw.get('ItemCode')}'")
        if item["Frozen"] == "tYES":
            return error(400, -5002, f"[RDR1.ItemCode][line: {n}] , 'Item {item['ItemCode']} is inactive'")
        quantity = _number(raw.get("Quantity"))
        if quantity is None or quantity <= 0:
            return error(400, -5002, f"[RDR1.Quantity][line: {n}] , 'Quantity must be greater than zero'")
        given = raw.get("UnitPrice", raw.get("Price"))
        price = _number(given) if given is not None else item["ItemPrices"][partner["PriceListNum"] - 1]["Price"]
        if price is None or price < 0:
            return error(400, -5002, f"[RDR1.Price][line: {n}] , 'Price must be a non-negative number'")
        warehouse = raw.get("WarehouseCode") or "01"
        if warehouse not in ent.WAREHOUSES:
            return error(400, -5002, f"[RDR1.WhsCode][line: {n}] , 'Invalid warehouse code: {warehouse}'")
        lines.append(ent.line(n - 1, item, quantity, price, partner["Currency"], warehouse,
                              str(raw.get("CostingCode") or partner["U_ProfitCenter"])))
    table = company.tables["Orders"]
    entry = company.next_entry("Orders")
    order = ent.document("Orders", entry, partner, lines, doc_date=doc_date, due=due, status="bost_Open",
                         updated=company.today, update_time=company.time,
                         num_at_card=str(data.get("NumAtCard") or ""), comments=str(data.get("Comments") or ""))
    order.update({k: v for k, v in data.items() if k.startswith("U_")})
    table.put(order)
    posted = {"DocEntry": entry, "DocNum": order["DocNum"], "CardCode": partner["CardCode"],
              "NumAtCard": order["NumAtCard"], "DocTotal": order["DocTotal"],
              "lines": [{"ItemCode": ln["ItemCode"], "Quantity": ln["Quantity"], "Price": ln["Price"]}
                        for ln in lines], "body": data}
    company.posted_orders.append(posted)
    return 201, order, posted


def patch_order(req: Request, company: Company, table: Table, key: Any) -> Response:
    order = table.by_key.get(key)
    if order is None:
        return json_response(error(404, -2028, "No matching records found (ODBC -2028)")[1], 404)
    match = req.headers.get("if-match")
    if match and match != "*" and match != table.etag(key):
        return json_response(error(412, -2039, "Another user or another operation modified data; to continue, "
                                               "open the window again")[1], 412)
    try:
        data = req.json()
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return json_response(error(400, -1000, "Invalid JSON in the request body.")[1], 400)
    bad = sorted(k for k in data if k not in PATCHABLE and not k.startswith("U_"))
    if bad:
        return json_response(error(400, -1000, f"Property '{bad[0]}' of 'Document' is invalid")[1], 400)
    record = {**order, **data}
    if "DocDueDate" in data:
        due = _day(data["DocDueDate"], company.today)
        if due is None:
            return json_response(error(400, -1000, "DocDueDate must be a date like 2024-05-01")[1], 400)
        record["DocDueDate"] = ent.b1_date(due)
    table.put(company.stamp(record))
    return Response(204, headers={"ETag": table.etag(key)})
