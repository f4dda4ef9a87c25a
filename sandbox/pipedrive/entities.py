"""The v2 entities: accepted body parameters, defaults, derived fields and output shapes.

Shapes follow the v2 spec's response schemas and examples; body parameters are exactly the spec's
request-body properties (anything else is refused, wire doc §1.4/§7). Numbers are never coerced from
strings and booleans are only true/false (wire doc §1.1).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .errors import invalid, wrong_type
from .fields import DATE_RE, TIME_RE, FieldSet, address_value, labelled_value, search_text, webhook_value
from .store import Projection, Rec

if TYPE_CHECKING:
    from .state import Company

Validator = Callable[[Any, str], Any]

ORG_ADDRESS_KEYS = ("value", "country", "admin_area_level_1", "admin_area_level_2", "locality", "sublocality",
                    "route", "street_number", "subpremise", "postal_code")


def rfc3339(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def v1_time(value: str | None) -> str | None:
    """RFC 3339 `2026-11-23T10:00:00Z` -> v1's `2026-11-23 10:00:00`."""
    return value.replace("T", " ").rstrip("Z") if isinstance(value, str) and "T" in value else value


def parse_rfc3339(value: str, where: str) -> float:
    try:
        parsed = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise invalid(f"{where}: Invalid datetime, expected RFC 3339 (e.g. 2025-01-01T10:20:00Z)") from None
    if "T" not in value:
        raise invalid(f"{where}: Invalid datetime, expected RFC 3339 (e.g. 2025-01-01T10:20:00Z)")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


# -- validators: (value, where) -> stored value ---------------------------------------------------

