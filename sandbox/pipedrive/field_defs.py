"""Field definitions: `/api/v2/{entity}Fields[/{field_code}[/options]]` (wire doc §1.4)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .api import Ctx, body_object, offset_page, ok, q_limit, q_list
from .entities import rfc3339
from .errors import bad_request, invalid, not_allowed, not_found
from .fields import CREATABLE_TYPES, OPTION_TYPES, FieldDef, custom_field_code

if TYPE_CHECKING:
    from .state import Company


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
