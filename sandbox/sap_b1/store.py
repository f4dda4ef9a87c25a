"""SAP Business One company databases in memory: one key-sorted table per entity set, cached query
views, a settable clock, and the operator's day-to-day changes (mutate)."""

from __future__ import annotations

import hashlib
import random
from datetime import date, timedelta
from typing import Any

from sandbox import generator
from sandbox.sap_b1 import entities as ent
from sandbox.table import KeyedTable

TEXT_AS = {"date": ent.date_literal, "time": ent.time_literal}
# generator's neutral names → BusinessPartners fields, for generator.mutate
PARTNER_MUTABLE = {"name": "CardName", "address1": "Address", "city": "City", "state": "BillToState",
                   "postal_code": "ZipCode", "country_code": "Country", "phone": "Phone1", "fax": "Fax",
                   "email": "EmailAddress", "website": "Website", "credit_limit": "CreditLimit",
                   "active": "Valid"}


class Table(KeyedTable):
    """One entity set, with the weak ETag of each record (dropped when the record is written)."""

    def __init__(self, entity: str):
        key_field, self.key_type, type_name, fields = ent.ENTITIES[entity]
        super().__init__(entity=entity, key_field=key_field, type_name=type_name, fields=fields,
                         qualified=f"SAPB1.{type_name}",
                         filter_options={"date_literal": ent.date_literal, "text_as": TEXT_AS})
        self.etags: dict[Any, str] = {}

    def written(self, key: Any | None) -> None:
        if key is None:
            self.etags = {}
        else:
            self.etags.pop(key, None)
        super().written(key)

    def etag(self, key: Any) -> str:
        """A weak etag that changes whenever the record is written."""
        tag = self.etags.get(key)
        if tag is None:
            digest = hashlib.sha1(f"{self.entity}:{key}:{self.version}".encode()).hexdigest().upper()
            tag = self.etags[key] = f'W/"{digest}"'
        return tag


