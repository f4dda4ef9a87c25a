"""Deterministic IFS Cloud records: CustomerInfoSet customers and CustomerOrderSet orders.

Same (seed, index, today) → same record. Records are wire dicts without `@odata.etag` (the store
serves that from Objid and Objversion, the way IFS builds it).
"""

from __future__ import annotations

import base64
import random
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sandbox import generator

CUSTOMER_PROJECTION = "CustomerHandling"
ORDER_PROJECTION = "CustomerOrderHandling"
CATEGORY_TYPE = f"IfsApp.{CUSTOMER_PROJECTION}.CustomerCategory"
STATE_TYPE = f"IfsApp.{ORDER_PROJECTION}.CustomerOrderState"
CATEGORIES = ("Customer", "Prospect", "EndCustomer")
STATES = ("Planned", "Released", "Reserved", "Delivered", "Invoiced", "Closed", "Cancelled")
# Generated orders: mostly open, some finished; weights follow STATES.
STATE_WEIGHTS = (30, 25, 15, 10, 8, 6, 6)
SITES = ("MAIN", "NORTH", "SOUTH")
COST_CENTERS = ("CC100", "CC200", "CC300", "CC400", "CC500")  # code part B
PROFIT_CENTERS = ("PC10", "PC20", "PC30", "PC40")  # code part C
REGIONS = ("NORTH", "SOUTH", "EAST", "WEST", "CENTRAL")  # CustomerOrder.RegionCode
ORDER_NO_BASE = 100000


def customer_id(i: int) -> str:
    return str(10001 + i)


def order_no(i: int) -> str:
    return f"C{ORDER_NO_BASE + i + 1}"


def stamp(moment: datetime) -> str:
    """Edm.DateTimeOffset as IFS serves it: UTC, whole seconds, 'Z'."""
    return moment.astimezone(UTC).replace(microsecond=0, tzinfo=None).isoformat() + "Z"


def objversion(changed: str) -> str:
    """'2024-05-01T10:11:12Z' → '20240501101112' (IFS's Objversion timestamp)."""
    return changed[:19].replace("-", "").replace("T", "").replace(":", "")


def objid(kind: str, i: int) -> str:
    """An 18-character Oracle rowid, unique per record (the first part of IFS's ETag)."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    n, out = i * 2 + (1 if kind == "order" else 0), []
    for _ in range(6):
        out.append(alphabet[n % 64])
        n //= 64
    return f"AAA{'Ord' if kind == 'order' else 'Cus'}AAF{''.join(reversed(out))}AAA"


def etag(row_id: str, changed: str) -> str:
    """W/"<base64 of W/"Objid:Objversion">" — the shape of IFS's own sample ETag."""
    inner = f'W/"{row_id}:{objversion(changed)}"'.encode()
    return f'W/"{base64.b64encode(inner).decode()}"'


def _moment(day: date, rng: random.Random) -> datetime:
    return datetime.combine(
        day, time(8 + int(rng.random() * 10), int(rng.random() * 60), int(rng.random() * 60)), tzinfo=UTC
    )


def customer(i: int, seed: int, today: date) -> dict[str, Any]:
    rec = generator.company_record(i, seed, today=today)
    rng = random.Random(i * 37 + seed)
    cid = customer_id(i)
    category = "Customer" if rec["active"] else "Prospect"
    if rng.random() < 0.05:
        category = "EndCustomer"
    return {
        "luname": "CustomerInfo",
        "keyref": f"CUSTOMER_ID={cid}^",
        "Objgrants": None,
        "CustomerId": cid,
        "Name": rec["name"],
        "CustomerCategory": category,
        "Country": rec["country_code"],
        "DefaultLanguage": "en",
        "AssociationNo": (f"{rng.randrange(10**8, 10**9)}" if rng.random() < 0.6 else None),
        "Address1": rec["address1"],
        "Address2": rec["address2"] or None,
        "City": rec["city"],
        "State": rec["state"] or None,
        "ZipCode": rec["postal_code"] or None,
        "Phone": rec["phone"] or None,
        "Email": rec["email"] or None,
        "Www": rec["website"] or None,
        "Currency": rec["currency"],
        "CreationDate": rec["started"].isoformat(),
        "ChangedDate": stamp(_moment(rec["last_changed"], rng)),
        "_objid": objid("customer", i),
    }


def order(i: int, seed: int, today: date, customers: list[dict[str, Any]]) -> dict[str, Any]:
    rng = random.Random(i * 7919 + seed * 31 + 11)
    cust = customers[int(rng.random() * len(customers))]
    entered_day = today - timedelta(days=1 + int(rng.random() * 365))
    entered = _moment(entered_day, rng)
    state = rng.choices(STATES, STATE_WEIGHTS)[0]
    changed = entered + timedelta(
        days=0 if state == "Planned" else int(rng.random() * (today - entered_day).days),
        minutes=int(rng.random() * 300),
    )
    changed = min(changed, datetime.combine(today, time(0), tzinfo=UTC) - timedelta(seconds=1))
    changed = max(changed, entered)
    total = round(50 + rng.random() * 20000, 2)
    return {
        "luname": "CustomerOrder",
        "keyref": f"ORDER_NO={order_no(i)}^",
        "Objgrants": None,
        "OrderNo": order_no(i),
        "Contract": SITES[int(rng.random() * len(SITES))],
        "CustomerNo": cust["CustomerId"],
        "CustomerPoNo": f"PO-{rng.randrange(10000, 99999)}" if rng.random() < 0.6 else None,
        "OrderType": "NO",
        "Objstate": state,
        "DateEntered": stamp(entered),
        "WantedDeliveryDate": stamp(entered + timedelta(days=7 + int(rng.random() * 40))),
        "ChangedDate": stamp(changed),
        "CurrencyCode": cust["Currency"],
        "TotalAmount": total,
        "CodeB": COST_CENTERS[int(rng.random() * len(COST_CENTERS))],
        "CodeC": PROFIT_CENTERS[int(rng.random() * len(PROFIT_CENTERS))] if rng.random() < 0.9 else None,
        "RegionCode": REGIONS[int(rng.random() * len(REGIONS))],
        "_objid": objid("order", i),
    }
