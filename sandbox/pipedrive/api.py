"""Handlers for the Pipedrive endpoints: v2 entities, deal products, field definitions, v1 notes,
users/me and webhooks. Each handler gets a Ctx (company lock held) and returns (status, body).

Writes go through `create_record` / `update_record` / `delete_record`, which the control API's
"UI" endpoints reuse with change_source "app"; both emit webhooks like real Pipedrive does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from .entities import (
    ENTITIES,
    SORT_KEYS,
    EntitySpec,
    derive,
    parse_rfc3339,
    projection,
    render,
    render_v1,
    render_webhook,
    rfc3339,
    v1_time,
)
from .errors import ApiError, bad_request, error_body, invalid, not_allowed, not_found
from .fields import CREATABLE_TYPES, OPTION_TYPES, FieldDef, check_custom_value, custom_field_code
from .store import Rec, Store, decode_cursor, encode_cursor
from .webhooks import EVENT_ACTIONS, EVENT_OBJECTS, LEGACY_ACTIONS, is_loopback_url

if TYPE_CHECKING:
    from .state import Company
    from .webhooks import WebhookHub

HASH_RE = re.compile(r"^[0-9a-f]{40}$")
MAX_WEBHOOKS_PER_USER = 40


@dataclass
class Ctx:
    company: Company
    hub: WebhookHub
    req: Any  # sandbox.core.Request
    params: dict[str, str]
    body: Any = None


# -- query helpers ----------------------------------------------------------------------------------

def q_int(req: Any, name: str, default: int | None = None) -> int | None:
    raw = req.arg(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise invalid(f"{name}: Expected number, received string") from None


def q_limit(req: Any, maximum: int, default: int = 100) -> int:
    limit = q_int(req, "limit", default)
    if limit < 1:
        raise invalid("limit: Number must be greater than or equal to 1")
    if limit > maximum:
        raise invalid(f"limit: Number must be less than or equal to {maximum}")
    return limit


def q_bool(req: Any, name: str) -> bool | None:
    raw = req.arg(name)
    if raw is None or raw == "":
        return None
    if raw in ("true", "1"):
        return True
    if raw in ("false", "0"):
        return False
    raise invalid(f"{name}: Expected boolean, received string")


def q_choice(req: Any, name: str, choices: tuple[str, ...], default: str) -> str:
    raw = req.arg(name) or default
    if raw not in choices:
        raise invalid(f"{name}: Invalid enum value. Expected {' | '.join(repr(c) for c in choices)}, received '{raw}'")
    return raw


def q_list(req: Any, name: str) -> list[str]:
    raw = req.arg(name)
    return [part.strip() for part in raw.split(",") if part.strip()] if raw else []


def path_int(ctx: Ctx, name: str = "id") -> int:
    raw = ctx.params[name]
    if not raw.isdigit():
        raise invalid(f"{name}: Expected number, received string")
    return int(raw)


def body_object(ctx: Ctx) -> dict[str, Any]:
    body = ctx.body
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise invalid("body: Expected object")
    return body


def offset_page(items: list[Any], cursor: str | None, limit: int) -> tuple[list[Any], str | None]:
    start = 0
    if cursor:
        try:
            start = int(decode_cursor(cursor)["offset"])
        except (KeyError, TypeError, ValueError):
            raise invalid("cursor: Invalid cursor") from None
    page = items[start:start + limit]
    more = start + limit < len(items)
    return page, encode_cursor({"offset": start + limit}) if more else None


def ok(data: Any, additional: Any = None, status: int = 200) -> tuple[int, dict[str, Any]]:
    body: dict[str, Any] = {"success": True, "data": data}
    if additional is not None:
        body["additional_data"] = additional
    return status, body


# -- shared write path ------------------------------------------------------------------------------

def find(company: Company, spec: EntitySpec, rec_id: int) -> Rec:
    rec = company.stores[spec.name].recs.get(rec_id)
    if rec is None or rec.deleted:
        raise not_found(f"{spec.label} not found")
    return rec


def validate_body(company: Company, spec: EntitySpec, body: dict[str, Any],
                  creating: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """(standard changes, custom field changes) of a v2 create/update body."""
    params = spec.params
    for key in body:
        if key not in params:
            raise not_allowed(key)
    changes: dict[str, Any] = {}
    custom: dict[str, Any] = {}
    for key, value in body.items():
        if key == "custom_fields":
            if value is None:
                continue
            if not isinstance(value, dict):
                raise invalid(f"custom_fields: Expected object, received {type(value).__name__}")
            fields = company.fields[spec.name]
            for code, raw in value.items():
                field = fields.by_code.get(code)
                if field is None or not field.is_custom:
                    if code in fields.deleted_custom:
                        continue  # a deleted field is ignored, like Pipedrive does (wire doc §1.4)
                    raise invalid(f"custom_fields.{code}: Unknown custom field")
                custom[code] = check_custom_value(field, raw, company.currency)
            continue
        if key in ("is_deleted", "update_time"):
            params[key](value, key)  # type-checked, but Pipedrive sets these itself
            continue
        changes[key] = params[key](value, key)
    if creating:
        for key in spec.required:
            if changes.get(key) is None:
                raise invalid(f"{key}: Required")
    elif not body:
        raise invalid("body: At least one parameter must be provided")
    for key, target in spec.refs.items():
        ref = changes.get(key)
        if ref is not None:
            other = company.stores[target].recs.get(ref)
            if other is None or other.deleted:
                raise bad_request(f"{ENTITIES[target].label} with id {ref} not found")
    return changes, custom


def _index(company: Company, spec: EntitySpec, rec: Rec, ts: float) -> None:
    if spec.name not in ("organization", "person", "deal", "product"):
        return
    fields = company.fields[spec.name]
    company.stores[spec.name].add_version(rec, ts, projection(spec, rec.data, rec.custom, fields),
                                          company.search_index_delay_s)


def _emit(company: Company, hub: WebhookHub, spec: EntitySpec, action: str, rec: Rec, ts: float, source: str,
          old: tuple[dict[str, Any], dict[str, Any]] | None, changed: dict[str, Any] | None = None,
          changed_custom: dict[str, Any] | None = None) -> None:
    if not company.webhooks:
        return
    subs = hub.matching(company, spec.name, action)
    if not subs:
        return
    fields = company.fields[spec.name]
    want_v1 = any(s["version"] == "1.0" for s in subs)
    want_v2 = any(s["version"] != "1.0" for s in subs)
    v2 = v1 = None
    if want_v2:
        if action == "create":
            v2 = (render_webhook(spec, rec.data, rec.custom, fields), None)
        elif action == "delete":
            v2 = (None, render_webhook(spec, old[0], old[1], fields))
        else:
            previous: dict[str, Any] = dict(changed or {})
            if changed_custom:
                by_code = fields.by_code
                from .fields import webhook_value
                previous["custom_fields"] = {code: webhook_value(by_code[code], value)
                                             for code, value in changed_custom.items() if code in by_code}
            v2 = (render_webhook(spec, rec.data, rec.custom, fields), previous)
    if want_v1:
        current = None if action == "delete" else render_v1(spec, rec.data, rec.custom, fields)
        before = None if old is None else render_v1(spec, old[0], old[1], fields)
        v1 = (current, before)
    hub.emit(company, subs, action=action, entity=spec.name, entity_id=rec.id, ts=ts, change_source=source,
             v2=v2, v1=v1)


def create_record(company: Company, hub: WebhookHub, spec: EntitySpec, body: dict[str, Any], source: str) -> Rec:
    changes, custom = validate_body(company, spec, body, creating=True)
    store = company.stores[spec.name]
    ts = company.now()
    now = rfc3339(ts)
    rec_id = store.new_id()
    data = spec.defaults(company, rec_id, now)
    data.update(changes)
    derive(spec, data, set(changes), now, None)
    rec = Rec(rec_id, data, {k: v for k, v in custom.items() if v is not None}, ts)
    if "add_time" in changes:
        rec.add_ts = parse_rfc3339(changes["add_time"], "add_time")
    store.insert(rec)
    _index(company, spec, rec, ts)
    _emit(company, hub, spec, "create", rec, ts, source, None)
    return rec


def update_record(company: Company, hub: WebhookHub, spec: EntitySpec, rec: Rec, body: dict[str, Any],
                  source: str) -> Rec:
    changes, custom = validate_body(company, spec, body, creating=False)
    return apply_changes(company, hub, spec, rec, changes, custom, source)


def apply_changes(company: Company, hub: WebhookHub, spec: EntitySpec, rec: Rec, changes: dict[str, Any],
                  custom: dict[str, Any], source: str) -> Rec:
    ts = company.now()
    now = rfc3339(ts)
    old_data, old_custom = rec.data, rec.custom
    data = dict(old_data)
    data.update(changes)
    derive(spec, data, set(changes), now, old_data)
    new_custom = dict(old_custom)
    for code, value in custom.items():
        if value is None:
            new_custom.pop(code, None)
        else:
            new_custom[code] = value
    changed = {k: old_data.get(k) for k, v in data.items() if k != "update_time" and old_data.get(k) != v}
    changed_custom = {k: old_custom.get(k) for k in custom if old_custom.get(k) != new_custom.get(k)}
    if not changed and not changed_custom:
        return rec  # nothing changed: no new update_time, no webhook
    data["update_time"] = now
    rec.data, rec.custom = data, new_custom
    company.stores[spec.name].touch(rec, ts)
    _index(company, spec, rec, ts)
    _emit(company, hub, spec, "change", rec, ts, source, (old_data, old_custom), changed, changed_custom)
    return rec


def delete_record(company: Company, hub: WebhookHub, spec: EntitySpec, rec: Rec, source: str) -> None:
    ts = company.now()
    old = (rec.data, rec.custom)
    data = dict(rec.data)
    data["is_deleted"] = True
    data["update_time"] = rfc3339(ts)
    rec.data = data
    rec.deleted = True
    store = company.stores[spec.name]
    store.touch(rec, ts)
    if spec.name in ("organization", "person", "deal", "product"):
        store.add_version(rec, ts, None, company.search_index_delay_s)
    _emit(company, hub, spec, "delete", rec, ts, source, old)


# -- v2 entities ------------------------------------------------------------------------------------

def _custom_filter(ctx: Ctx) -> set[str] | None:
    keys = q_list(ctx.req, "custom_fields")
    if len(keys) > 15:
        raise invalid("custom_fields: A maximum of 15 keys is allowed")
    return set(keys) if keys else None


def list_entities(ctx: Ctx, spec: EntitySpec) -> tuple[int, dict[str, Any]]:
    req, company = ctx.req, ctx.company
    limit = q_limit(req, 500)
    sort_by = q_choice(req, "sort_by", spec.sort_by, "id")
    direction = q_choice(req, "sort_direction", ("asc", "desc"), "asc")
    since = until = None
    if spec.updated_filters:
        if req.arg("updated_since"):
            since = parse_rfc3339(req.arg("updated_since"), "updated_since")
        if req.arg("updated_until"):
            until = parse_rfc3339(req.arg("updated_until"), "updated_until")
    only_ids = None
    if req.arg("ids"):
        raw_ids = q_list(req, "ids")
        if len(raw_ids) > 100:
            raise invalid("ids: A maximum of 100 ids is allowed")
        if not all(i.isdigit() for i in raw_ids):
            raise invalid("ids: Expected a comma separated list of numbers")
        only_ids = [int(i) for i in raw_ids]
    conditions: list[tuple[str, Any]] = []
    for name, kind in spec.filters.items():
        raw = req.arg(name)
        if raw is None or raw == "":
            continue
        if kind == "int":
            conditions.append((name, q_int(req, name)))
        elif kind == "bool":
            conditions.append((name, q_bool(req, name)))
        elif kind == "status":
            conditions.append((name, q_choice(req, name, ("open", "won", "lost", "deleted"), "open")))
        else:
            conditions.append((name, raw))
    only = _custom_filter(ctx)
    labels = bool(q_bool(req, "include_option_labels"))

    if conditions:
        def match(rec: Rec) -> bool:
            data = rec.data
            return all(data.get(k) == v for k, v in conditions)
    else:
        def match(rec: Rec) -> bool:
            return True

    store = company.stores[spec.name]
    recs, next_cursor = store.page(sort_by=sort_by, direction=direction, cursor=req.arg("cursor"), limit=limit,
                                   match=match, since=since, until=until, only_ids=only_ids,
                                   sort_key=SORT_KEYS.get(sort_by))
    fields = company.fields[spec.name]
    return ok([render(spec, r, fields, only, labels) for r in recs], {"next_cursor": next_cursor})


def get_entity(ctx: Ctx, spec: EntitySpec) -> tuple[int, dict[str, Any]]:
    rec = find(ctx.company, spec, path_int(ctx))
    labels = bool(q_bool(ctx.req, "include_option_labels"))
    return ok(render(spec, rec, ctx.company.fields[spec.name], _custom_filter(ctx), labels))


def add_entity(ctx: Ctx, spec: EntitySpec) -> tuple[int, dict[str, Any]]:
    rec = create_record(ctx.company, ctx.hub, spec, body_object(ctx), "api")
    return ok(render(spec, rec, ctx.company.fields[spec.name]), status=201 if spec.name == "product" else 200)


def patch_entity(ctx: Ctx, spec: EntitySpec) -> tuple[int, dict[str, Any]]:
    rec = find(ctx.company, spec, path_int(ctx))
    rec = update_record(ctx.company, ctx.hub, spec, rec, body_object(ctx), "api")
    return ok(render(spec, rec, ctx.company.fields[spec.name]))


def remove_entity(ctx: Ctx, spec: EntitySpec) -> tuple[int, dict[str, Any]]:
    rec = find(ctx.company, spec, path_int(ctx))
    delete_record(ctx.company, ctx.hub, spec, rec, "api")
    return ok({"id": rec.id})


# -- deal products ----------------------------------------------------------------------------------

DEAL_PRODUCT_PARAMS = ("product_id", "item_price", "quantity", "tax", "comments", "discount", "is_enabled",
                       "tax_method", "discount_type", "product_variation_id", "billing_frequency",
                       "billing_frequency_cycles", "billing_start_date")


def _deal_product_changes(company: Company, body: dict[str, Any], creating: bool) -> dict[str, Any]:
    from .entities import BILLING, nullable, v_bool, v_choice, v_date, v_id, v_int, v_num, v_str
    checks = {
        "product_id": v_id, "item_price": v_num, "quantity": v_num, "tax": v_num, "comments": v_str,
        "discount": v_num, "is_enabled": v_bool, "tax_method": v_choice("exclusive", "inclusive", "none"),
        "discount_type": v_choice("percentage", "amount"), "product_variation_id": nullable(v_id),
        "billing_frequency": v_choice(*BILLING), "billing_frequency_cycles": nullable(v_int),
        "billing_start_date": nullable(v_date),
    }
    changes = {}
    for key, value in body.items():
        if key not in checks:
            raise not_allowed(key)
        changes[key] = checks[key](value, key)
    if creating:
        for key in ("product_id", "item_price", "quantity"):
            if key not in changes:
                raise invalid(f"{key}: Required")
    if "product_id" in changes:
        product = company.stores["product"].recs.get(changes["product_id"])
        if product is None or product.deleted:
            raise bad_request(f"Product with id {changes['product_id']} not found")
    return changes


def _line_sum(item: dict[str, Any]) -> float:
    gross = item["item_price"] * item["quantity"]
    if item["discount_type"] == "percentage":
        gross *= 1 - item["discount"] / 100
    else:
        gross -= item["discount"]
    if item["tax_method"] == "exclusive":
        gross *= 1 + item["tax"] / 100
    return round(gross, 2)


def _recalculate_deal(ctx: Ctx, deal: Rec) -> None:
    store = ctx.company.stores["deal_product"]
    total = sum(store.recs[i].data["sum"] for i in ctx.company.deal_products.get(deal.id, [])
                if store.recs[i].data["is_enabled"])
    total = int(total) if float(total).is_integer() else round(total, 2)
    apply_changes(ctx.company, ctx.hub, ENTITIES["deal"], deal, {"value": total}, {}, "api")


def _emit_deal_product(ctx: Ctx, action: str, item: Rec, old: dict[str, Any] | None,
                       changed: dict[str, Any] | None = None) -> None:
    company = ctx.company
    if not company.webhooks:
        return
    subs = ctx.hub.matching(company, "deal_product", action)
    if subs:
        data = None if action == "delete" else dict(item.data)
        previous = old if action == "delete" else changed if action == "change" else None
        ctx.hub.emit(company, subs, action=action, entity="deal_product", entity_id=item.id, ts=company.now(),
                     change_source="api", v2=(data, previous), v1=None)


def list_deal_products(ctx: Ctx) -> tuple[int, dict[str, Any]]:
    deal = find(ctx.company, ENTITIES["deal"], path_int(ctx))
    limit = q_limit(ctx.req, 500)
    sort_by = q_choice(ctx.req, "sort_by", ("id", "add_time", "update_time", "order_nr"), "id")
    direction = q_choice(ctx.req, "sort_direction", ("asc", "desc"), "asc")
    store = ctx.company.stores["deal_product"]
    items = [store.recs[i].data for i in ctx.company.deal_products.get(deal.id, [])]
    items.sort(key=lambda d: (d[sort_by] if d[sort_by] is not None else 0, d["id"]), reverse=direction == "desc")
    page, next_cursor = offset_page(items, ctx.req.arg("cursor"), limit)
    return ok([dict(d) for d in page], {"next_cursor": next_cursor})


def add_deal_product(ctx: Ctx) -> tuple[int, dict[str, Any]]:
    company = ctx.company
    deal = find(company, ENTITIES["deal"], path_int(ctx))
    changes = _deal_product_changes(company, body_object(ctx), creating=True)
    store = company.stores["deal_product"]
    ts = company.now()
    now = rfc3339(ts)
    attachment_id = store.new_id()
    product = company.stores["product"].recs[changes["product_id"]]
    attached = company.deal_products.setdefault(deal.id, [])
    data = {"id": attachment_id, "sum": 0, "tax": 0, "deal_id": deal.id, "name": product.data["name"],
            "product_id": product.id, "product_variation_id": None, "order_nr": len(attached) + 1,
            "add_time": now, "update_time": now, "comments": "", "currency": deal.data["currency"], "discount": 0,
            "discount_type": "percentage", "quantity": 1, "item_price": 0, "tax_method": "inclusive",
            "is_enabled": True, "billing_frequency": "one-time", "billing_frequency_cycles": None,
            "billing_start_date": None}
    data.update(changes)
    data["sum"] = _line_sum(data)
    item = Rec(attachment_id, data, {}, ts)
    store.insert(item)
    attached.append(attachment_id)
    _emit_deal_product(ctx, "create", item, None)
    _recalculate_deal(ctx, deal)
    return ok(dict(data), status=201)


def _find_attachment(ctx: Ctx) -> tuple[Rec, Rec]:
    deal = find(ctx.company, ENTITIES["deal"], path_int(ctx))
    attachment_id = path_int(ctx, "product_attachment_id")
    if attachment_id not in ctx.company.deal_products.get(deal.id, []):
        raise not_found("Product attachment not found")
    return deal, ctx.company.stores["deal_product"].recs[attachment_id]


def patch_deal_product(ctx: Ctx) -> tuple[int, dict[str, Any]]:
    deal, item = _find_attachment(ctx)
    changes = _deal_product_changes(ctx.company, body_object(ctx), creating=False)
    ts = ctx.company.now()
    data = dict(item.data)
    data.update(changes)
    if "product_id" in changes:
        data["name"] = ctx.company.stores["product"].recs[changes["product_id"]].data["name"]
    data["sum"] = _line_sum(data)
    changed = {k: item.data.get(k) for k, v in data.items() if item.data.get(k) != v}
    if changed:
        data["update_time"] = rfc3339(ts)
        item.data = data
        ctx.company.stores["deal_product"].touch(item, ts)
        _emit_deal_product(ctx, "change", item, None, changed)
        _recalculate_deal(ctx, deal)
    return ok(dict(item.data))


def remove_deal_product(ctx: Ctx) -> tuple[int, dict[str, Any]]:
    deal, item = _find_attachment(ctx)
    ctx.company.deal_products[deal.id].remove(item.id)
    store = ctx.company.stores["deal_product"]
    item.deleted = True
    store.touch(item, ctx.company.now())
    _emit_deal_product(ctx, "delete", item, dict(item.data))
    _recalculate_deal(ctx, deal)
    return ok({"id": item.id})


# -- field definitions ------------------------------------------------------------------------------

FIELD_EXTRAS = ("ui_visibility", "important_fields", "required_fields")


def _field(ctx: Ctx, entity: str) -> FieldDef:
    field = ctx.company.fields[entity].by_code.get(ctx.params["field_code"])
    if field is None:
        raise not_found("Field not found")
    return field


def list_fields(ctx: Ctx, entity: str) -> tuple[int, dict[str, Any]]:
    extras = set(q_list(ctx.req, "include_fields"))
    for extra in extras:
        if extra not in FIELD_EXTRAS:
            raise invalid(f"include_fields: Invalid enum value '{extra}'")
    limit = q_limit(ctx.req, 500)
    fields = [f.as_dict(extras) for f in ctx.company.fields[entity].by_code.values()]
    page, next_cursor = offset_page(fields, ctx.req.arg("cursor"), limit)
    return ok(page, {"next_cursor": next_cursor})


def get_field(ctx: Ctx, entity: str) -> tuple[int, dict[str, Any]]:
    extras = set(q_list(ctx.req, "include_fields")) & set(FIELD_EXTRAS)
    return ok(_field(ctx, entity).as_dict(extras))


def _options(company: Company, labels: Any, where: str = "options") -> list[dict[str, Any]]:
    if not isinstance(labels, list) or not labels:
        raise invalid(f"{where}: Expected a non-empty array of {{label}} objects")
    now = rfc3339(company.now())
    out = []
    for i, option in enumerate(labels):
        if not isinstance(option, dict) or not isinstance(option.get("label"), str) or not option["label"]:
            raise invalid(f"{where}[{i}].label: Required")
        for key in option:
            if key not in ("label", "color"):
                raise not_allowed(f"{where}[{i}].{key}")
        company.option_counter += 1
        out.append({"id": company.option_counter, "label": option["label"], "color": option.get("color"),
                    "add_time": now, "update_time": now})
    return out


def create_field(company: Company, entity: str, body: dict[str, Any]) -> FieldDef:
    allowed = ("field_name", "field_type", "options") + FIELD_EXTRAS + (("description",) if entity == "deal" else ())
    for key in body:
        if key not in allowed:
            raise not_allowed(key)
    name, field_type = body.get("field_name"), body.get("field_type")
    if not isinstance(name, str) or not name.strip():
        raise invalid("field_name: Required")
    if field_type not in CREATABLE_TYPES:
        raise invalid(f"field_type: Invalid enum value. Expected one of {sorted(CREATABLE_TYPES)}, "
                      f"received {field_type!r}")
    options = None
    if field_type in OPTION_TYPES:
        if "options" not in body:
            raise invalid("options: Required for enum and set fields")
        options = _options(company, body["options"])
    elif body.get("options") is not None:
        raise invalid("options: Only enum and set fields have options")
    company.field_counter += 1
    code = custom_field_code(company.seed, entity, company.field_counter, name)
    description = body.get("description")
    if description is not None and not isinstance(description, str):
        raise invalid("description: Expected string")
    field = FieldDef(code, name, field_type, is_custom=True, options=options, add_time=rfc3339(company.now()),
                     description=description)
    for extra in FIELD_EXTRAS:
        if isinstance(body.get(extra), dict):
            setattr(field, extra, {**getattr(field, extra), **body[extra]})
    company.fields[entity].add_custom(field)
    return field


def add_field(ctx: Ctx, entity: str) -> tuple[int, dict[str, Any]]:
    field = create_field(ctx.company, entity, body_object(ctx))
    return ok(field.as_dict(set(FIELD_EXTRAS)))


def patch_field(ctx: Ctx, entity: str) -> tuple[int, dict[str, Any]]:
    field = _field(ctx, entity)
    body = body_object(ctx)
    for key in body:
        if key not in ("field_name",) + FIELD_EXTRAS + (("description",) if entity == "deal" else ()):
            raise not_allowed(key)
    if "description" in body:
        if body["description"] is not None and not isinstance(body["description"], str):
            raise invalid("description: Expected string")
        field.description = body["description"]
    if "field_name" in body:
        if not field.is_custom:
            raise bad_request("Only custom fields can be renamed")
        if not isinstance(body["field_name"], str) or not body["field_name"].strip():
            raise invalid("field_name: String must contain at least 1 character(s)")
        field.name = body["field_name"]
    for extra in FIELD_EXTRAS:
        if extra in body:
            if not isinstance(body[extra], dict):
                raise invalid(f"{extra}: Expected object")
            setattr(field, extra, {**getattr(field, extra), **body[extra]})
    field.update_time = rfc3339(ctx.company.now())
    return ok(field.as_dict(set(FIELD_EXTRAS)))


def remove_field(ctx: Ctx, entity: str) -> tuple[int, dict[str, Any]]:
    field = _field(ctx, entity)
    if not field.is_custom:
        raise bad_request("Only custom fields can be deleted")
    ctx.company.fields[entity].remove_custom(field.code)
    return ok(field.as_dict())


def add_field_options(ctx: Ctx, entity: str) -> tuple[int, dict[str, Any]]:
    field = _field(ctx, entity)
    if field.type not in OPTION_TYPES:
        raise bad_request("Only enum and set fields have options")
    field.set_options((field.options or []) + _options(ctx.company, ctx.body, "body"))
    return 200, {"success": True, "data": [dict(o) for o in field.options or []], "additional_data": None}


def patch_field_options(ctx: Ctx, entity: str) -> tuple[int, dict[str, Any]]:
    field = _field(ctx, entity)
    if field.type not in OPTION_TYPES or not isinstance(ctx.body, list):
        raise invalid("body: Expected an array of {id, label} objects")
    options = [dict(o) for o in field.options or []]
    by_id = {o["id"]: o for o in options}
    for item in ctx.body:
        if not isinstance(item, dict) or item.get("id") not in by_id:
            raise invalid(f"body: Option {item.get('id') if isinstance(item, dict) else item!r} does not exist")
        if "label" in item:
            by_id[item["id"]]["label"] = str(item["label"])
            by_id[item["id"]]["update_time"] = rfc3339(ctx.company.now())
    field.set_options(options)
    return 200, {"success": True, "data": [dict(o) for o in options], "additional_data": None}


def remove_field_options(ctx: Ctx, entity: str) -> tuple[int, dict[str, Any]]:
    field = _field(ctx, entity)
    if field.type not in OPTION_TYPES or not isinstance(ctx.body, list):
        raise invalid("body: Expected an array of {id} objects")
    drop = {item.get("id") for item in ctx.body if isinstance(item, dict)}
    removed = [dict(o) for o in field.options or [] if o["id"] in drop]
    field.set_options([o for o in field.options or [] if o["id"] not in drop])
    return 200, {"success": True, "data": removed, "additional_data": None}


# -- v1: users/me -----------------------------------------------------------------------------------

def users_me(ctx: Ctx) -> tuple[int, dict[str, Any]]:
    company = ctx.company
    created = v1_time(rfc3339(company.now() - 86_400 * 30))
    return ok({
        "id": company.user_id, "name": company.user_name, "default_currency": company.currency,
        "locale": "en_US", "lang": 1, "email": company.user_email, "phone": None, "activated": True,
        "last_login": v1_time(rfc3339(company.now())), "created": created, "modified": created,
        "has_created_company": True,
        "access": [{"app": "sales", "admin": True, "permission_set_id": "62cc4d7f-4038-4352-abf3-a8c1c822b631"},
                   {"app": "global", "admin": True, "permission_set_id": "233b7976-39bd-43a9-b305-ef3a2b0998e5"}],
        "active_flag": True, "timezone_name": "UTC", "timezone_offset": "+00:00", "role_id": 1, "icon_url": None,
        "is_you": True, "is_deleted": False, "company_id": company.id, "company_name": company.name,
        "company_domain": company.domain, "company_country": "US", "company_industry": None,
        "language": {"language_code": "en", "country_code": "US"},
    })


# -- v1: notes --------------------------------------------------------------------------------------

NOTE_LINKS = ("deal_id", "person_id", "org_id", "lead_id", "project_id", "task_id")
NOTE_FLAGS = ("pinned_to_deal_flag", "pinned_to_person_flag", "pinned_to_organization_flag",
              "pinned_to_lead_flag", "pinned_to_project_flag", "pinned_to_task_flag")
SCRIPT_RE = re.compile(r"<\s*script[^>]*>.*?<\s*/\s*script\s*>", re.I | re.S)
V1_NOTE_SPEC = EntitySpec("note", "notes", "Note", "content", params={}, has_custom=False,
                          time_keys=("add_time", "update_time"))


def v1_body(ctx: Ctx) -> dict[str, Any]:
    """v1 accepts JSON or form bodies; numbers may arrive as strings."""
    if isinstance(ctx.body, dict):
        return ctx.body
    ctype = ctx.req.headers.get("content-type", "")
    if "application/x-www-form-urlencoded" in ctype:
        return {k: v[-1] for k, v in parse_qs(ctx.req.body.decode(errors="replace"), keep_blank_values=True).items()}
    if ctx.body is None:
        return {}
    raise bad_request("Request body must be an object")


def _v1_int(value: Any, name: str) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise bad_request(f"{name} must be a number")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise bad_request(f"{name} must be a number") from None


def _v1_flag(value: Any) -> bool:
    return value in (True, 1, "1", "true")


def render_note(company: Company, rec: Rec) -> dict[str, Any]:
    data = dict(rec.data)
    org = company.stores["organization"].recs.get(data["org_id"]) if data["org_id"] else None
    person = company.stores["person"].recs.get(data["person_id"]) if data["person_id"] else None
    deal = company.stores["deal"].recs.get(data["deal_id"]) if data["deal_id"] else None
    data["organization"] = {"name": org.data["name"]} if org else None
    data["person"] = {"name": person.data["name"]} if person else None
    data["deal"] = {"title": deal.data["title"]} if deal else None
    data["user"] = {"email": company.user_email, "name": company.user_name, "icon_url": None, "is_you": True}
    return data


def _note_changes(company: Company, body: dict[str, Any], creating: bool) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    if "content" in body or creating:
        content = body.get("content")
        if not isinstance(content, str) or not content.strip():
            raise bad_request("Note content is required")
        changes["content"] = SCRIPT_RE.sub("", content)
    for key in NOTE_LINKS + ("user_id",):
        if key in body:
            changes[key] = body[key] if key == "lead_id" else _v1_int(body[key], key)
    for key in NOTE_FLAGS:
        if key in body:
            changes[key] = _v1_flag(body[key])
    if "add_time" in body:
        changes["add_time"] = str(body["add_time"])
    if creating and not any(changes.get(k) for k in NOTE_LINKS):
        raise bad_request("Note must be attached to a deal, person, organization, lead, project or task")
    for key, entity in (("deal_id", "deal"), ("person_id", "person"), ("org_id", "organization")):
        if changes.get(key):
            other = company.stores[entity].recs.get(changes[key])
            if other is None or other.deleted:
                raise bad_request(f"{ENTITIES[entity].label} not found")
    return changes


def _emit_note(ctx: Ctx, action: str, rec: Rec, old: dict[str, Any] | None, ts: float) -> None:
    company = ctx.company
    if not company.webhooks:
        return
    subs = ctx.hub.matching(company, "note", action)
    if not subs:
        return
    current = None if action == "delete" else render_note(company, rec)
    if action == "change" and old is not None:
        previous = {k: v for k, v in old.items() if rec.data.get(k) != v and k != "update_time"}
    else:
        previous = old
    ctx.hub.emit(company, subs, action=action, entity="note", entity_id=rec.id, ts=ts, change_source="api",
                 v2=(current, previous), v1=(current, old))


def list_notes(ctx: Ctx) -> tuple[int, dict[str, Any]]:
    req = ctx.req
    start = q_int(req, "start", 0)
    limit = min(max(q_int(req, "limit", 100), 1), 500)
    conditions = [(k, q_int(req, k)) for k in ("deal_id", "person_id", "org_id", "user_id") if req.arg(k)]
    if req.arg("lead_id"):
        conditions.append(("lead_id", req.arg("lead_id")))
    since = req.arg("updated_since")
    sort = (req.arg("sort") or "id ASC").split()
    sort_field = sort[0] if sort and sort[0] in ("id", "add_time", "update_time", "content") else "id"
    descending = len(sort) > 1 and sort[1].upper() == "DESC"
    store: Store = ctx.company.stores["note"]
    notes = [r for r in store.live()
             if all(r.data.get(k) == v for k, v in conditions) and (not since or r.data["update_time"] >= since)]
    if sort_field != "id" or descending:
        notes.sort(key=lambda r: (r.data[sort_field], r.id), reverse=descending)
    page = notes[start:start + limit]
    pagination: dict[str, Any] = {"start": start, "limit": limit,
                                  "more_items_in_collection": start + limit < len(notes)}
    if pagination["more_items_in_collection"]:
        pagination["next_start"] = start + limit
    return ok([render_note(ctx.company, r) for r in page], {"pagination": pagination})


def _find_note(ctx: Ctx) -> Rec:
    rec = ctx.company.stores["note"].recs.get(path_int(ctx))
    if rec is None or rec.deleted:
        raise not_found("Note not found")
    return rec


def get_note(ctx: Ctx) -> tuple[int, dict[str, Any]]:
    return ok(render_note(ctx.company, _find_note(ctx)))


def add_note(ctx: Ctx) -> tuple[int, dict[str, Any]]:
    company = ctx.company
    changes = _note_changes(company, v1_body(ctx), creating=True)
    store = company.stores["note"]
    ts = company.now()
    now = v1_time(rfc3339(ts))
    rec_id = store.new_id()
    data = {"id": rec_id, "user_id": company.user_id, "deal_id": None, "person_id": None, "org_id": None,
            "lead_id": None, "project_id": None, "task_id": None, "content": "", "add_time": now, "update_time": now,
            "active_flag": True, **{flag: False for flag in NOTE_FLAGS}, "last_update_user_id": company.user_id}
    data.update(changes)
    rec = Rec(rec_id, data, {}, ts)
    store.insert(rec)
    _emit_note(ctx, "create", rec, None, ts)
    return ok(render_note(company, rec))


def put_note(ctx: Ctx) -> tuple[int, dict[str, Any]]:
    rec = _find_note(ctx)
    changes = _note_changes(ctx.company, v1_body(ctx), creating=False)
    ts = ctx.company.now()
    old = rec.data
    data = {**old, **changes}
    if data != old:
        data["update_time"] = v1_time(rfc3339(ts))
        rec.data = data
        ctx.company.stores["note"].touch(rec, ts)
        _emit_note(ctx, "change", rec, old, ts)
    return ok(render_note(ctx.company, rec))


def remove_note(ctx: Ctx) -> tuple[int, dict[str, Any]]:
    rec = _find_note(ctx)
    ts = ctx.company.now()
    old = render_note(ctx.company, rec)
    rec.data = {**rec.data, "active_flag": False, "update_time": v1_time(rfc3339(ts))}
    rec.deleted = True
    ctx.company.stores["note"].touch(rec, ts)
    _emit_note(ctx, "delete", rec, old, ts)
    return ok(True)


# -- v1: webhooks -----------------------------------------------------------------------------------

def public_webhook(sub: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in sub.items() if not k.startswith("_")}


def list_webhooks(ctx: Ctx) -> tuple[int, dict[str, Any]]:
    return 200, {"status": "ok", "success": True,
                 "data": [public_webhook(s) for s in ctx.company.webhooks.values()]}


def _webhook_error(field: str, message: str) -> ApiError:
    return ApiError(400, {"status": "error", "success": False, "errors": {field: [message]}})


def add_webhook(ctx: Ctx) -> tuple[int, dict[str, Any]]:
    company = ctx.company
    body = v1_body(ctx)
    for key in ("subscription_url", "event_action", "event_object", "name"):
        if not body.get(key):
            raise _webhook_error(key, "required")
    url = str(body["subscription_url"])
    if not is_loopback_url(url):
        raise _webhook_error("subscription_url", "invalid or non-reachable URL")
    action = LEGACY_ACTIONS.get(body["event_action"], body["event_action"])
    if action not in EVENT_ACTIONS:
        raise _webhook_error("event_action", f"must be one of {', '.join(EVENT_ACTIONS)}")
    obj = "activity" if body["event_object"] == "activityType" else body["event_object"]
    if obj not in EVENT_OBJECTS:
        raise _webhook_error("event_object", f"must be one of {', '.join(EVENT_OBJECTS)}")
    version = str(body.get("version") or "2.0")
    if version not in ("1.0", "2.0"):
        raise _webhook_error("version", "must be 1.0 or 2.0")
    name = str(body["name"])
    if len(name) > 255:
        raise _webhook_error("name", "must be at most 255 characters")
    user_id = _v1_int(body.get("user_id"), "user_id") or company.user_id
    if sum(1 for s in company.webhooks.values() if s["user_id"] == user_id) >= MAX_WEBHOOKS_PER_USER:
        raise ApiError(422, error_body("Webhooks limit reached"))
    sub_id = company.next_webhook_id
    company.next_webhook_id += 1
    sub = {"id": sub_id, "company_id": company.id, "owner_id": company.user_id, "user_id": user_id,
           "event_action": action, "event_object": obj, "subscription_url": url, "version": version,
           "is_active": 1, "add_time": rfc3339(company.now())[:-1] + ".000Z", "remove_time": None, "type": "general",
           "http_auth_user": body.get("http_auth_user"), "http_auth_password": body.get("http_auth_password"),
           "remove_reason": None, "last_delivery_time": None, "last_http_status": None,
           "admin_id": company.user_id, "name": name}
    company.webhooks[sub_id] = sub
    return 201, {"status": "ok", "success": True, "data": public_webhook(sub)}


def remove_webhook(ctx: Ctx) -> tuple[int, dict[str, Any]]:
    sub_id = path_int(ctx)
    if ctx.company.webhooks.pop(sub_id, None) is None:
        raise ApiError(404, {"status": "error", "success": False, "errors": {"id": ["not found"]}})
    return 200, {"status": "ok", "success": True}
