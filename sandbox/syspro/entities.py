"""SYSPRO tables as the simulator holds them: column types per table, and deterministic records built
from sandbox.generator (same seed, same data).

Dates are stored as 'YYYY-MM-DDTHH:MM:SS' text so that comparisons are plain text comparisons; each
surface renders them its own way (XML: OrderDate '2026-11-20', LastModified '2026-11-20T14:03:22';
OData: '2026-11-20T14:03:22Z')."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from typing import Any

from sandbox import generator

# column types: text, int, money (2 decimals), qty (6 decimals), date, datetime
TABLES: dict[str, dict[str, str]] = {
    "ArCustomer": {
        "Customer": "text",
        "Name": "text",
        "ShortName": "text",
        "Branch": "text",
        "Salesperson": "text",
        "CustomerClass": "text",
        "Currency": "text",
        "TermsCode": "text",
        "CreditLimit": "money",
        "Telephone": "text",
        "Email": "text",
        "Contact": "text",
        "SoldToAddr1": "text",
        "SoldToAddr2": "text",
        "SoldToAddr3": "text",
        "SoldToAddr4": "text",
        "SoldToAddr5": "text",
        "SoldPostalCode": "text",
        "CustomerOnHold": "text",
        "DateCustAdded": "date",
        "LastModified": "datetime",
    },
    "SorMaster": {
        "SalesOrder": "text",
        "Customer": "text",
        "CustomerName": "text",
        "CustomerPoNumber": "text",
        "OrderDate": "date",
        "ReqShipDate": "date",
        "OrderStatus": "text",
        "ShipmentStatus": "text",
        "Currency": "text",
        "OrderValue": "money",
        "Branch": "text",
        "Salesperson": "text",
        "LastModified": "datetime",
    },
    "SorDetail": {
        "SalesOrder": "text",
        "SalesOrderLine": "int",
        "LineType": "text",
        "MStockCode": "text",
        "MStockDes": "text",
        "MWarehouse": "text",
        "MOrderQty": "qty",
        "MPrice": "money",
        "MOrderUom": "text",
    },
    "InvMaster": {
        "StockCode": "text",
        "Description": "text",
        "StockUom": "text",
        "ProductClass": "text",
        "SellingPrice": "money",
    },
    "InvWarehouse": {
        "StockCode": "text",
        "Warehouse": "text",
        "QtyOnHand": "qty",
        "QtyAllocated": "qty",
        "QtyAvailable": "qty",
    },
}
KEYS = {
    "ArCustomer": ("Customer",),
    "SorMaster": ("SalesOrder",),
    "SorDetail": ("SalesOrder", "SalesOrderLine"),
    "InvMaster": ("StockCode",),
    "InvWarehouse": ("StockCode", "Warehouse"),
}
WAREHOUSES = {"FG": "Finished goods", "NTH": "Northern depot", "STH": "Southern depot"}
BRANCHES = ("HQ", "NTH", "STH", "EXP")
SALESPEOPLE = ("DAL", "JDH", "MKB", "PTS", "RVN", "SLW")
# SYSPRO order status codes and the simulator's shipment status codes (N none, P partial, C complete)
ORDER_STATUSES = {
    "1": "Open order",
    "2": "Open back order",
    "3": "Released back order",
    "4": "In warehouse",
    "8": "To invoice",
    "9": "Complete",
    "\\": "Cancelled",
    "S": "Suspense",
}
SHIPMENT_STATUSES = {"N": "Not shipped", "P": "Partially shipped", "C": "Shipped"}


def stamp(day: date, seconds: int) -> str:
    return (datetime.combine(day, datetime.min.time()) + timedelta(seconds=seconds)).isoformat()


def day_text(day: date) -> str:
    return f"{day.isoformat()}T00:00:00"


def customer_code(i: int) -> str:
    return f"C{i + 1:05d}"


def stock_code(i: int) -> str:
    return f"A{i + 1:05d}"


def order_number(i: int) -> str:
    return f"{i + 1:06d}"


def customer(i: int, seed: int, today: date) -> dict[str, Any]:
    rec = generator.company_record(i, seed, today=today)
    rng = random.Random(i * 41 + seed)
    added = min(rec["started"], today)
    changed = min(max(rec["last_changed"], added), today)
    return {
        "Customer": customer_code(i),
        "Name": rec["name"],
        "ShortName": rec["short_name"],
        "Branch": BRANCHES[i % len(BRANCHES)],
        "Salesperson": SALESPEOPLE[i % len(SALESPEOPLE)],
        "CustomerClass": rec["group"][:2],
        "Currency": rec["currency"],
        "TermsCode": rec["terms"][-2:],
        "CreditLimit": float(rec["credit_limit"]),
        "Telephone": rec["phone"],
        "Email": rec["email"],
        "Contact": rec["contact_name"],
        "SoldToAddr1": rec["address1"],
        "SoldToAddr2": rec["address2"],
        "SoldToAddr3": rec["city"],
        "SoldToAddr4": rec["state"],
        "SoldToAddr5": rec["country"],
        "SoldPostalCode": rec["postal_code"],
        "CustomerOnHold": "N" if rec["active"] else "Y",
        "DateCustAdded": day_text(added),
        "LastModified": stamp(changed, rng.randrange(7 * 3600, 19 * 3600)),
    }


def item(i: int, seed: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """An InvMaster row and its InvWarehouse rows."""
    rec = generator.product_record(i, seed)
    code = stock_code(i)
    master = {
        "StockCode": code,
        "Description": rec["name"][:50],
        "StockUom": "EA",
        "ProductClass": f"PC{rec['group']:02d}",
        "SellingPrice": float(rec["price"]),
    }
    stock = []
    for n, wh in enumerate(WAREHOUSES):
        on_hand, allocated = float(rec["stock"][n]), float(min(rec["committed"][n], rec["stock"][n]))
        stock.append(
            {
                "StockCode": code,
                "Warehouse": wh,
                "QtyOnHand": on_hand,
                "QtyAllocated": allocated,
                "QtyAvailable": on_hand - allocated,
            }
        )
    return master, stock


def order(
    i: int, cust: dict[str, Any], items: list[dict[str, Any]], lines_max: int, seed: int, today: date
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A SorMaster row and its SorDetail rows (1..lines_max merchandise lines)."""
    rng = random.Random(i * 7919 + seed * 31 + 5)
    number = order_number(i)
    age = int(rng.random() * 365)
    ordered = today - timedelta(days=age)
    if age > 60:
        status = "9" if rng.random() < 0.9 else "\\"
    else:
        status = rng.choice(("1", "1", "2", "3", "4", "8"))
    shipment = {"9": "C", "8": "C", "4": rng.choice("NP"), "3": "P"}.get(status, "N")
    changed = min(today, ordered + timedelta(days=int(rng.random() * min(age, 30) + 0.5)))
    lines = []
    for n in range(1, 1 + rng.randint(1, max(1, lines_max))):
        it = items[int(rng.random() * len(items))]
        lines.append(
            {
                "SalesOrder": number,
                "SalesOrderLine": n,
                "LineType": "1",
                "MStockCode": it["StockCode"],
                "MStockDes": it["Description"],
                "MWarehouse": rng.choice(tuple(WAREHOUSES)),
                "MOrderQty": float(rng.randint(1, 40)),
                "MPrice": it["SellingPrice"],
                "MOrderUom": "EA",
            }
        )
    header = {
        "SalesOrder": number,
        "Customer": cust["Customer"],
        "CustomerName": cust["Name"],
        "CustomerPoNumber": f"PO-{rng.randrange(10000, 99999)}" if rng.random() < 0.6 else "",
        "OrderDate": day_text(ordered),
        "ReqShipDate": day_text(ordered + timedelta(days=14)),
        "OrderStatus": status,
        "ShipmentStatus": shipment,
        "Currency": cust["Currency"],
        "OrderValue": order_value(lines),
        "Branch": cust["Branch"],
        "Salesperson": cust["Salesperson"],
        "LastModified": stamp(changed, rng.randrange(7 * 3600, 19 * 3600)),
    }
    return header, lines


def order_value(lines: list[dict[str, Any]]) -> Any:
    try:
        return round(sum(line["MOrderQty"] * line["MPrice"] for line in lines), 2)
    except TypeError:  # a malformed line
        return "1O4.50"
