"""Field definitions per entity (v2 `/{entity}Fields`, wire doc §1.4) and custom-field values.

Every company starts with the standard fields (short codes such as `name`) and no custom fields.
Custom field codes are 40-char lowercase hex derived from the company seed, so the same field name
gets a different code in every company. Values use the REST v2 format for reads and writes and the
typed format (`{"type": "enum", "id": 17}`) in webhooks v2 (wire doc §5.2).
"""

from __future__ import annotations

import hashlib
import re
from datetime import date
from typing import Any

from .errors import invalid, wrong_type

CREATABLE_TYPES = frozenset({
    "varchar", "text", "double", "phone", "date", "daterange", "time", "timerange", "set", "enum",
    "varchar_auto", "address", "monetary", "org", "people", "user",
})
SEARCHABLE_TYPES = frozenset({"address", "varchar", "text", "varchar_auto", "double", "monetary", "phone"})
OPTION_TYPES = frozenset({"enum", "set"})

ADDRESS_PARTS = (
    ("value", "Address value"), ("street_number", "House number"), ("route", "Street/road name"),
    ("subpremise", "Apartment/suite"), ("sublocality", "Sublocality"), ("locality", "District"),
    ("admin_area_level_1", "State/province"), ("admin_area_level_2", "County"), ("country", "Country"),
    ("postal_code", "Postal code"), ("formatted_address", "Formatted address"),
)
ADDRESS_KEYS = tuple(key for key, _ in ADDRESS_PARTS)
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
TIME_RE = re.compile(r"^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?$")

# entity -> [(code, name, type, is_optional_response_field)]
STANDARD_FIELDS: dict[str, list[tuple[str, str, str, bool]]] = {
    "organization": [
        ("id", "ID", "int", False), ("name", "Organization Name", "varchar", False),
        ("owner_id", "Owner", "user", False), ("add_time", "Organization created", "date", False),
        ("update_time", "Update time", "date", False), ("visible_to", "Visible to", "visible_to", False),
        ("label_ids", "Labels", "set", False), ("address", "Address", "address", False),
        ("people_count", "People", "int", True), ("open_deals_count", "Open deals", "int", True),
        ("closed_deals_count", "Closed deals", "int", True), ("notes_count", "Notes", "int", True),
    ],
    "person": [
        ("id", "ID", "int", False), ("name", "Person Name", "varchar", False),
        ("first_name", "First name", "varchar", False), ("last_name", "Last name", "varchar", False),
        ("org_id", "Organization", "org", False), ("owner_id", "Owner", "user", False),
        ("phone", "Phone", "phone", False), ("email", "Email", "varchar", False),
        ("add_time", "Person created", "date", False), ("update_time", "Update time", "date", False),
        ("visible_to", "Visible to", "visible_to", False), ("label_ids", "Labels", "set", False),
        ("open_deals_count", "Open deals", "int", True), ("notes_count", "Notes", "int", True),
    ],
    "deal": [
        ("id", "ID", "int", False), ("title", "Deal Title", "varchar", False),
        ("value", "Value", "monetary", False), ("org_id", "Organization", "org", False),
        ("person_id", "Contact person", "people", False), ("owner_id", "Owner", "user", False),
        ("pipeline_id", "Pipeline", "int", False), ("stage_id", "Stage", "stage", False),
        ("status", "Status", "status", False), ("expected_close_date", "Expected close date", "date", False),
        ("probability", "Deal probability", "double", False), ("lost_reason", "Lost reason", "varchar", False),
        ("add_time", "Deal created", "date", False), ("update_time", "Update time", "date", False),
        ("close_time", "Deal closed on", "date", False), ("won_time", "Won time", "date", False),
        ("lost_time", "Lost time", "date", False), ("visible_to", "Visible to", "visible_to", False),
        ("label_ids", "Labels", "set", False), ("products_count", "Products", "int", True),
        ("notes_count", "Notes", "int", True),
    ],
    "product": [
        ("id", "ID", "int", False), ("name", "Product Name", "varchar", False),
        ("code", "Product code", "varchar", False), ("description", "Description", "text", False),
        ("unit", "Unit", "varchar", False), ("tax", "Tax", "double", False),
        ("category", "Category", "enum", False), ("owner_id", "Owner", "user", False),
        ("is_linkable", "Linkable", "boolean", False), ("visible_to", "Visible to", "visible_to", False),
        ("prices", "Prices", "price_list", False), ("billing_frequency", "Billing frequency", "billing_frequency", False),
        ("add_time", "Product created", "date", False), ("update_time", "Update time", "date", False),
    ],
    "activity": [
        ("id", "ID", "int", False), ("subject", "Subject", "varchar", False),
        ("type", "Type", "varchar_options", False), ("due_date", "Due date", "date", False),
        ("due_time", "Due time", "time", False), ("duration", "Duration", "time", False),
        ("busy", "Free/busy", "boolean", False), ("done", "Done", "boolean", False),
        ("owner_id", "Assigned to user", "user", False), ("deal_id", "Deal", "deal", False),
        ("person_id", "Contact person", "people", False), ("org_id", "Organization", "org", False),
        ("location", "Location", "address", False), ("note", "Note", "text", False),
        ("public_description", "Public description", "text", False), ("priority", "Priority", "enum", False),
        ("add_time", "Add time", "date", False), ("update_time", "Update time", "date", False),
        ("marked_as_done_time", "Marked as done time", "date", False),
    ],
}