class Company:
    def __init__(self, db: str, user: str, password: str, today: date, seed: int, contacts_max: int):
        self.db = db
        self.user = user
        self.password = password
        self.today = today
        self.time = "12:00:00"
        self.seed = seed
        self.contacts_max = contacts_max
        self.tables = {name: Table(name) for name in ent.ENTITIES}
        self.next_partner = 0
        self.next_contact = 1
        self.next_doc = {"Invoices": 1, "Orders": 1}
        self.mutations = 0
        self.posted_orders: list[dict[str, Any]] = []  # what POST Orders created, for exactly-once checks
        self.rejected_orders = 0
        for name in ("ProfitCenters", "BusinessPartnerGroups", "Industries"):
            self.tables[name].load(ent.static_rows(name))

    # --- generation ---------------------------------------------------------------------------------
    def populate(self, partners: int, items: int, invoices: int) -> None:
        made = [self.new_partner() for _ in range(partners)]
        self.tables["BusinessPartners"].load(self.tables["BusinessPartners"].records + made)
        start = len(self.tables["Items"].records)
        self.tables["Items"].load(self.tables["Items"].records
                                  + [ent.item(i, self.seed, self.today) for i in range(start, start + items)])
        customers = [p for p in self.tables["BusinessPartners"].records if p["CardType"] == "cCustomer"]
        item_list = self.tables["Items"].records
        rng = random.Random(self.seed * 7 + 3)
        docs = []
        for _ in range(invoices if customers else 0):
            docs.append(ent.invoice(self.next_doc["Invoices"], customers[int(rng.random() * len(customers))],
                                    item_list, rng, self.today))
            self.next_doc["Invoices"] += 1
        self.tables["Invoices"].load(self.tables["Invoices"].records + docs)

    def new_partner(self) -> dict[str, Any]:
        i = self.next_partner
        self.next_partner += 1
        rec = generator.company_record(i, self.seed, today=self.today)
        count = random.Random(i * 7 + self.seed).randint(0, self.contacts_max) if self.contacts_max else 0
        taken: set[str] = set()
        contacts = []
        for j in range(count):
            contacts.append(ent.contact(generator.contact_record(rec, j, self.seed), self.next_contact, "", taken))
            self.next_contact += 1
        return ent.partner(rec, self.seed, contacts)

    # --- clock and writes ---------------------------------------------------------------------------
    def stamp(self, record: dict[str, Any]) -> dict[str, Any]:
        record["UpdateDate"] = ent.b1_date(self.today)
        record["UpdateTime"] = self.time
        return record

    def set_clock(self, today: Any = None, time_text: Any = None) -> None:
        if today:
            self.today = date.fromisoformat(str(today)[:10])
        if time_text:
            self.time = ent.time_literal(str(time_text))

    def next_entry(self, entity: str) -> int:
        entry = self.next_doc[entity]
        self.next_doc[entity] += 1
        return entry

    # --- one day's changes --------------------------------------------------------------------------
    def mutate(self, data: dict[str, Any]) -> dict[str, Any]:
        self.set_clock(data.get("today"), data.get("time"))
        self.mutations += 1
        rng = random.Random(int(data["seed"]) if "seed" in data else self.seed * 7919 + self.mutations)
        bps = self.tables["BusinessPartners"]
        changed: dict[str, list[Any]] = {"BusinessPartners": [], "Items": [], "Invoices": []}

        for old in self._sample(rng, bps.records, int(data.get("partners", 0))):
            record = {**old}
            keys = generator.mutate(record, rng, PARTNER_MUTABLE)
            if "Valid" in keys:
                record["Frozen"] = "tYES" if record["Valid"] == "tNO" else "tNO"
            bill = {**record["BPAddresses"][0], "Street": record["Address"], "City": record["City"],
                    "ZipCode": record["ZipCode"], "State": record["BillToState"]}
            record["BPAddresses"] = [bill, *record["BPAddresses"][1:]]
            bps.put(self.stamp(record))
            changed["BusinessPartners"].append(record["CardCode"])

        removed = []
        with_contacts = [p for p in bps.records if p["ContactEmployees"]]
        for old in self._sample(rng, with_contacts, int(data.get("remove_contacts", 0))):
            gone = old["ContactEmployees"][int(rng.random() * len(old["ContactEmployees"]))]
            rest = [c for c in old["ContactEmployees"] if c is not gone]
            record = self.stamp({**old, "ContactEmployees": rest,
                                 "ContactPerson": rest[0]["Name"] if rest else ""})
            bps.put(record)
            removed.append({"CardCode": old["CardCode"], "InternalCode": gone["InternalCode"], "Name": gone["Name"]})

        added = []
        for old in self._sample(rng, bps.records, int(data.get("add_contacts", 0))):
            rec = generator.company_record(int(rng.random() * 10**6), self.seed, today=self.today)
            rec = {**rec, "email": old["EmailAddress"], "phone": old["Phone1"] or rec["phone"]}
            person = generator.contact_record(rec, int(rng.random() * 8), self.seed)
            row = ent.contact(person, self.next_contact, old["CardCode"], {c["Name"] for c in old["ContactEmployees"]})
            self.next_contact += 1
            contacts = [*old["ContactEmployees"], row]
            bps.put(self.stamp({**old, "ContactEmployees": contacts, "ContactPerson": contacts[0]["Name"]}))
            added.append({"CardCode": old["CardCode"], "InternalCode": row["InternalCode"], "Name": row["Name"]})

        items = self.tables["Items"]
        for old in self._sample(rng, items.records, int(data.get("items", 0))):
            record = {**old}
            if rng.random() < 0.5:
                base = round(old["ItemPrices"][0]["Price"] * rng.choice((0.9, 0.95, 1.05, 1.1, 1.2)), 2)
                record["ItemPrices"] = ent.prices(base, old["ItemPrices"][0]["Currency"])
            else:
                record["ItemWarehouseInfoCollection"] = [
                    {**w, "InStock": float(max(0, w["InStock"] + rng.randint(-20, 50)))}
                    for w in old["ItemWarehouseInfoCollection"]]
                record.update(ent.stock_totals(record["ItemWarehouseInfoCollection"]))
            items.put(self.stamp(record))
            changed["Items"].append(record["ItemCode"])

        invoices = self.tables["Invoices"]
        for old in self._sample(rng, invoices.records, int(data.get("invoices", 0))):
            record = {**old}
            if old["DocumentStatus"] == "bost_Open":
                record["DocumentStatus"] = "bost_Close"
            else:
                record["Comments"] = f"Reviewed {self.today.isoformat()}"
            invoices.put(self.stamp(record))
            changed["Invoices"].append(record["DocEntry"])

        created = []
        for _ in range(int(data.get("new_partners", 0))):
            record = self.stamp(self.new_partner())
            record["CreateDate"], record["CreateTime"] = record["UpdateDate"], record["UpdateTime"]
            bps.put(record)
            created.append(record["CardCode"])
        return {"changed": changed, "contacts_removed": removed, "contacts_added": added,
                "partners_created": created, "today": self.today.isoformat(), "time": self.time}

    @staticmethod
    def _sample(rng: random.Random, records: list[dict[str, Any]], count: int) -> list[dict[str, Any]]:
        count = max(0, min(count, len(records)))
        return [records[i] for i in sorted(rng.sample(range(len(records)), count))]

    def info(self) -> dict[str, Any]:
        counts = {name: len(table.records) for name, table in self.tables.items()}
        contacts = sum(len(p["ContactEmployees"]) for p in self.tables["BusinessPartners"].records)
        return {"company_db": self.db, "user": self.user, "today": self.today.isoformat(), "time": self.time,
                "seed": self.seed, "contacts_max": self.contacts_max, "counts": counts, "contacts": contacts,
                "orders_posted": len(self.posted_orders), "orders_rejected": self.rejected_orders}


def due_date(today: date, days: int = 14) -> date:
    return today + timedelta(days=days)
