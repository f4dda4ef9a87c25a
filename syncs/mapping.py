"""How one ERP record becomes a Pipedrive v2 body, following a flow's field mappings.

A mapping source is an ERP field name or a template with {Field} placeholders; the target is a
standard Pipedrive field or `custom:<name>`. Everything here is pure except custom-field key
resolution, which goes through the FieldResolver (cached per company)."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from connectors.base import ConnectorError

PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
CUSTOM_PREFIX = "custom:"


class MappingError(ConnectorError):
    """A record cannot be mapped (missing required value, type mismatch, unknown lookup value)."""

    def __init__(self, message: str):
        super().__init__(message, permanent=True)


@dataclass(frozen=True)
class Rule:
    source: str
    target: str
    lookup: dict[str, Any] | None = None
    required: bool = False
    field_type: str = "varchar"

    @property
    def is_template(self) -> bool:
        return "{" in self.source

    @property
    def custom_name(self) -> str | None:
        return self.target[len(CUSTOM_PREFIX):].strip() if self.target.startswith(CUSTOM_PREFIX) else None


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).replace("\x00", "").strip()


def _tidy(text: str) -> str:
    """Collapse what empty template parts leave behind: double spaces, ', ,' and edge commas."""
    text = re.sub(r"\s+", " ", text)
    text = re.sub(r"(\s*,\s*)+", ", ", text)
    text = re.sub(r"\s+,", ",", text)
    return text.strip(" ,;-")


def render(rule: Rule, record: dict[str, Any]) -> Any:
    if rule.is_template:
        missing = [name for name in PLACEHOLDER.findall(rule.source) if name not in record]
        if missing and len(missing) == len(PLACEHOLDER.findall(rule.source)):
            raise MappingError(f"The record has none of the fields {', '.join(missing)} used by '{rule.source}'.")
        value: Any = _tidy(PLACEHOLDER.sub(lambda m: _text(record.get(m.group(1))), rule.source))
    else:
        if rule.source not in record:
            raise MappingError(f"The record has no field '{rule.source}' (mapped to {rule.target}).")
        value = record[rule.source]
        if isinstance(value, str):
            value = value.replace("\x00", "").strip()  # a NUL is never meant, and PostgreSQL refuses it
    if rule.lookup is not None and value not in (None, ""):
        key = _text(value)
        if key not in rule.lookup:
            allowed = ", ".join(sorted(map(str, rule.lookup)))
            raise MappingError(f"'{key}' in {rule.source} has no entry in the lookup table for {rule.target} "
                               f"(known: {allowed}).")
        value = rule.lookup[key]
    if value in (None, "") and rule.required:
        raise MappingError(f"{rule.source} is empty but {rule.target} is required.")
    return None if value == "" else value


def _number(value: Any, target: str) -> float:
    try:
        return float(Decimal(str(value).replace(",", "")))
    except (InvalidOperation, ValueError):
        raise MappingError(f"{target} needs a number, got {value!r}.") from None


# Standard (non-custom) v2 fields per entity and how a rendered value is shaped for them.
STANDARD_FIELDS: dict[str, dict[str, Any]] = {
    "organizations": {
        "name": lambda v, t: _text(v)[:255],
        "address": lambda v, t: {"value": _text(v)},
        "owner_id": lambda v, t: int(_number(v, t)),
        "visible_to": lambda v, t: int(_number(v, t)),
    },
    "persons": {
        "name": lambda v, t: _text(v)[:255],
        "emails": lambda v, t: [{"value": _text(v), "primary": True, "label": "work"}],
        "phones": lambda v, t: [{"value": _text(v), "primary": True, "label": "work"}],
        "owner_id": lambda v, t: int(_number(v, t)),
    },
    "deals": {
        "title": lambda v, t: _text(v)[:255],
        "value": lambda v, t: _number(v, t),
        "currency": lambda v, t: _text(v).upper(),
        "status": lambda v, t: _text(v),
        "expected_close_date": lambda v, t: _text(v)[:10],
    },
    "products": {
        "name": lambda v, t: _text(v)[:255],
        "code": lambda v, t: _text(v),
        "description": lambda v, t: _text(v),
        "unit": lambda v, t: _text(v),
        "prices": lambda v, t: _prices(v, t),
    },
    "notes": {
        "content": lambda v, t: _text(v),
    },
    "deal_products": {
        "item_price": lambda v, t: _number(v, t),
        "quantity": lambda v, t: _number(v, t),
        "discount": lambda v, t: _number(v, t),
        "comments": lambda v, t: _text(v),
    },
}
ENTITIES_WITHOUT_CUSTOM_FIELDS = frozenset({"notes", "deal_products"})


def _prices(value: Any, target: str) -> list[dict[str, Any]]:
    """[{price, currency}], as a flow kind's `derive` shapes them from the ERP's price lists."""
    if not isinstance(value, list) or not all(isinstance(p, dict) and "price" in p for p in value):
        raise MappingError(f"{target} needs a list of prices like [{{'price': 9.5, 'currency': 'USD'}}].")
    return [{"price": _number(p["price"], target), "currency": _text(p.get("currency")).upper() or "USD"}
            for p in value]


class Mapper:
    """Builds bodies for one flow; custom-field keys are resolved once and reused."""

    def __init__(self, *, rules: list[Rule], entity: str, resolver, external_id_field: str,
                 create_missing_fields: bool):
        self.rules = rules
        self.entity = entity
        self.resolver = resolver
        self.create_missing = create_missing_fields
        standard = STANDARD_FIELDS.get(entity, {})
        for rule in rules:
            if rule.custom_name is not None and entity in ENTITIES_WITHOUT_CUSTOM_FIELDS:
                raise MappingError(f"Pipedrive {entity} have no custom fields ('{rule.target}').")
            if rule.custom_name is None and rule.target not in standard:
                known = ", ".join(sorted(standard)) or "none"
                raise MappingError(f"'{rule.target}' is not a Pipedrive {entity} field (standard fields: {known}; "
                                   "custom fields are written as custom:<name>).")
        self.standard = standard
        # notes and deal products have no custom fields: their identity lives in our links (and, for
        # notes, a reference line in the content)
        self.external_key = self._key(external_id_field, "varchar") if external_id_field else ""
        # name → (key, definition, label), resolved once per run: records only convert values
        self.custom: dict[str, tuple[str, dict, str]] = {}
        for rule in rules:
            if rule.custom_name and rule.custom_name not in self.custom:
                key = self._key(rule.custom_name, rule.field_type)
                self.custom[rule.custom_name] = (key, resolver.field(entity, rule.custom_name),
                                                 f"The Pipedrive {entity} field {rule.custom_name!r}")

    def _key(self, name: str, field_type: str) -> str:
        if self.create_missing:
            return self.resolver.ensure(self.entity, name, field_type)
        return self.resolver.key(self.entity, name)

    def body(self, record: dict[str, Any], external_id: str) -> dict[str, Any]:
        body: dict[str, Any] = {}
        custom: dict[str, Any] = {self.external_key: external_id} if self.external_key else {}
        for rule in self.rules:
            value = render(rule, record)
            if rule.custom_name:
                key, definition, label = self.custom[rule.custom_name]
                custom[key] = None if value is None else self.resolver.convert(definition, value, label=label)
            elif value is not None:
                body[rule.target] = self.standard[rule.target](value, rule.target)
        if custom or self.entity not in ENTITIES_WITHOUT_CUSTOM_FIELDS:
            body["custom_fields"] = custom
        return body


def payload_hash(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()
