"""SAP Business One entity shapes: field types for $filter/$orderby, and wire records built from the
deterministic generator (records are plain dicts in wire shape, collections included)."""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta
from typing import Any

from sandbox import generator

# Scalar fields usable in $filter/$orderby, per entity set: name → (dict key, OData type).
_BP = ("CardCode:string CardName:string CardType:enum GroupCode:number Address:string ZipCode:string City:string "
       "County:string Country:string BillToState:string Phone1:string Phone2:string Cellular:string Fax:string "
       "EmailAddress:string Website:string ContactPerson:string CreditLimit:number MaxCommitment:number "
       "CurrentAccountBalance:number Currency:string FederalTaxID:string PayTermsGrpCode:number "
       "PriceListNum:number SalesPersonCode:number Industry:number Valid:enum Frozen:enum U_ProfitCenter:string "
       "CreateDate:date CreateTime:time UpdateDate:date UpdateTime:time")
_ITEM = ("ItemCode:string ItemName:string ForeignName:string ItemsGroupCode:number BarCode:string "
         "InventoryItem:enum SalesItem:enum PurchaseItem:enum QuantityOnStock:number "
         "QuantityOrderedFromVendors:number QuantityOrderedByCustomers:number SalesUnit:string Valid:enum "
         "Frozen:enum CreateDate:date CreateTime:time UpdateDate:date UpdateTime:time")
_DOC = ("DocEntry:number DocNum:number DocType:enum CardCode:string CardName:string NumAtCard:string "
        "DocDate:date DocDueDate:date TaxDate:date DocTotal:number VatSum:number DocCurrency:string "
        "DocumentStatus:enum Cancelled:enum Comments:string SalesPersonCode:number CreationDate:date "
        "UpdateDate:date UpdateTime:time")
_PC = "CenterCode:string CenterName:string InWhichDimension:number Active:enum EffectiveFrom:date"
_GROUP = "Code:number Name:string Type:enum"
_INDUSTRY = "IndustryCode:number IndustryName:string IndustryDescription:string"


def _fields(spec: str) -> dict[str, tuple[str, str]]:
    return {name: (name, typ) for name, _, typ in (item.partition(":") for item in spec.split())}


# entity set → (key field, key type, EDM type name, scalar fields)
ENTITIES: dict[str, tuple[str, str, str, dict[str, tuple[str, str]]]] = {
    "BusinessPartners": ("CardCode", "string", "BusinessPartner", _fields(_BP)),
    "Items": ("ItemCode", "string", "Item", _fields(_ITEM)),
    "Invoices": ("DocEntry", "number", "Document", _fields(_DOC)),
    "Orders": ("DocEntry", "number", "Document", _fields(_DOC)),
    "ProfitCenters": ("CenterCode", "string", "ProfitCenter", _fields(_PC)),
    "BusinessPartnerGroups": ("Code", "number", "BusinessPartnerGroup", _fields(_GROUP)),
    "Industries": ("IndustryCode", "number", "Industry", _fields(_INDUSTRY)),
}
DOC_NUM_BASE = {"Invoices": 100_000, "Orders": 200_000}  # DocNum differs from DocEntry, as in a real series

PROFIT_CENTERS = (("CENTRAL", "Central Region"), ("EAST", "East Coast"), ("WEST", "West Coast"),
                  ("NORTH", "Northern Territories"), ("SOUTH", "Southern Region"), ("ONLINE", "Web Shop"))
GROUPS = {"RTL": (100, "Retail"), "WHL": (101, "Wholesale"), "DIST": (102, "Distributors"),
          "MFG": (103, "Manufacturers"), "GOV": (104, "Government"), "EDU": (105, "Education"),
          "INTL": (106, "International"), "KEY": (107, "Key Accounts"), "SVC": (108, "Services")}
SUPPLIER_GROUP = (110, "Vendors")
INDUSTRIES = ((1, "Retail"), (2, "Wholesale & Distribution"), (3, "Manufacturing"), (4, "Construction"),
              (5, "Food & Beverage"), (6, "Healthcare"), (7, "Public Sector"), (8, "Professional Services"))
TERMS = {"NET30": 1, "NET15": 2, "NET45": 3, "NET60": 4, "DUETBL": 5, "COD": 6}
PRICE_LISTS = (1, 2, 3)  # 1 base, 2 wholesale (-10 %), 3 retail (+15 %)
WAREHOUSES = ("01", "02", "03")
_dates: dict[date, str] = {}


def b1_date(value: date) -> str:
    """date → '2024-05-01T00:00:00Z' (one shared string per day)."""
    text = _dates.get(value)
    if text is None:
        text = _dates.setdefault(value, f"{value.isoformat()}T00:00:00Z")
    return text


def date_literal(text: str) -> str:
    """A $filter date ('2024-05-01', '2024-05-01T00:00:00Z', datetime'…') in the stored shape."""
    value = datetime.fromisoformat(text.strip())
    return value.replace(tzinfo=None, microsecond=0).isoformat() + "Z"


