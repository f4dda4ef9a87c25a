"""Deal products (line items): `/api/v2/deals/{id}/products[/{product_attachment_id}]`, and the bulk
forms `POST /deals/{id}/products/bulk` (addManyDealProducts, up to 100 lines, all or none) and
`DELETE /deals/{id}/products?ids=` (deleteManyDealProducts, up to 100 ids). Adding, changing or
removing lines recomputes the deal's value from its enabled lines, as Pipedrive does."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .api import Ctx, apply_changes, body_object, find, offset_page, ok, path_int, q_choice, q_limit
from .entities import (
    BILLING,
    ENTITIES,
    nullable,
    rfc3339,
    v_bool,
    v_choice,
    v_date,
    v_id,
    v_int,
    v_num,
    v_str,
)
from .errors import bad_request, invalid, not_allowed, not_found
from .store import Rec

if TYPE_CHECKING:
    from .state import Company


DEAL_PRODUCT_PARAMS = ("product_id", "item_price", "quantity", "tax", "comments", "discount", "is_enabled",
                       "tax_method", "discount_type", "product_variation_id", "billing_frequency",
                       "billing_frequency_cycles", "billing_start_date")


def _deal_product_changes(company: Company, body: dict[str, Any], creating: bool) -> dict[str, Any]:
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


BULK_MAX = 100  # both bulk operations: maxItems 100 (addManyDealProducts) and "Maximum 100 IDs"


def add_deal_product(ctx: Ctx) -> tuple[int, dict[str, Any]]:
    deal = find(ctx.company, ENTITIES["deal"], path_int(ctx))
    changes = _deal_product_changes(ctx.company, body_object(ctx), creating=True)
    data = _attach(ctx, deal, changes)
    _recalculate_deal(ctx, deal)
    return ok(data, status=201)


def add_many_deal_products(ctx: Ctx) -> tuple[int, dict[str, Any]]:
    """All lines are checked before any is attached: one bad line refuses the whole request."""
    deal = find(ctx.company, ENTITIES["deal"], path_int(ctx))
    body = body_object(ctx)
    for key in body:
        if key != "data":
            raise not_allowed(key)
    items = body.get("data")
    if not isinstance(items, list):
        raise invalid("data: Required" if items is None else "data: Expected array")
    if not items:
        raise invalid("data: Array must contain at least 1 element(s)")
    if len(items) > BULK_MAX:
        raise invalid(f"data: Array must contain at most {BULK_MAX} element(s)")
    checked = []
    for n, item in enumerate(items):
        if not isinstance(item, dict):
            raise invalid(f"data.{n}: Expected object")
        checked.append(_deal_product_changes(ctx.company, item, creating=True))
    created = [_attach(ctx, deal, changes) for changes in checked]
    _recalculate_deal(ctx, deal)
    return ok(created, status=201)


def delete_many_deal_products(ctx: Ctx) -> tuple[int, dict[str, Any]]:
    """`ids` names attachments of this deal (others are ignored); without it, the first 100 go."""
    deal = find(ctx.company, ENTITIES["deal"], path_int(ctx))
    attached = ctx.company.deal_products.get(deal.id, [])
    raw = ctx.req.arg("ids")
    if raw is None or raw == "":
        wanted = list(attached[:BULK_MAX])
    else:
        parts = [p.strip() for p in str(raw).split(",")]
        if not all(p.isdigit() for p in parts):
            raise invalid("ids: Expected a comma-separated list of integers")
        if len(parts) > BULK_MAX:
            raise invalid(f"ids: Maximum {BULK_MAX} IDs allowed")
        wanted = [int(p) for p in parts if int(p) in attached]
    store = ctx.company.stores["deal_product"]
    deleted = []
    for attachment_id in dict.fromkeys(wanted):
        item = store.recs[attachment_id]
        attached.remove(attachment_id)
        item.deleted = True
        store.touch(item, ctx.company.now())
        _emit_deal_product(ctx, "delete", item, dict(item.data))
        deleted.append(attachment_id)
    if deleted:
        _recalculate_deal(ctx, deal)
    return ok({"ids": deleted}, {"more_items_in_collection": bool(attached) and raw in (None, "")})


def _attach(ctx: Ctx, deal: Rec, changes: dict[str, Any]) -> dict[str, Any]:
    company = ctx.company
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
    return dict(data)


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