def subfields_for(name: str, field_type: str) -> list[dict[str, str]] | None:
    if field_type == "address":
        return [{"field_code": key, "field_name": f"{label} of {name}", "field_type": "varchar"}
                for key, label in ADDRESS_PARTS if key != "sublocality"]
    if field_type == "monetary":
        return [{"field_code": "value", "field_name": f"Amount of {name}", "field_type": "double"},
                {"field_code": "currency", "field_name": f"Currency of {name}", "field_type": "varchar"}]
    return None


class FieldDef:
    __slots__ = ("code", "name", "type", "options", "is_custom", "optional", "add_time", "update_time",
                 "ui_visibility", "important_fields", "required_fields", "option_by_id", "description")

    def __init__(self, code: str, name: str, field_type: str, *, is_custom: bool = False, optional: bool = False,
                 options: list[dict[str, Any]] | None = None, add_time: str | None = None,
                 description: str | None = None):
        self.code, self.name, self.type = code, name, field_type
        self.description = description
        self.is_custom, self.optional = is_custom, optional
        self.options = options
        self.option_by_id = {o["id"]: o for o in options} if options is not None else {}
        self.add_time = self.update_time = add_time
        self.ui_visibility: dict[str, Any] = {"add_visible_flag": True, "details_visible_flag": True}
        self.important_fields: dict[str, Any] = {"enabled": False, "stage_ids": []}
        self.required_fields: dict[str, Any] = {"enabled": False}

    def set_options(self, options: list[dict[str, Any]]) -> None:
        self.options = options
        self.option_by_id = {o["id"]: o for o in options}

    def as_dict(self, extras: frozenset[str] | set[str] = frozenset()) -> dict[str, Any]:
        out: dict[str, Any] = {
            "field_name": self.name,
            "field_code": self.code,
            "description": self.description,
            "field_type": self.type,
            "options": [dict(o) for o in self.options] if self.options is not None else None,
            "subfields": subfields_for(self.name, self.type),
            "is_custom_field": self.is_custom,
            "is_optional_response_field": self.optional,
        }
        if "ui_visibility" in extras:
            out["ui_visibility"] = self.ui_visibility
        if "important_fields" in extras:
            out["important_fields"] = self.important_fields
        if "required_fields" in extras:
            out["required_fields"] = self.required_fields
        return out


class FieldSet:
    """One entity's fields in one company: standard ones first, then custom ones in creation order."""

    def __init__(self, entity: str):
        self.entity = entity
        self.by_code: dict[str, FieldDef] = {}
        self.deleted_custom: set[str] = set()
        self.custom: tuple[FieldDef, ...] = ()
        self.custom_codes: tuple[str, ...] = ()
        self.searchable: tuple[FieldDef, ...] = ()
        for code, name, field_type, optional in STANDARD_FIELDS.get(entity, []):
            self.by_code[code] = FieldDef(code, name, field_type, optional=optional,
                                          description=f"{name} of the {entity}")

    def _refresh(self) -> None:
        self.custom = tuple(f for f in self.by_code.values() if f.is_custom)
        self.custom_codes = tuple(f.code for f in self.custom)
        self.searchable = tuple(f for f in self.custom if f.type in SEARCHABLE_TYPES)

    def add_custom(self, field: FieldDef) -> None:
        self.by_code[field.code] = field
        self._refresh()

    def remove_custom(self, code: str) -> FieldDef:
        field = self.by_code.pop(code)
        self.deleted_custom.add(code)
        self._refresh()
        return field


def custom_field_code(company_seed: str, entity: str, counter: int, name: str) -> str:
    return hashlib.sha1(f"{company_seed}:{entity}:{counter}:{name}".encode()).hexdigest()


# -- values -------------------------------------------------------------------------------------

