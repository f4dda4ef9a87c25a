"""IFS environments in memory: one per Keycloak realm (namespace), each with its client credentials,
its CustomerInfoSet and CustomerOrderSet, tokens, a request-rate window and counters."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sandbox import generator
from sandbox.ifs import data
from sandbox.odata import QueryError
from sandbox.table import KeyedTable

# Edm.Date and Edm.DateTimeOffset are both "date" to the filter compiler: stored as fixed-width texts that
# compare in time order, and the literals of both are normalised to those shapes (date_literal).
STRING, NUMBER, DATE, DATETIME = "string", "number", "date", "date"
CUSTOMER_FIELDS: dict[str, tuple[str, str]] = {
    name: (name, typ)
    for name, typ in (
        ("CustomerId", STRING),
        ("Name", STRING),
        ("CustomerCategory", f"enum:{data.CATEGORY_TYPE}"),
        ("Country", STRING),
        ("DefaultLanguage", STRING),
        ("AssociationNo", STRING),
        ("Address1", STRING),
        ("Address2", STRING),
        ("City", STRING),
        ("State", STRING),
        ("ZipCode", STRING),
        ("Phone", STRING),
        ("Email", STRING),
        ("Www", STRING),
        ("Currency", STRING),
        ("CreationDate", DATE),
        ("ChangedDate", DATETIME),
        ("luname", STRING),
        ("keyref", STRING),
        ("Objgrants", STRING),
    )
}
ORDER_FIELDS: dict[str, tuple[str, str]] = {
    name: (name, typ)
    for name, typ in (
        ("OrderNo", STRING),
        ("Contract", STRING),
        ("CustomerNo", STRING),
        ("CustomerPoNo", STRING),
        ("OrderType", STRING),
        ("Objstate", f"enum:{data.STATE_TYPE}"),
        ("DateEntered", DATETIME),
        ("WantedDeliveryDate", DATETIME),
        ("ChangedDate", DATETIME),
        ("CurrencyCode", STRING),
        ("TotalAmount", NUMBER),
        ("CodeB", STRING),
        ("CodeC", STRING),
        ("RegionCode", STRING),
        ("luname", STRING),
        ("keyref", STRING),
        ("Objgrants", STRING),
    )
}
# generator's neutral names → CustomerInfoSet fields, for generator.mutate
CUSTOMER_MUTABLE = {
    "name": "Name",
    "address1": "Address1",
    "address2": "Address2",
    "city": "City",
    "state": "State",
    "postal_code": "ZipCode",
    "country_code": "Country",
    "phone": "Phone",
    "email": "Email",
    "website": "Www",
}
ENUMS = {data.CATEGORY_TYPE: data.CATEGORIES, data.STATE_TYPE: data.STATES}


def date_literal(text: str) -> str:
    """V4 literals in the stored shapes: 2024-05-01 (Edm.Date) stays; 2024-05-01T10:00:00+02:00
    (Edm.DateTimeOffset) becomes '2024-05-01T08:00:00Z'. Fractions of a second are dropped."""
    text = text.strip()
    try:
        if "T" not in text:
            return date.fromisoformat(text).isoformat()
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise QueryError(f"The literal '{text}' is not a valid Edm.Date or Edm.DateTimeOffset.") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return data.stamp(value)


def new_stats() -> dict[str, Any]:
    return {
        "tokens_issued": 0,
        "token_failures": 0,
        "requests": 0,
        "by_entity": {},
        "by_method": {},
        "by_status": {},
        "calls": {},
        "auth_rejections": 0,
        "rate_limited": 0,
        "injected_429": 0,
        "injected_5xx": 0,
        "actions_called": 0,
        "actions": {},
        "actions_by_order": {},
        "transitions": 0,
        "transitions_by_order": {},
        "precondition_failed": 0,
        "precondition_required": 0,
        "if_match_any": 0,
        "invalid_transitions": 0,
        "writes_other": 0,
        "after_commit_faults": 0,
        "concurrent_changes": 0,
    }


class Table(KeyedTable):
    """One entity set; enum and date literals in IFS's shapes."""

    def __init__(self, entity: str, key: str, type_name: str, fields: dict[str, tuple[str, str]]):
        super().__init__(entity=entity, key_field=key, type_name=type_name, fields=fields, qualified=type_name,
                         filter_options={"date_literal": date_literal, "enums": ENUMS})


def now_stamp() -> str:
    return data.stamp(datetime.now(UTC))


def later(previous: str) -> str:
    """The changed stamp of a write: now, but always after the record's last one (one-second steps,
    like Objversion), so every write changes the ETag."""
    now = now_stamp()
    if now > previous:
        return now
    moment = datetime.fromisoformat(previous.replace("Z", "+00:00")) + timedelta(seconds=1)
    return data.stamp(moment)


