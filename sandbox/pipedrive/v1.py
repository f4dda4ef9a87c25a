"""The v1 endpoints that have no v2 equivalent: users/me, notes and webhooks (wire doc §0, §5.1).
v1 bodies may be JSON or form-encoded; times are `YYYY-MM-DD HH:MM:SS`; notes page by start/limit."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from .api import Ctx, ok, path_int, q_int
from .entities import ENTITIES, EntitySpec, rfc3339, v1_time
from .errors import ApiError, bad_request, error_body, not_found
from .store import Rec, Store
from .webhooks import EVENT_ACTIONS, EVENT_OBJECTS, LEGACY_ACTIONS, is_loopback_url

if TYPE_CHECKING:
    from .state import Company

MAX_WEBHOOKS_PER_USER = 40


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
           "admin_id": company.user_id, "name": name, "_created": company.now()}
    company.webhooks[sub_id] = sub
    return 201, {"status": "ok", "success": True, "data": public_webhook(sub)}


def remove_webhook(ctx: Ctx) -> tuple[int, dict[str, Any]]:
    sub_id = path_int(ctx)
    if ctx.company.webhooks.pop(sub_id, None) is None:
        raise ApiError(404, {"status": "error", "success": False, "errors": {"id": ["not found"]}})
    return 200, {"status": "ok", "success": True}
