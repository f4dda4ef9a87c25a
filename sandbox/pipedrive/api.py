"""The shared request plumbing (Ctx, query helpers, the write path) and the v2 entity handlers.
Each handler gets a Ctx (company lock held) and returns (status, body); see also deal_products.py,
field_defs.py and v1.py.

Writes go through `create_record` / `update_record` / `delete_record`, which the control API's
"UI" endpoints reuse with change_source "app"; both emit webhooks like real Pipedrive does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

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
)
from .errors import bad_request, invalid, not_allowed, not_found
from .fields import check_custom_value, webhook_value
from .store import Rec, decode_cursor, encode_cursor

if TYPE_CHECKING:
    from .state import Company
    from .webhooks import WebhookHub



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
    if spec.name == "deal" and source == "app":
        data["origin"] = "ManuallyCreated"
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
    rec_id = path_int(ctx)
    gone = ctx.company.stores[spec.name].recs.get(rec_id)
    if gone is not None and gone.deleted and ctx.company.deleted_patch == "200":
        # the other answer a deleted record can get: 200, unchanged, with is_deleted true
        return ok(render(spec, gone, ctx.company.fields[spec.name]))
    rec = find(ctx.company, spec, rec_id)
    rec = update_record(ctx.company, ctx.hub, spec, rec, body_object(ctx), "api")
    return ok(render(spec, rec, ctx.company.fields[spec.name]))


def remove_entity(ctx: Ctx, spec: EntitySpec) -> tuple[int, dict[str, Any]]:
    rec = find(ctx.company, spec, path_int(ctx))
    delete_record(ctx.company, ctx.hub, spec, rec, "api")
    return ok({"id": rec.id})
