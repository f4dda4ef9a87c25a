"""Entity sets of the S/4HANA simulator as OData V2 JSON: rows per set, key predicates, `$expand` trees,
`$select`, `__metadata`, `__deferred` navigations and the V2 value formats, all driven by metadata.SETS."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from sandbox.odata import QueryError
from sandbox.s4hana import metadata
from sandbox.s4hana.data import System

_FILTER_TYPES = {
    "Edm.DateTime": "date",
    "Edm.DateTimeOffset": "date",
    "Edm.Time": "time",
    "Edm.Boolean": "bool",
}
_KEY_PART = re.compile(r"\s*(?:(\w+)\s*=\s*)?(datetime'[^']*'|'(?:[^']|'')*')\s*(?:,|$)")
# navigation → where its rows live on the parent row (to-many lists, to-one dicts/None)
_NAV_ROWS = {
    "to_BusinessPartnerRole": "_roles",
    "to_BusinessPartnerAddress": "_addresses",
    "to_BusinessPartnerContact": "_contacts",
    "to_EmailAddress": "_emails",
    "to_PhoneNumber": "_phones",
    "to_ContactRelationship": "_function",
}


def _ms(stored: str) -> int:
    return int(datetime.fromisoformat(stored).replace(tzinfo=UTC).timestamp() * 1000)


def wire(typ: str, value: Any) -> Any:
    if value in (None, ""):
        return None if typ in ("Edm.DateTime", "Edm.DateTimeOffset", "Edm.Time", "Edm.Guid") else value
    if typ == "Edm.DateTime":
        return f"/Date({_ms(value)})/"
    if typ == "Edm.DateTimeOffset":
        return f"/Date({_ms(value)}+0000)/"
    if typ == "Edm.Time":
        h, m, s = value.split(":")
        return f"PT{h}H{m}M{s}S"
    return value


def customer_row(p: dict[str, Any]) -> dict[str, Any]:
    return {
        "Customer": p["Customer"],
        "CustomerName": p["BusinessPartnerFullName"][:80],
        "CustomerFullName": p["BusinessPartnerFullName"],
        "CreationDate": p["CreationDate"],
        "DeletionIndicator": False,
        "OrderIsBlockedForCustomer": "",
        "PostingIsBlocked": False,
    }


def supplier_row(p: dict[str, Any]) -> dict[str, Any]:
    return {
        "Supplier": p["Supplier"],
        "SupplierName": p["BusinessPartnerFullName"][:80],
        "SupplierFullName": p["BusinessPartnerFullName"],
        "CreationDate": p["CreationDate"],
        "DeletionIndicator": False,
        "PaymentIsBlockedForSupplier": False,
        "PurchasingIsBlocked": False,
    }


def rows_of_set(system: System, name: str) -> list[dict[str, Any]]:
    """Every row of an entity set, in key order."""
    partners = [system.partners[k] for k in sorted(system.partners)]
    if name == "A_BusinessPartner":
        return partners
    if name == "A_Customer":
        return [customer_row(p) for p in partners if p["Customer"]]
    if name == "A_Supplier":
        return [supplier_row(p) for p in partners if p["Supplier"]]
    if name == "A_BusinessPartnerRole":
        return [r for p in partners for r in p["_roles"]]
    if name == "A_BusinessPartnerAddress":
        return [a for p in partners for a in p["_addresses"]]
    if name == "A_AddressEmailAddress":
        return [e for p in partners for a in p["_addresses"] for e in a["_emails"]]
    if name == "A_AddressPhoneNumber":
        return [e for p in partners for a in p["_addresses"] for e in a["_phones"]]
    if name == "A_BusinessPartnerContact":
        rows = [c for p in partners for c in p["_contacts"] + p.get("_relationships", [])]
        return sorted(rows, key=lambda c: c["RelationshipNumber"])
    if name == "A_BPContactToFuncAndDept":
        return [c["_function"] for p in partners for c in p["_contacts"]]
    return []  # declared sets the simulator holds nothing in


def expand_tree(text: str | None, set_name: str) -> dict[str, dict]:
    """'to_A/to_B,to_C' → {"to_A": {"to_B": {}}, "to_C": {}}, each segment checked against the model."""
    tree: dict[str, dict] = {}
    for path in (text or "").split(","):
        path = path.strip()
        if not path:
            continue
        node, current = tree, set_name
        for segment in path.split("/"):
            navs = metadata.SETS[current][3]
            if segment not in navs:
                raise QueryError(f"Property '{segment}' not found in type '{metadata.SETS[current][0]}'.")
            node = node.setdefault(segment, {})
            current = navs[segment][0]
    return tree


class SetView:
    def __init__(self, system: System, name: str, root: str):
        self.system, self.name, self.root = system, name, root
        self.type_name, props, self.keys, self.navs = metadata.SETS[name]
        self.types = {p[0]: p[1] for p in props}

    def filter_fields(self) -> dict[str, tuple[str, str]]:
        return {n: (n, _FILTER_TYPES.get(t, "string")) for n, t in self.types.items()}

    def nav_target(self, nav: str) -> tuple[str, bool]:
        target, multiplicity = self.navs[nav]
        return target, multiplicity == "*"

    def selection(self, text: str | None) -> set[str] | None:
        if not text or text.strip() == "*":
            return None
        names = set()
        for item in text.split(","):
            head = item.strip().split("/", 1)[0]
            if head not in self.types and head not in self.navs:
                raise QueryError(f"Property '{head}' not found in type '{self.type_name}'.")
            names.add(head)
        return names

    def find(self, key_text: str) -> dict[str, Any] | None:
        wanted: dict[str, str] = {}
        pos = 0
        while pos < len(key_text):
            match = _KEY_PART.match(key_text, pos)
            if not match or match.end() == pos:
                raise QueryError(f"Invalid key predicate '({key_text})'.")
            name = match.group(1) or (self.keys[0] if len(self.keys) == 1 else "")
            literal = match.group(2)
            if name not in self.keys:
                raise QueryError(f"Invalid key predicate '({key_text})'.")
            wanted[name] = (
                literal[9:-1] if literal.startswith("datetime'") else literal[1:-1].replace("''", "'")
            )
            pos = match.end()
        if set(wanted) != set(self.keys):
            raise QueryError(f"Invalid key predicate '({key_text})'.")
        if self.name == "A_BusinessPartner":
            return self.system.partners.get(wanted["BusinessPartner"])
        for row in rows_of_set(self.system, self.name):
            if all(str(row.get(k))[: len(v)] == v for k, v in wanted.items()):
                return row
        return None

    def uri(self, row: dict[str, Any]) -> str:
        def literal(key: str) -> str:
            value = str(row.get(key) or "")
            if self.types.get(key) == "Edm.DateTime":
                return f"datetime'{value}'"
            return "'" + value.replace("'", "''") + "'"

        if len(self.keys) == 1:
            pred = literal(self.keys[0])
        else:
            pred = ",".join(f"{k}={literal(k)}" for k in self.keys)
        return f"{self.root}{self.name}({pred})"

    def related(self, row: dict[str, Any], nav: str) -> Any:
        if nav in _NAV_ROWS:
            return row.get(_NAV_ROWS[nav])
        if nav == "to_Customer":
            return customer_row(row) if row.get("Customer") else None
        if nav == "to_Supplier":
            return supplier_row(row) if row.get("Supplier") else None
        return [] if self.navs[nav][1] == "*" else None

    def entity(self, row: dict[str, Any], tree: dict[str, dict], select: set[str] | None) -> dict[str, Any]:
        uri = self.uri(row)
        meta = {"id": uri, "uri": uri, "type": f"{metadata.NS}.{self.type_name}"}
        if self.name == "A_BusinessPartner":
            meta["etag"] = f"W/\"'{row.get('ETag') or row['CreationDate'][:10]}'\""
        out: dict[str, Any] = {"__metadata": meta}
        for name, typ in self.types.items():
            if select is None or name in select:
                out[name] = wire(typ, row.get(name))
        if self.name == "A_BusinessPartner" and self.system.extension_fields and select is None:
            out["YY1_SalesRegion_bus"] = "EMEA"
            out["YY1_CreditCheckDate_bus"] = "/Date(1767225600000)/"
            out["to_YY1_PartnerNotes"] = {"__deferred": {"uri": f"{uri}/to_YY1_PartnerNotes"}}
        for nav in self.navs:
            if select is not None and nav not in select:
                continue
            if nav not in tree:
                out[nav] = {"__deferred": {"uri": f"{uri}/{nav}"}}
                continue
            target, many = self.nav_target(nav)
            sub = SetView(self.system, target, self.root)
            value = self.related(row, nav)
            if many:
                out[nav] = {"results": [sub.entity(r, tree[nav], None) for r in value or []]}
            else:
                out[nav] = sub.entity(value, tree[nav], None) if value else None
        return out