class Environment:
    """One IFS system as one realm sees it."""

    def __init__(self, namespace: str, client_id: str, client_secret: str, *, seed: int, today: date):
        self.namespace, self.client_id, self.client_secret = namespace, client_id, client_secret
        self.seed, self.today = seed, today
        self.customers = Table(
            "CustomerInfoSet",
            "CustomerId",
            f"IfsApp.{data.CUSTOMER_PROJECTION}.CustomerInfo",
            CUSTOMER_FIELDS,
        )
        self.orders = Table(
            "CustomerOrderSet", "OrderNo", f"IfsApp.{data.ORDER_PROJECTION}.CustomerOrder", ORDER_FIELDS
        )
        self.mutations = 0
        self.pending_bumps: dict[str, int] = {}  # OrderNo → reads after which someone else edits it

    def populate(self, customers: int, orders: int) -> None:
        custs = [data.customer(i, self.seed, self.today) for i in range(customers)]
        self.customers.load(custs)
        self.orders.load(
            [data.order(i, self.seed, self.today, custs) for i in range(orders)] if custs else []
        )

    def mutate(self, spec: dict[str, Any]) -> dict[str, Any]:
        """One day's changes by IFS users: `customers` edited, `orders` moved one step on (or their
        CustomerPoNo edited when finished), `new_customers` and `new_orders` created. Every changed or
        created record gets a fresh ChangedDate (now), so an incremental read finds exactly these."""
        self.mutations += 1
        rng = random.Random(int(spec["seed"]) if "seed" in spec else self.seed * 7919 + self.mutations)
        changed: dict[str, list[str]] = {"CustomerInfoSet": [], "CustomerOrderSet": []}
        for old in sample(rng, self.customers.records, int(spec.get("customers", 0))):
            record = {**old}
            generator.mutate(record, rng, CUSTOMER_MUTABLE)
            changed["CustomerInfoSet"].append(self.touch(old, self.customers, **record)["CustomerId"])
        onward = {
            "Planned": "Released",
            "Released": "Reserved",
            "Reserved": "Delivered",
            "Delivered": "Invoiced",
        }
        for old in sample(rng, self.orders.records, int(spec.get("orders", 0))):
            if old["Objstate"] in onward:
                new = self.touch(old, self.orders, Objstate=onward[old["Objstate"]])
            else:
                new = self.touch(old, self.orders, CustomerPoNo=f"PO-{rng.randrange(10000, 99999)}")
            changed["CustomerOrderSet"].append(new["OrderNo"])
        created: dict[str, list[str]] = {"CustomerInfoSet": [], "CustomerOrderSet": []}
        for _ in range(int(spec.get("new_customers", 0))):
            record = data.customer(len(self.customers.records), self.seed, self.today)
            record["ChangedDate"] = later(record["ChangedDate"])
            self.customers.put(record)
            created["CustomerInfoSet"].append(record["CustomerId"])
        customers = self.customers.records
        for _ in range(int(spec.get("new_orders", 0)) if customers else 0):
            record = data.order(len(self.orders.records), self.seed, self.today, customers)
            record["Objstate"] = "Planned"
            record["DateEntered"] = record["ChangedDate"] = later(record["ChangedDate"])
            self.orders.put(record)
            created["CustomerOrderSet"].append(record["OrderNo"])
        return {"changed": changed, "created": created}

    def touch(self, record: dict[str, Any], table: Table, **changes: Any) -> dict[str, Any]:
        new = {**record, **changes, "ChangedDate": later(record["ChangedDate"])}
        table.put(new)
        return new

    def info(self) -> dict[str, Any]:
        states: dict[str, int] = {}
        for order in self.orders.records:
            states[order["Objstate"]] = states.get(order["Objstate"], 0) + 1
        return {
            "namespace": self.namespace,
            "client_id": self.client_id,
            "seed": self.seed,
            "today": self.today.isoformat(),
            "customers": len(self.customers.records),
            "orders": len(self.orders.records),
            "orders_by_state": states,
        }


def etag_of(record: dict[str, Any]) -> str:
    return data.etag(record["_objid"], record["ChangedDate"])


def wire(record: dict[str, Any], select: list[str] | None = None) -> dict[str, Any]:
    """The record as served: `@odata.etag` first, internal fields dropped, `$select` applied (IFS always
    keeps the etag and the keys' envelope fields out of $select's reach)."""
    out: dict[str, Any] = {"@odata.etag": etag_of(record)}
    if select:
        out.update((name, record[name]) for name in select if name in record)
    else:
        out.update((k, v) for k, v in record.items() if not k.startswith("_"))
    return out


def sample(rng: random.Random, records: list[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    count = max(0, min(count, len(records)))
    return [records[i] for i in sorted(rng.sample(range(len(records)), count))]
