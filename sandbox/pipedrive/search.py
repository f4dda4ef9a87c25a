"""Search (wire doc §2): `/{entity}/search`, `/itemSearch` and `/itemSearch/field`.

Entity searches and itemSearch match case-insensitively (`exact_match`: the whole value, otherwise
any part of it); itemSearch/field is case sensitive with match exact|beginning|middle. Results come
from the search index, which lags writes by the company's `search_index_delay_s`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .api import Ctx, offset_page, q_limit
from .entities import ENTITIES, EntitySpec
from .errors import invalid
from .store import Store

if TYPE_CHECKING:
    from .state import Company

STAGE_NAMES = {1: "Qualified", 2: "Contact Made", 3: "Demo Scheduled", 4: "Proposal Made", 5: "Negotiations Started"}
ITEM_TYPES = ("deal", "person", "organization", "product", "lead", "file", "mail_attachment", "project")
ITEM_FIELDS = ("address", "code", "custom_fields", "email", "name", "notes", "phone", "title", "description")


def _name_of(company: Company, entity: str, rec_id: int | None) -> dict[str, Any] | None:
    if not rec_id:
        return None
    rec = company.stores[entity].recs.get(rec_id)
    if rec is None:
        return None
    return {"id": rec_id, "name": rec.data.get("name")}


def search_item(company: Company, spec: EntitySpec, data: dict[str, Any]) -> dict[str, Any]:
    """The `item` of a search result, from the record data the index holds."""
    owner = {"id": data["owner_id"]}
    if spec.name == "organization":
        address = data.get("address") or {}
        return {"id": data["id"], "type": "organization", "name": data["name"], "address": address.get("value"),
                "visible_to": data["visible_to"], "owner": owner, "custom_fields": [], "notes": []}
    if spec.name == "person":
        return {"id": data["id"], "type": "person", "name": data["name"],
                "phones": [p["value"] for p in data["phones"]], "emails": [e["value"] for e in data["emails"]],
                "visible_to": data["visible_to"], "owner": owner,
                "organization": _name_of(company, "organization", data.get("org_id")),
                "custom_fields": [], "notes": []}
    if spec.name == "deal":
        stage_id = data["stage_id"]
        organization = _name_of(company, "organization", data.get("org_id"))
        if organization is not None:
            org = company.stores["organization"].recs[organization["id"]]
            organization["address"] = (org.data.get("address") or {}).get("value")
        return {"id": data["id"], "type": "deal", "title": data["title"], "value": data["value"],
                "currency": data["currency"], "status": data["status"], "visible_to": data["visible_to"],
                "owner": owner, "stage": {"id": stage_id, "name": STAGE_NAMES.get(stage_id, f"Stage {stage_id}")},
                "person": _name_of(company, "person", data.get("person_id")), "organization": organization,
                "custom_fields": [], "notes": [], "is_archived": data["is_archived"]}
    return {"id": data["id"], "type": "product", "name": data["name"], "code": data.get("code"),
            "visible_to": data["visible_to"], "owner": owner, "custom_fields": []}


def _term(ctx: Ctx, exact: bool) -> str:
    term = ctx.req.arg("term")
    if term is None or term == "":
        raise invalid("term: Required")
    if len(term) < (1 if exact else 2):
        raise invalid("term: String must contain at least 2 character(s)")
    return term


def _groups(ctx: Ctx, allowed: tuple[str, ...]) -> set[str] | None:
    raw = ctx.req.arg("fields")
    if not raw:
        return None
    groups = {part.strip() for part in raw.split(",") if part.strip()}
    for group in groups:
        if group not in allowed:
            raise invalid(f"fields: Invalid enum value '{group}'. Expected one of {', '.join(allowed)}")
    return groups


def _bool(ctx: Ctx, name: str) -> bool:
    raw = ctx.req.arg(name)
    if raw in (None, "", "false", "0"):
        return False
    if raw in ("true", "1"):
        return True
    raise invalid(f"{name}: Expected boolean, received string")


def run_search(company: Company, spec: EntitySpec, term: str, groups: set[str] | None,
               exact: bool) -> list[tuple[float, int, dict[str, Any]]]:
    """(score, id, item) for every visible record matching `term`, best first."""
    store: Store = company.stores[spec.name]
    now, delay = company.now(), company.search_index_delay_s
    needle = term.lower()
    ids = store.candidates(term) if exact else store.ids
    results = []
    for rec_id in ids:
        rec = store.recs[rec_id]
        version = store.visible(rec, now, delay)
        if version is None:
            continue
        best, custom_hits = 0.0, []
        for group, _, text in version[1] or ():
            if groups is not None and group not in groups:
                continue
            low = text.lower()
            if low == needle:
                score = 1.0
            elif exact:
                continue
            elif low.startswith(needle):
                score = 0.7
            elif needle in low:
                score = 0.4
            else:
                continue
            best = max(best, score)
            if group == "custom_fields":
                custom_hits.append(text)
        if best:
            item = search_item(company, spec, version[2] or {})
            item["custom_fields"] = custom_hits
            results.append((best, rec_id, item))
    results.sort(key=lambda r: (-r[0], r[1]))
    return results


def _paged(ctx: Ctx, results: list[Any], maximum: int) -> tuple[list[Any], str | None]:
    return offset_page(results, ctx.req.arg("cursor"), q_limit(ctx.req, maximum))


def search_entity(ctx: Ctx, spec: EntitySpec) -> tuple[int, dict[str, Any]]:
    exact = _bool(ctx, "exact_match")
    term = _term(ctx, exact)
    groups = _groups(ctx, spec.search_fields)
    results = run_search(ctx.company, spec, term, groups, exact)
    org_filter = ctx.req.arg("organization_id")
    if org_filter and spec.name in ("person", "deal"):
        results = [r for r in results if (r[2].get("organization") or {}).get("id") == int(org_filter)]
    person_filter = ctx.req.arg("person_id")
    if person_filter and spec.name == "deal":
        results = [r for r in results if (r[2].get("person") or {}).get("id") == int(person_filter)]
    status = ctx.req.arg("status")
    if status and spec.name == "deal":
        results = [r for r in results if r[2]["status"] == status]
    page, next_cursor = _paged(ctx, results, 500)
    items = [{"result_score": score, "item": item} for score, _, item in page]
    return 200, {"success": True, "data": {"items": items}, "additional_data": {"next_cursor": next_cursor}}


def item_search(ctx: Ctx) -> tuple[int, dict[str, Any]]:
    exact = _bool(ctx, "exact_match")
    term = _term(ctx, exact)
    groups = _groups(ctx, ITEM_FIELDS)
    types = [t.strip() for t in (ctx.req.arg("item_types") or "").split(",") if t.strip()] or list(ITEM_TYPES)
    for item_type in types:
        if item_type not in ITEM_TYPES:
            raise invalid(f"item_types: Invalid enum value '{item_type}'")
    results = []
    for item_type in types:
        if item_type in ENTITIES:
            results.extend(run_search(ctx.company, ENTITIES[item_type], term, groups, exact))
    results.sort(key=lambda r: (-r[0], r[2]["type"], r[1]))
    page, next_cursor = _paged(ctx, results, 100)
    items = [{"result_score": score, "item": item} for score, _, item in page]
    return 200, {"success": True, "data": {"items": items, "related_items": []},
                 "additional_data": {"next_cursor": next_cursor}}


def field_search(ctx: Ctx) -> tuple[int, dict[str, Any]]:
    req, company = ctx.req, ctx.company
    match = req.arg("match") or "exact"
    if match not in ("exact", "beginning", "middle"):
        raise invalid(f"match: Invalid enum value '{match}'")
    term = _term(ctx, match == "exact")
    entity_type = req.arg("entity_type")
    if entity_type not in ("deal", "lead", "person", "organization", "product", "project"):
        raise invalid("entity_type: Required, one of deal, lead, person, organization, product, project")
    field = req.arg("field")
    if not field:
        raise invalid("field: Required")
    if entity_type not in ENTITIES:
        page, next_cursor = _paged(ctx, [], 500)
        return 200, {"success": True, "data": page, "additional_data": {"next_cursor": next_cursor}}
    if field not in company.fields[entity_type].by_code and field not in ("email", "phone"):
        raise invalid(f"field: Field '{field}' does not exist for {entity_type}")
    store: Store = company.stores[entity_type]
    now, delay = company.now(), company.search_index_delay_s
    ids = store.candidates(term) if match == "exact" else store.ids
    found = []
    for rec_id in ids:
        rec = store.recs[rec_id]
        version = store.visible(rec, now, delay)
        if version is None:
            continue
        for _, code, text in version[1] or ():
            if code != field:
                continue
            if (text == term if match == "exact" else text.startswith(term) if match == "beginning"
                    else term in text):
                data = version[2] or {}
                found.append({"id": rec_id, "name": data.get("name", data.get("title"))})
                break
    page, next_cursor = _paged(ctx, found, 500)
    return 200, {"success": True, "data": page, "additional_data": {"next_cursor": next_cursor}}