def time_literal(text: str) -> str:
    """'9:05' / '09:05:00' → '09:05:00', the stored UpdateTime shape."""
    hours, _, rest = text.strip().partition(":")
    return time.fromisoformat(f"{int(hours):02d}:{rest}").isoformat(timespec="seconds")


def clock_time(rng: random.Random) -> str:
    return f"{8 + int(rng.random() * 10):02d}:{int(rng.random() * 60):02d}:{int(rng.random() * 60):02d}"


def partner(rec: dict[str, Any], seed: int, contacts: list[dict[str, Any]]) -> dict[str, Any]:
    """A BusinessPartners record from a generator company record (CardType by index: most customers)."""
    i = rec["index"]
    rng = random.Random(i * 31 + seed)
    kind = "cSupplier" if i % 9 == 4 else "cLid" if i % 13 == 7 else "cCustomer"
    code = f"{kind[1]}{i + 1:04d}"
    group, _ = SUPPLIER_GROUP if kind == "cSupplier" else GROUPS[rec["group"]]
    for contact in contacts:
        contact["CardCode"] = code
    country = rec["country_code"]
    bill_to = {"AddressName": "Bill To", "Street": rec["address1"], "Block": rec["address2"], "City": rec["city"],
               "ZipCode": rec["postal_code"], "County": "", "State": rec["state"], "Country": country,
               "AddressType": "bo_BillTo", "BPCode": code, "RowNum": 0}
    addresses = [bill_to]
    if i % 3 == 0:
        addresses.append({**bill_to, "AddressName": "Ship To", "AddressType": "bo_ShipTo", "RowNum": 1})
    credit = float(rec["credit_limit"])
    return {
        "CardCode": code, "CardName": rec["name"], "CardType": kind, "GroupCode": group,
        "Address": rec["address1"], "ZipCode": rec["postal_code"], "City": rec["city"], "County": "",
        "Country": country, "BillToState": rec["state"], "Phone1": rec["phone"], "Phone2": "", "Cellular": "",
        "Fax": rec["fax"], "EmailAddress": rec["email"], "Website": rec["website"],
        "ContactPerson": contacts[0]["Name"] if contacts else "",
        "CreditLimit": credit, "MaxCommitment": credit * 2, "CurrentAccountBalance": float(rec["balance"]),
        "Currency": rec["currency"], "FederalTaxID": f"{rng.randrange(10**8, 10**9)}" if rng.random() < 0.7 else "",
        "PayTermsGrpCode": TERMS.get(rec["terms"], 1), "PriceListNum": PRICE_LISTS[i % 3],
        "SalesPersonCode": 1 + i % 8, "Industry": INDUSTRIES[int(rng.random() * len(INDUSTRIES))][0]
        if rng.random() < 0.85 else -1,
        "Valid": "tYES" if rec["active"] else "tNO", "Frozen": "tNO" if rec["active"] else "tYES",
        "U_ProfitCenter": PROFIT_CENTERS[int(rng.random() * len(PROFIT_CENTERS))][0] if rng.random() < 0.8 else "",
        "CreateDate": b1_date(rec["started"]), "CreateTime": clock_time(rng),
        "UpdateDate": b1_date(rec["last_changed"]), "UpdateTime": clock_time(rng),
        "ContactEmployees": contacts, "BPAddresses": addresses,
    }


def contact(person: dict[str, Any], internal_code: int, card_code: str, taken: set[str]) -> dict[str, Any]:
    """A ContactEmployees row; Name is the contact's id within the partner, so it is kept unique."""
    name = f"{person['first_name']} {person['last_name']}".strip()
    base, n = name, 2
    while name in taken:
        name, n = f"{base} {n}", n + 1
    taken.add(name)
    return {"CardCode": card_code, "InternalCode": internal_code, "Name": name, "FirstName": person["first_name"],
            "LastName": person["last_name"], "Phone1": person["phone"], "MobilePhone": person["mobile"],
            "E_Mail": person["email"], "Position": person["position"],
            "Active": "tYES" if person["active"] else "tNO"}


def item(i: int, seed: int, today: date) -> dict[str, Any]:
    rec = generator.product_record(i, seed)
    rng = random.Random(i * 17 + seed)
    code = f"A{i + 1:05d}"
    price = rec["price"]
    created = today - timedelta(days=30 + int(rng.random() * 1500))
    updated = created + timedelta(days=int((created - today).days * -rng.random()))
    inventory = "tYES" if rec["inventory"] else "tNO"
    warehouses = [{"ItemCode": code, "WarehouseCode": wh, "InStock": float(rec["stock"][n] if rec["inventory"] else 0),
                   "Committed": float(rec["committed"][n] if rec["inventory"] else 0),
                   "Ordered": float(rec["ordered"][n] if rec["inventory"] else 0)}
                  for n, wh in enumerate(WAREHOUSES)]
    return {
        "ItemCode": code, "ItemName": rec["name"], "ForeignName": None, "ItemsGroupCode": 100 + rec["group"],
        "BarCode": rec["barcode"], "InventoryItem": inventory, "SalesItem": "tYES", "PurchaseItem": "tYES",
        "SalesUnit": "Each", "Valid": "tNO" if i % 29 == 28 else "tYES", "Frozen": "tYES" if i % 29 == 28 else "tNO",
        "CreateDate": b1_date(created), "CreateTime": clock_time(rng),
        "UpdateDate": b1_date(updated), "UpdateTime": clock_time(rng),
        "ItemPrices": prices(price),
        "ItemWarehouseInfoCollection": warehouses,
        **stock_totals(warehouses),
    }