def _check_date(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise wrong_type(where, "string", value)
    if not DATE_RE.match(value):
        raise invalid(f"{where}: Invalid date, expected format YYYY-MM-DD")
    try:
        date.fromisoformat(value)
    except ValueError:
        raise invalid(f"{where}: Invalid date, expected format YYYY-MM-DD") from None
    return value


def _check_object(value: Any, where: str, allowed: tuple[str, ...], required: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise wrong_type(where, "object", value)
    for key in value:
        if key not in allowed:
            raise invalid(f"{where}.{key}: Parameter '{key}' is not allowed for this request")
    for key in required:
        if value.get(key) is None:
            raise invalid(f"{where}.{key}: Required")
    return value


def _check_str(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise wrong_type(where, "string", value)
    return value


def _check_number(value: Any, where: str) -> float | int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise wrong_type(where, "number", value)
    return value


def _check_id(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise wrong_type(where, "number", value)
    if value <= 0:
        raise invalid(f"{where}: Number must be greater than 0")
    return value


def _check_time_obj(value: Any, where: str, ranged: bool) -> dict[str, Any]:
    keys = ("value", "until", "timezone_name", "timezone_id") if ranged else ("value", "timezone_name", "timezone_id")
    obj = _check_object(value, where, keys, ("value", "until") if ranged else ("value",))
    for key in ("value", "until"):
        if key in obj and (not isinstance(obj[key], str) or not TIME_RE.match(obj[key])):
            raise invalid(f"{where}.{key}: Invalid time, expected format HH:MM or HH:MM:SS")
    return {k: obj.get(k) for k in keys if k in obj}


def address_value(value: Any, where: str, keys: tuple[str, ...] = ADDRESS_KEYS) -> dict[str, Any]:
    """An address object; subfields left out become null (wire doc §1.4, on POST and PATCH)."""
    obj = _check_object(value, where, ADDRESS_KEYS, ("value",))
    for key, part in obj.items():
        if part is not None and not isinstance(part, str):
            raise wrong_type(f"{where}.{key}", "string", part)
    return {key: obj.get(key) for key in keys}


def check_custom_value(field: FieldDef, value: Any, default_currency: str) -> Any:
    """Validate one v2 custom field value; returns the stored form. `None` clears the field."""
    where = f"custom_fields.{field.code}"
    if value is None:
        return None
    t = field.type
    if t in ("varchar", "varchar_auto", "phone", "text"):
        _check_str(value, where)
        if t == "varchar" and len(value) > 255:
            raise invalid(f"{where}: String must contain at most 255 character(s)")
        return value
    if t == "double":
        return _check_number(value, where)
    if t == "monetary":
        obj = _check_object(value, where, ("value", "currency"), ("value",))
        _check_number(obj["value"], f"{where}.value")
        currency = obj.get("currency")
        if currency is not None:
            _check_str(currency, f"{where}.currency")
        return {"value": obj["value"], "currency": currency or default_currency}
    if t == "date":
        return _check_date(value, where)
    if t == "daterange":
        obj = _check_object(value, where, ("value", "until"), ("value", "until"))
        return {"value": _check_date(obj["value"], f"{where}.value"), "until": _check_date(obj["until"], f"{where}.until")}
    if t == "time":
        return _check_time_obj(value, where, ranged=False)
    if t == "timerange":
        return _check_time_obj(value, where, ranged=True)
    if t == "enum":
        if isinstance(value, bool) or not isinstance(value, int):
            raise wrong_type(where, "number", value)
        if value not in field.option_by_id:
            raise invalid(f"{where}: Option with id {value} does not exist")
        return value
    if t == "set":
        if not isinstance(value, list):
            raise wrong_type(where, "array", value)
        if not value:
            raise invalid(f"{where}: Array must contain at least 1 element(s)")
        for item in value:
            if isinstance(item, bool) or not isinstance(item, int):
                raise wrong_type(f"{where}[]", "number", item)
            if item not in field.option_by_id:
                raise invalid(f"{where}: Option with id {item} does not exist")
        return list(dict.fromkeys(value))
    if t == "address":
        return address_value(value, where)
    if t in ("org", "people", "user"):
        return _check_id(value, where)
    raise invalid(f"{where}: Field of type '{t}' cannot be written")


def labelled_value(field: FieldDef, value: Any) -> Any:
    """`include_option_labels=true`: options as {id, label} instead of plain ids."""
    if value is None:
        return None
    if field.type == "enum":
        option = field.option_by_id.get(value)
        return {"id": value, "label": option["label"] if option else None}
    if field.type == "set":
        return [{"id": i, "label": field.option_by_id[i]["label"] if i in field.option_by_id else None} for i in value]
    return value


def webhook_value(field: FieldDef, value: Any) -> Any:
    """Webhooks v2 carry custom fields with a `type` (wire doc §5.2)."""
    if value is None:
        return None
    t = field.type
    if t == "enum":
        return {"type": "enum", "id": value}
    if t == "set":
        return {"type": "set", "values": [{"id": i} for i in value]}
    if t in ("org", "people", "user"):
        return {"type": t, "id": value}
    if isinstance(value, dict):
        return {"type": t, **value}
    return {"type": t, "value": value}


def number_text(value: float | int) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def search_text(field: FieldDef, value: Any) -> str | None:
    """The text the search index holds for a searchable custom field value."""
    if value is None:
        return None
    if field.type == "double":
        return number_text(value)
    if field.type in ("monetary", "address"):
        inner = value.get("value")
        if inner is None:
            return None
        return number_text(inner) if field.type == "monetary" else inner
    return value if isinstance(value, str) else None
