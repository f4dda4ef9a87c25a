"""A SYSPRO company in memory: customers, sales orders with their lines, items and warehouse stock,
a settable clock, the operator's changes (each stamps LastModified) and malformed orders."""

from __future__ import annotations

import bisect
from collections import OrderedDict
from datetime import date, datetime, timedelta
from typing import Any

from sandbox.syspro import entities as ent

MALFORMED_KINDS = ("missing_customer", "bad_amount", "broken_xml")


class Table:
    """Rows (dicts) kept sorted by key; a write replaces a row's dict, so a response being rendered
    never sees a half-made change."""

    def __init__(self, name: str):
        self.name = name
        self.key_columns = ent.KEYS[name]
        self.keys: list[tuple] = []
        self.rows: list[dict[str, Any]] = []
        self.by_key: dict[tuple, dict[str, Any]] = {}

    def key_of(self, row: dict[str, Any]) -> tuple:
        return tuple(row[c] for c in self.key_columns)

    def load(self, rows: list[dict[str, Any]]) -> None:
        self.rows = sorted(rows, key=self.key_of)
        self.keys = [self.key_of(r) for r in self.rows]
        self.by_key = dict(zip(self.keys, self.rows, strict=True))

    def put(self, row: dict[str, Any]) -> None:
        key = self.key_of(row)
        at = bisect.bisect_left(self.keys, key)
        if key in self.by_key:
            self.rows[at] = row
        else:
            self.keys.insert(at, key)
            self.rows.insert(at, row)
        self.by_key[key] = row

    def delete(self, key: tuple) -> bool:
        if self.by_key.pop(key, None) is None:
            return False
        at = bisect.bisect_left(self.keys, key)
        del self.keys[at]
        del self.rows[at]
        return True

    def get(self, *key: Any) -> dict[str, Any] | None:
        return self.by_key.get(tuple(key))