def v_str(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise wrong_type(where, "string", value)
    return value


def v_name(value: Any, where: str) -> str:
    v_str(value, where)
    if not value.strip():
        raise invalid(f"{where}: String must contain at least 1 character(s)")
    return value


def v_int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise wrong_type(where, "number", value)
    return value


def v_id(value: Any, where: str) -> int:
    v_int(value, where)
    if value <= 0:
        raise invalid(f"{where}: Number must be greater than 0")
    return value


def v_num(value: Any, where: str) -> int | float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise wrong_type(where, "number", value)
    return value


def v_bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise wrong_type(where, "boolean", value)
    return value


def v_int_list(value: Any, where: str) -> list[int]:
    if not isinstance(value, list):
        raise wrong_type(where, "array", value)
    for item in value:
        v_int(item, f"{where}[]")
    return list(value)


def v_choice(*choices: Any) -> Validator:
    def check(value: Any, where: str) -> Any:
        if isinstance(value, bool) or value not in choices:
            allowed = " | ".join(repr(c) for c in choices)
            raise invalid(f"{where}: Invalid enum value. Expected {allowed}, received {value!r}")
        return value
    return check


def v_date(value: Any, where: str) -> str:
    v_str(value, where)
    if not DATE_RE.match(value):
        raise invalid(f"{where}: Invalid date, expected format YYYY-MM-DD")
    return value


def v_datetime(value: Any, where: str) -> str:
    v_str(value, where)
    return rfc3339(parse_rfc3339(value, where))


def v_hhmm(value: Any, where: str) -> str:
    v_str(value, where)
    if not TIME_RE.match(value):
        raise invalid(f"{where}: Invalid time, expected format HH:MM")
    return value[:5]


def nullable(check: Validator) -> Validator:
    return lambda value, where: None if value is None else check(value, where)


def v_contacts(value: Any, where: str) -> list[dict[str, Any]]:
    """`emails` / `phones`: [{value, primary, label}]; the first becomes primary if none is."""
    if not isinstance(value, list):
        raise wrong_type(where, "array", value)
    out = []
    for i, item in enumerate(value):
        here = f"{where}[{i}]"
        if not isinstance(item, dict):
            raise wrong_type(here, "object", item)
        for key in item:
            if key not in ("value", "primary", "label"):
                raise invalid(f"{here}.{key}: Parameter '{key}' is not allowed for this request")
        out.append({
            "value": v_str(item.get("value"), f"{here}.value"),
            "primary": v_bool(item.get("primary", False), f"{here}.primary"),
            "label": v_str(item.get("label", "work"), f"{here}.label"),
        })
    if out and not any(c["primary"] for c in out):
        out[0]["primary"] = True
    return out


def v_org_address(value: Any, where: str) -> dict[str, Any] | None:
    if value is None:
        return None
    return address_value(value, where, ORG_ADDRESS_KEYS)


def v_location(value: Any, where: str) -> dict[str, Any] | None:
    if value is None:
        return None
    return address_value(value, where, ORG_ADDRESS_KEYS)


def v_objects(value: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise wrong_type(where, "array", value)
    for item in value:
        if not isinstance(item, dict):
            raise wrong_type(f"{where}[]", "object", item)
    return [dict(item) for item in value]


def v_prices(value: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise wrong_type(where, "array", value)
    seen, out = set(), []
    for i, item in enumerate(value):
        here = f"{where}[{i}]"
        if not isinstance(item, dict):
            raise wrong_type(here, "object", item)
        for key in item:
            if key not in ("currency", "price", "cost", "direct_cost", "notes"):
                raise invalid(f"{here}.{key}: Parameter '{key}' is not allowed for this request")
        currency = v_str(item.get("currency"), f"{here}.currency")
        if currency in seen:
            raise invalid(f"{where}: There can only be one price per product per currency")
        seen.add(currency)
        out.append({
            "price": v_num(item.get("price", 0), f"{here}.price"),
            "currency": currency,
            "cost": v_num(item.get("cost", 0), f"{here}.cost"),
            "direct_cost": v_num(item.get("direct_cost", 0), f"{here}.direct_cost"),
            "notes": nullable(v_str)(item.get("notes"), f"{here}.notes"),
        })
    return out


BILLING = ("one-time", "annually", "semi-annually", "quarterly", "monthly", "weekly")
VISIBLE_TO = v_choice(1, 3, 5, 7)


# -- entity specifications ------------------------------------------------------------------------

@dataclass
class EntitySpec:
    name: str
    plural: str
    label: str
    title_key: str
    params: dict[str, Validator]
    required: tuple[str, ...] = ()
    has_custom: bool = True
    refs: dict[str, str] = field(default_factory=dict)  # body param -> entity it must point to
    filters: dict[str, str] = field(default_factory=dict)  # list query param -> "int" | "bool" | "str" | "status"
    sort_by: tuple[str, ...] = ("id", "update_time", "add_time")
    search_fields: tuple[str, ...] = ()
    updated_filters: bool = True
    time_keys: tuple[str, ...] = ("add_time", "update_time")

    def defaults(self, company: Company, rec_id: int, now: str) -> dict[str, Any]:
        return DEFAULTS[self.name](company, rec_id, now)


def _org_defaults(company: Company, rec_id: int, now: str) -> dict[str, Any]:
    return {"id": rec_id, "name": None, "owner_id": company.user_id, "add_time": now, "update_time": now,
            "address": None, "is_deleted": False, "visible_to": 3, "label_ids": []}


def _person_defaults(company: Company, rec_id: int, now: str) -> dict[str, Any]:
    return {"id": rec_id, "name": None, "first_name": None, "last_name": None, "owner_id": company.user_id,
            "org_id": None, "add_time": now, "update_time": now, "emails": [], "phones": [], "is_deleted": False,
            "visible_to": 3, "label_ids": [], "picture_id": None}


def _deal_defaults(company: Company, rec_id: int, now: str) -> dict[str, Any]:
    return {"id": rec_id, "title": None, "owner_id": company.user_id, "person_id": None, "org_id": None,
            "pipeline_id": 1, "stage_id": 1, "value": 0, "currency": company.currency, "add_time": now,
            "update_time": now, "stage_change_time": None, "is_deleted": False, "is_archived": False,
            "archive_time": None, "status": "open", "probability": None, "lost_reason": None, "visible_to": 3,
            "close_time": None, "won_time": None, "lost_time": None, "expected_close_date": None, "label_ids": [],
            "origin": "API", "origin_id": None, "channel": None, "channel_id": None, "arr": None, "mrr": None,
            "acv": None}


def _product_defaults(company: Company, rec_id: int, now: str) -> dict[str, Any]:
    return {"id": rec_id, "name": None, "code": None, "description": None, "unit": None, "tax": 0,
            "category": None, "is_linkable": True, "is_deleted": False, "visible_to": 3,
            "owner_id": company.user_id, "add_time": now, "update_time": now, "billing_frequency": "one-time",
            "billing_frequency_cycles": None,
            "prices": [{"product_id": rec_id, "price": 0, "currency": company.currency, "cost": 0, "direct_cost": 0,
                        "notes": None}]}


def _activity_defaults(company: Company, rec_id: int, now: str) -> dict[str, Any]:
    return {"id": rec_id, "subject": None, "type": "call", "owner_id": company.user_id,
            "creator_user_id": company.user_id, "is_deleted": False, "add_time": now, "update_time": now,
            "deal_id": None, "lead_id": None, "person_id": None, "org_id": None, "project_id": None,
            "due_date": None, "due_time": None, "duration": None, "busy": False, "done": False,
            "marked_as_done_time": None, "location": None, "participants": [], "attendees": [],
            "conference_meeting_client": None, "conference_meeting_url": None, "conference_meeting_id": None,
            "public_description": None, "priority": None, "note": None}


DEFAULTS: dict[str, Callable[[Company, int, str], dict[str, Any]]] = {
    "organization": _org_defaults, "person": _person_defaults, "deal": _deal_defaults,
    "product": _product_defaults, "activity": _activity_defaults,
}

_common_times = {"add_time": v_datetime, "update_time": v_datetime}

ENTITIES: dict[str, EntitySpec] = {
    "organization": EntitySpec(
        "organization", "organizations", "Organization", "name",
        params={"name": v_name, "owner_id": v_id, "visible_to": v_int, "label_ids": v_int_list,
                "address": v_org_address, "custom_fields": None, **_common_times},  # type: ignore[dict-item]
        required=("name",),
        filters={"owner_id": "int"},
        search_fields=("address", "custom_fields", "notes", "name"),
    ),
    "person": EntitySpec(
        "person", "persons", "Person", "name",
        params={"name": v_name, "owner_id": v_id, "org_id": nullable(v_id), "emails": v_contacts,
                "phones": v_contacts, "visible_to": v_int, "label_ids": v_int_list,
                "marketing_status": v_choice("no_consent", "unsubscribed", "subscribed", "archived"),
                "custom_fields": None, **_common_times},  # type: ignore[dict-item]
        required=("name",),
        refs={"org_id": "organization"},
        filters={"owner_id": "int", "org_id": "int"},
        search_fields=("custom_fields", "email", "notes", "phone", "name"),
    ),
    "deal": EntitySpec(
        "deal", "deals", "Deal", "title",
        params={"title": v_name, "owner_id": v_id, "person_id": nullable(v_id), "org_id": nullable(v_id),
                "pipeline_id": v_id, "stage_id": v_id, "value": v_num, "currency": v_str,
                "is_deleted": v_bool, "is_archived": v_bool, "archive_time": nullable(v_datetime),
                "status": v_choice("open", "won", "lost"), "probability": nullable(v_num),
                "lost_reason": nullable(v_str), "visible_to": v_int, "close_time": nullable(v_datetime),
                "won_time": nullable(v_datetime), "lost_time": nullable(v_datetime),
                "expected_close_date": nullable(v_date), "label_ids": v_int_list, "custom_fields": None,
                **_common_times},  # type: ignore[dict-item]
        required=("title",),
        refs={"org_id": "organization", "person_id": "person"},
        filters={"owner_id": "int", "person_id": "int", "org_id": "int", "pipeline_id": "int",
                 "stage_id": "int", "status": "status"},
        search_fields=("custom_fields", "notes", "title"),
        time_keys=("add_time", "update_time", "stage_change_time", "close_time", "won_time", "lost_time",
                   "archive_time"),
    ),
    "product": EntitySpec(
        "product", "products", "Product", "name",
        params={"name": v_name, "code": nullable(v_str), "description": nullable(v_str), "unit": nullable(v_str),
                "tax": v_num, "category": nullable(v_num), "owner_id": v_id, "is_linkable": v_bool,
                "visible_to": VISIBLE_TO, "prices": v_prices, "custom_fields": None,
                "billing_frequency": v_choice(*BILLING), "billing_frequency_cycles": nullable(v_int)},  # type: ignore[dict-item]
        required=("name",),
        filters={"owner_id": "int"},
        sort_by=("id", "name", "add_time", "update_time"),
        search_fields=("code", "custom_fields", "name"),
        updated_filters=False,
    ),
    "activity": EntitySpec(
        "activity", "activities", "Activity", "subject",
        params={"subject": v_str, "type": v_str, "owner_id": v_id, "deal_id": nullable(v_id),
                "lead_id": nullable(v_str), "person_id": nullable(v_id), "org_id": nullable(v_id),
                "project_id": nullable(v_id), "due_date": nullable(v_date), "due_time": nullable(v_hhmm),
                "duration": nullable(v_hhmm), "busy": v_bool, "done": v_bool, "location": v_location,
                "participants": v_objects, "attendees": v_objects, "public_description": nullable(v_str),
                "priority": nullable(v_int), "note": nullable(v_str)},
        has_custom=False,
        refs={"deal_id": "deal", "person_id": "person", "org_id": "organization"},
        filters={"owner_id": "int", "deal_id": "int", "person_id": "int", "org_id": "int", "done": "bool",
                 "lead_id": "str"},
        sort_by=("id", "update_time", "add_time", "due_date"),
        time_keys=("add_time", "update_time", "marked_as_done_time"),
    ),
}
BY_PLURAL = {spec.plural: spec for spec in ENTITIES.values()}
SORT_KEYS: dict[str, Callable[[Rec], Any]] = {
    "name": lambda r: r.data.get("name") or "",
    "due_date": lambda r: r.data.get("due_date") or "",
    "add_time": lambda r: r.add_ts,
}


def derive(spec: EntitySpec, data: dict[str, Any], changed: set[str], now: str, old: dict[str, Any] | None) -> None:
    """Fields Pipedrive computes from others (names, deal status times, product prices...)."""
    if spec.name == "person" and "name" in changed:
        first, _, last = data["name"].strip().partition(" ")
        data["first_name"], data["last_name"] = first, last or None
    elif spec.name == "deal":
        if "status" in changed and (old is None or old.get("status") != data["status"]):
            status = data["status"]
            if status == "won":
                data["won_time"] = data["close_time"] = now
                data["lost_time"] = None
            elif status == "lost":
                data["lost_time"] = data["close_time"] = now
                data["won_time"] = None
            else:
                data["won_time"] = data["lost_time"] = data["close_time"] = None
                data["lost_reason"] = None
        if "stage_id" in changed and old is not None and old.get("stage_id") != data["stage_id"]:
            data["stage_change_time"] = now
        if "is_archived" in changed and "archive_time" not in changed:
            data["archive_time"] = now if data["is_archived"] else None
        if data.get("lost_reason") is not None and data["status"] != "lost":
            raise invalid("lost_reason: Lost reason can only be set for lost deals")
    elif spec.name == "product":
        if "prices" in changed:
            data["prices"] = [{"product_id": data["id"], **price} for price in data["prices"]]
        frequency, cycles = data["billing_frequency"], data["billing_frequency_cycles"]
        if frequency == "one-time" and cycles is not None:
            raise invalid("billing_frequency_cycles: Must be null when billing_frequency is one-time")
        if frequency == "weekly" and cycles is None:
            raise invalid("billing_frequency_cycles: Cannot be null when billing_frequency is weekly")
        if cycles is not None and not 0 < cycles <= 208:
            raise invalid("billing_frequency_cycles: Must be a positive integer less or equal to 208")
    elif spec.name == "activity":
        if data["subject"] is None:
            data["subject"] = data["type"].replace("_", " ").capitalize()
        if "done" in changed:
            data["marked_as_done_time"] = now if data["done"] else None


# -- output -------------------------------------------------------------------------------------------

def render(spec: EntitySpec, rec: Rec, fields: FieldSet, only: set[str] | None = None,
           labels: bool = False) -> dict[str, Any]:
    """The REST v2 object: every custom field of the entity, null when unset."""
    out = dict(rec.data)
    if spec.has_custom:
        custom = rec.custom
        codes = fields.custom_codes if only is None else [c for c in fields.custom_codes if c in only]
        if labels:
            out["custom_fields"] = {c: labelled_value(fields.by_code[c], custom.get(c)) for c in codes}
        else:
            out["custom_fields"] = {c: custom.get(c) for c in codes}
    return out


def render_webhook(spec: EntitySpec, data: dict[str, Any], custom: dict[str, Any], fields: FieldSet) -> dict[str, Any]:
    out = dict(data)
    if spec.has_custom:
        out["custom_fields"] = {f.code: webhook_value(f, custom.get(f.code)) for f in fields.custom}
    return out


def render_v1(spec: EntitySpec, data: dict[str, Any], custom: dict[str, Any], fields: FieldSet) -> dict[str, Any]:
    """An approximation of the v1 object for webhooks v1: v1 times, flags and top-level custom keys."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key in spec.time_keys:
            value = v1_time(value)
        if key == "is_deleted":
            out["active_flag"] = not value
            continue
        if key == "owner_id" and spec.name == "deal":
            key = "user_id"
        if key in ("emails", "phones") and spec.name == "person":
            key = key[:-1]
        out[key] = value
    if spec.has_custom:
        for f in fields.custom:
            value = custom.get(f.code)
            if isinstance(value, dict):
                out[f.code] = value.get("value")
                for sub, subvalue in value.items():
                    if sub != "value":
                        out[f"{f.code}_{sub}"] = subvalue
            elif f.type == "set" and value is not None:
                out[f.code] = ",".join(str(i) for i in value)
            elif f.type == "enum" and value is not None:
                out[f.code] = str(value)
            else:
                out[f.code] = value
    return out


def projection(spec: EntitySpec, data: dict[str, Any], custom: dict[str, Any], fields: FieldSet) -> Projection:
    """What the search index holds for one record: (group, field code, text)."""
    out: list[tuple[str, str, str]] = []
    name = spec.name
    if name in ("organization", "person", "product") and data.get("name"):
        out.append(("name", "name", data["name"]))
    if name == "deal" and data.get("title"):
        out.append(("title", "title", data["title"]))
    if name == "organization" and data.get("address") and data["address"].get("value"):
        out.append(("address", "address", data["address"]["value"]))
    if name == "person":
        out.extend(("email", "email", e["value"]) for e in data["emails"] if e.get("value"))
        out.extend(("phone", "phone", p["value"]) for p in data["phones"] if p.get("value"))
    if name == "product" and data.get("code"):
        out.append(("code", "code", data["code"]))
    if spec.has_custom and custom:
        for f in fields.searchable:
            text = search_text(f, custom.get(f.code))
            if text:
                out.append(("custom_fields", f.code, text))
    return tuple(out)