def prices(base: float, currency: str = "USD") -> list[dict[str, Any]]:
    return [{"PriceList": 1, "Price": base, "Currency": currency},
            {"PriceList": 2, "Price": round(base * 0.9, 2), "Currency": currency},
            {"PriceList": 3, "Price": round(base * 1.15, 2), "Currency": currency}]


def stock_totals(warehouses: list[dict[str, Any]]) -> dict[str, float]:
    return {"QuantityOnStock": sum(w["InStock"] for w in warehouses),
            "QuantityOrderedFromVendors": sum(w["Ordered"] for w in warehouses),
            "QuantityOrderedByCustomers": sum(w["Committed"] for w in warehouses)}


def document(entity: str, doc_entry: int, customer: dict[str, Any], lines: list[dict[str, Any]], *,
             doc_date: date, due: date, status: str, updated: date, update_time: str, num_at_card: str = "",
             comments: str = "") -> dict[str, Any]:
    total = round(sum(line["LineTotal"] for line in lines), 2)
    return {
        "DocEntry": doc_entry, "DocNum": DOC_NUM_BASE[entity] + doc_entry, "DocType": "dDocument_Items",
        "CardCode": customer["CardCode"], "CardName": customer["CardName"], "NumAtCard": num_at_card,
        "DocDate": b1_date(doc_date), "DocDueDate": b1_date(due), "TaxDate": b1_date(doc_date),
        "DocTotal": total, "VatSum": 0.0, "DocCurrency": customer["Currency"], "DocumentStatus": status,
        "Cancelled": "tNO", "Comments": comments, "SalesPersonCode": customer["SalesPersonCode"],
        "CreationDate": b1_date(doc_date), "UpdateDate": b1_date(updated), "UpdateTime": update_time,
        "DocumentLines": lines,
    }


def line(n: int, item_rec: dict[str, Any], quantity: float, price: float, currency: str,
         warehouse: str = "01", profit_center: str = "") -> dict[str, Any]:
    return {"LineNum": n, "ItemCode": item_rec["ItemCode"], "ItemDescription": item_rec["ItemName"],
            "Quantity": quantity, "Price": price, "UnitPrice": price, "Currency": currency,
            "LineTotal": round(quantity * price, 2), "WarehouseCode": warehouse, "CostingCode": profit_center}


def invoice(doc_entry: int, customer: dict[str, Any], items: list[dict[str, Any]], rng: random.Random,
            today: date) -> dict[str, Any]:
    doc_date = today - timedelta(days=1 + int(rng.random() * 720))
    lines = []
    for n in range(1 + int(rng.random() * 4) if items else 0):
        it = items[int(rng.random() * len(items))]
        price = it["ItemPrices"][customer["PriceListNum"] - 1]["Price"]
        lines.append(line(n, it, float(1 + int(rng.random() * 20)), price, customer["Currency"],
                          WAREHOUSES[int(rng.random() * 3)], customer["U_ProfitCenter"]))
    paid = (today - doc_date).days > 45
    updated = min(today, doc_date + timedelta(days=int(rng.random() * 60))) if paid else doc_date
    return document("Invoices", doc_entry, customer, lines, doc_date=doc_date, due=doc_date + timedelta(days=30),
                    status="bost_Close" if paid else "bost_Open", updated=updated, update_time=clock_time(rng),
                    num_at_card=f"PO-{rng.randrange(10000, 99999)}" if rng.random() < 0.6 else "")


def static_rows(entity: str) -> list[dict[str, Any]]:
    if entity == "ProfitCenters":
        return [{"CenterCode": code, "CenterName": name, "InWhichDimension": 1, "Active": "tYES",
                 "EffectiveFrom": "2020-01-01T00:00:00Z"} for code, name in PROFIT_CENTERS]
    if entity == "BusinessPartnerGroups":
        return ([{"Code": code, "Name": name, "Type": "bbpgt_CustomerGroup"} for code, name in GROUPS.values()]
                + [{"Code": SUPPLIER_GROUP[0], "Name": SUPPLIER_GROUP[1], "Type": "bbpgt_VendorGroup"}])
    if entity == "Industries":
        return [{"IndustryCode": code, "IndustryName": name, "IndustryDescription": name}
                for code, name in INDUSTRIES]
    return []