class Company:
    def __init__(
        self, company_id: str, company_password: str, operators: dict[str, str], today: date, seed: int
    ):
        self.company_id = company_id
        self.company_password = company_password
        self.operators = operators  # operator → password (e.net and OData alike)
        self.today = today
        # after every generated stamp (those fall between 07:00 and 19:00), so a change is always the newest
        self.clock = datetime.combine(today, datetime.min.time()) + timedelta(hours=20)
        self.seed = seed
        self.tables = {name: Table(name) for name in ent.TABLES}
        self.malformed: dict[str, set[str]] = {}  # order → kinds
        self.version = 0  # bumped by every change: cached views are rebuilt
        self.views: OrderedDict[tuple, list[dict[str, Any]]] = OrderedDict()  # OData (filter, order) → rows

    def populate(self, *, customers: int, orders: int, lines_max: int, items: int) -> None:
        custs = [ent.customer(i, self.seed, self.today) for i in range(customers)]
        self.tables["ArCustomer"].load(custs)
        masters, stock = [], []
        for i in range(items):
            master, rows = ent.item(i, self.seed)
            masters.append(master)
            stock += rows
        self.tables["InvMaster"].load(masters)
        self.tables["InvWarehouse"].load(stock)
        headers, lines = [], []
        for i in range(orders if custs and masters else 0):
            cust = custs[(i * 7 + self.seed) % len(custs)] if i % 5 else custs[i % len(custs)]
            header, rows = ent.order(i, cust, masters, lines_max, self.seed, self.today)
            headers.append(header)
            lines += rows
        self.tables["SorMaster"].load(headers)
        self.tables["SorDetail"].load(lines)
        self.version += 1

    # --- reads --------------------------------------------------------------------------------------
    def order_lines(self, order: str) -> list[dict[str, Any]]:
        detail = self.tables["SorDetail"]
        lo = bisect.bisect_left(detail.keys, (order,))
        hi = bisect.bisect_left(detail.keys, (order + "\x00",))
        return detail.rows[lo:hi]

    def stock_rows(self, code: str) -> list[dict[str, Any]]:
        stock = self.tables["InvWarehouse"]
        lo = bisect.bisect_left(stock.keys, (code,))
        hi = bisect.bisect_left(stock.keys, (code + "\x00",))
        return stock.rows[lo:hi]

    # --- changes ------------------------------------------------------------------------------------
    def tick(self) -> str:
        """The clock's time for a change; the clock then moves one second, so stamps are strictly ordered."""
        now = self.clock.isoformat()
        self.clock += timedelta(seconds=1)
        self.version += 1
        return now

    def set_clock(self, value: Any) -> None:
        text = str(value)
        self.clock = (
            datetime.fromisoformat(text) if "T" in text else datetime.fromisoformat(f"{text}T12:00:00")
        )
        self.today = self.clock.date()

    def order(self, number: str) -> dict[str, Any]:
        header = self.tables["SorMaster"].get(number)
        if header is None:
            raise KeyError(f"no sales order {number!r}")
        return header

    def restamp(self, number: str, **changes: Any) -> dict[str, Any]:
        header = {**self.order(number), **changes}
        lines = self.order_lines(number)
        if "OrderValue" not in changes and "bad_amount" not in self.malformed.get(number, ()):
            header["OrderValue"] = ent.order_value(lines)
        header["LastModified"] = self.tick()
        self.tables["SorMaster"].put(header)
        return header

    def order_status(
        self, number: str, order_status: str | None, shipment_status: str | None
    ) -> dict[str, Any]:
        changes = {}
        if order_status is not None:
            if order_status not in ent.ORDER_STATUSES:
                raise ValueError(f"order_status must be one of {sorted(ent.ORDER_STATUSES)}")
            changes["OrderStatus"] = order_status
        if shipment_status is not None:
            if shipment_status not in ent.SHIPMENT_STATUSES:
                raise ValueError(f"shipment_status must be one of {sorted(ent.SHIPMENT_STATUSES)}")
            changes["ShipmentStatus"] = shipment_status
        return self.restamp(number, **changes)

    def line_put(self, number: str, data: dict[str, Any]) -> dict[str, Any]:
        """Adds a line (no `line`: the next number) or changes one (`line` given, fields merged)."""
        self.order(number)
        lines = self.order_lines(number)
        if data.get("line") is None:
            code = str(data.get("stock_code") or "")
            item = self.tables["InvMaster"].get(code)
            if item is None:
                raise KeyError(f"no stock code {code!r}")
            line = {
                "SalesOrder": number,
                "SalesOrderLine": max((ln["SalesOrderLine"] for ln in lines), default=0) + 1,
                "LineType": "1",
                "MStockCode": code,
                "MStockDes": item["Description"],
                "MWarehouse": str(data.get("warehouse") or "FG"),
                "MOrderQty": float(data.get("quantity", 1)),
                "MPrice": float(data.get("price", item["SellingPrice"])),
                "MOrderUom": "EA",
            }
        else:
            old = self.tables["SorDetail"].get(number, int(data["line"]))
            if old is None:
                raise KeyError(f"order {number!r} has no line {data['line']}")
            line = {**old}
            if "stock_code" in data:
                item = self.tables["InvMaster"].get(str(data["stock_code"]))
                if item is None:
                    raise KeyError(f"no stock code {data['stock_code']!r}")
                line.update(MStockCode=item["StockCode"], MStockDes=item["Description"])
            for key, column in (("quantity", "MOrderQty"), ("price", "MPrice")):
                if key in data:
                    line[column] = float(data[key])
            if "warehouse" in data:
                line["MWarehouse"] = str(data["warehouse"])
            if "description" in data:
                line["MStockDes"] = str(data["description"])
        if line["MWarehouse"] not in ent.WAREHOUSES:
            raise ValueError(f"warehouse must be one of {sorted(ent.WAREHOUSES)}")
        self.tables["SorDetail"].put(line)
        self.restamp(number)
        return line

    def line_remove(self, number: str, line: int) -> None:
        self.order(number)
        if not self.tables["SorDetail"].delete((number, int(line))):
            raise KeyError(f"order {number!r} has no line {line}")
        self.restamp(number)

    def stock_set(self, code: str, warehouse: str, data: dict[str, Any]) -> dict[str, Any]:
        old = self.tables["InvWarehouse"].get(code, warehouse)
        if old is None:
            raise KeyError(f"no stock for {code!r} in warehouse {warehouse!r}")
        row = {**old}
        if "on_hand" in data:
            row["QtyOnHand"] = float(data["on_hand"])
        if "allocated" in data:
            row["QtyAllocated"] = float(data["allocated"])
        row["QtyAvailable"] = row["QtyOnHand"] - row["QtyAllocated"]
        self.tables["InvWarehouse"].put(row)
        self.version += 1
        return row

    def order_create(self, data: dict[str, Any]) -> dict[str, Any]:
        """A new order (next number) for `customer` with `lines` [{stock_code, quantity, price?, warehouse?}],
        dated `order_date` (default: the clock's day) and stamped now."""
        cust = self.tables["ArCustomer"].get(str(data.get("customer") or ""))
        if cust is None:
            raise KeyError(f"no customer {data.get('customer')!r}")
        wanted = data.get("lines") or []
        if not isinstance(wanted, list) or not wanted:
            raise ValueError("lines must be a non-empty list")
        masters = self.tables["SorMaster"]
        number = ent.order_number(max((int(k[0]) for k in masters.keys if k[0].isdigit()), default=0))
        ordered = (
            date.fromisoformat(str(data["order_date"])[:10]) if data.get("order_date") else self.clock.date()
        )
        header = {
            "SalesOrder": number,
            "Customer": cust["Customer"],
            "CustomerName": cust["Name"],
            "CustomerPoNumber": str(data.get("po_number") or ""),
            "OrderDate": ent.day_text(ordered),
            "ReqShipDate": ent.day_text(ordered + timedelta(days=14)),
            "OrderStatus": "1",
            "ShipmentStatus": "N",
            "Currency": cust["Currency"],
            "OrderValue": 0.0,
            "Branch": cust["Branch"],
            "Salesperson": cust["Salesperson"],
            "LastModified": "",
        }
        masters.put(header)
        try:
            for line in wanted:
                self.line_put(number, {k: v for k, v in line.items() if k != "line"})
        except (KeyError, ValueError, TypeError):
            for line in self.order_lines(number):
                self.tables["SorDetail"].delete((number, line["SalesOrderLine"]))
            masters.delete((number,))
            raise
        return self.order(number)

    def customer_create(self, data: dict[str, Any]) -> dict[str, Any]:
        """A new customer (next code): generated like the others, then `data`'s columns on top."""
        customers = self.tables["ArCustomer"]
        index = max((int(k[0][1:]) for k in customers.keys if k[0][1:].isdigit()), default=0)
        row = ent.customer(index, self.seed, self.clock.date())
        customers.put(row)
        return self.customer_change(row["Customer"], {k: v for k, v in data.items() if k != "Customer"})

    def customer_change(self, code: str, data: dict[str, Any]) -> dict[str, Any]:
        old = self.tables["ArCustomer"].get(code)
        if old is None:
            raise KeyError(f"no customer {code!r}")
        unknown = sorted(
            k for k in data if k not in ent.TABLES["ArCustomer"] or k in ("Customer", "LastModified")
        )
        if unknown:
            raise ValueError(f"cannot set {unknown[0]!r}")
        row = {**old, **data, "LastModified": self.tick()}
        self.tables["ArCustomer"].put(row)
        return row

    def malform(self, number: str, kind: str) -> dict[str, Any]:
        if kind not in MALFORMED_KINDS:
            raise ValueError(f"kind must be one of {', '.join(MALFORMED_KINDS)}")
        self.order(number)
        self.malformed.setdefault(number, set()).add(kind)
        if kind == "missing_customer":
            return self.restamp(number, Customer="", CustomerName="")
        if kind == "bad_amount":
            lines = self.order_lines(number)
            if lines:
                self.tables["SorDetail"].put({**lines[0], "MPrice": "12,3x.00"})
            return self.restamp(number, OrderValue="1O4.50")
        return self.restamp(number)  # broken_xml: only its SORQRY answer is damaged

    def info(self) -> dict[str, Any]:
        counts = {name: len(t.rows) for name, t in self.tables.items()}
        return {
            "company_id": self.company_id,
            "operators": sorted(self.operators),
            "today": self.today.isoformat(),
            "clock": self.clock.isoformat(),
            "seed": self.seed,
            "counts": counts,
            "malformed": {k: sorted(v) for k, v in sorted(self.malformed.items())},
        }
