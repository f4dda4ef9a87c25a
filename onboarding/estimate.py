"""Step 6: what a flow's first sync will cost, before it is enabled.

"The first sync reads about N records and costs about T tokens = P % of today's budget; about H hours
at your plan's rate limit." N is the ERP's count where its client can count (`count(obj)`), otherwise
the first page of a read (a sample). Costs are Pipedrive's `x-token-cost` per operation, from the
client's cost table (`operation_cost`). A first sync creates every record; children (contacts, order
lines) are averaged over the sample."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from connectors.base import ConnectorError
from connectors.pipedrive.client import PAGE_LIMIT, operation_cost
from connectors.registry import connector_for
from syncs.kinds import flow_kind_get
from syncs.mapping import CUSTOM_PREFIX, ENTITIES_WITHOUT_CUSTOM_FIELDS
from syncs.models import Flow

SAMPLE_SIZE = 50
# Calls a write-back makes for one won deal (read its products, write the ERP document's number back).
WRITEBACK_CALLS_PER_DEAL = (("GET", "/api/v2/deals/1/products"), ("PATCH", "/api/v2/deals/1"))


def create_cost(entity: str) -> int:
    """Tokens one create of `entity` costs (notes are v1, deal products live under their deal)."""
    if entity == "notes":
        return operation_cost("POST", "/v1/notes")[0]
    if entity == "deal_products":
        return operation_cost("POST", "/api/v2/deals/1/products")[0]
    return operation_cost("POST", f"/api/v2/{entity}")[0]


def _skipped(child: dict[str, Any], skip_when: tuple) -> bool:
    """A child the plan leaves out (an inactive contact), as syncs.plan.children_of does."""
    return any(child.get(field) == value for field, value in skip_when)


def _list_cost(entity: str) -> int:
    return operation_cost("GET", "/v1/notes" if entity == "notes" else f"/api/v2/{entity}")[0]


def _count(erp: Any, kind: Any) -> tuple[int, bool, list[dict[str, Any]]]:
    """(records, counted by the ERP, a sample of records)."""
    pages = erp.changed_since(kind.source_object, {})
    try:
        page = next(pages, None)
    finally:
        pages.close()
    sample = (page.records if page else [])[:SAMPLE_SIZE]
    counter = getattr(erp, "count", None)
    if counter is not None:
        total = counter(kind.source_object)
        if total is not None:
            return int(total), True, sample
    if page is not None and page.remaining is not None:
        return int(page.remaining), True, sample
    return len(page.records) if page else 0, False, sample


def flow_estimate(*, flow: Flow) -> dict[str, Any]:
    """One flow's first sync: records, calls, tokens (no Pipedrive call, one or two ERP reads)."""
    kind = flow_kind_get(system=flow.source.system, name=flow.kind)
    out: dict[str, Any] = {
        "flow_id": flow.pk,
        "flow": flow.name,
        "writeback": kind.direction != "to_pipedrive",
    }
    if out["writeback"]:
        per_deal = sum(operation_cost(m, p)[0] for m, p in WRITEBACK_CALLS_PER_DEAL)
        out.update(records=0, counted=True, calls=1, tokens=_list_cost("deals"), per_deal_tokens=per_deal)
        return out
    erp = connector_for(flow.source)
    try:
        records, counted, sample = _count(erp, kind)
    finally:
        getattr(erp, "close", lambda: None)()
    calls = tokens = 0
    for child in kind.children:  # the sample's average number of children per record
        sizes = [
            len([c for c in r[child.collection] if isinstance(c, dict) and not _skipped(c, child.skip_when)])
            for r in sample
            if isinstance(r.get(child.collection), list)
        ]
        per_record = sum(sizes) / len(sizes) if sizes else 0.0
        calls += math.ceil(records * per_record)
        tokens += math.ceil(records * per_record) * create_cost(child.target_entity)
    calls += records
    tokens += records * create_cost(kind.target_entity)
    # One paged list scan of what Pipedrive holds already (adopt, never duplicate); assume it is empty.
    calls += 1
    tokens += _list_cost(kind.target_entity)
    if kind.target_entity not in ENTITIES_WITHOUT_CUSTOM_FIELDS:
        customs = {m.target for m in flow.mappings.all() if m.target.startswith(CUSTOM_PREFIX)}
        calls += 1 + len(customs) + 1  # the field list, then each missing field created at most once
        tokens += (
            _list_cost("organizationFields")
            + (len(customs) + 1) * operation_cost("POST", "/api/v2/organizationFields")[0]
        )
    out.update(
        records=records,
        counted=counted,
        calls=calls,
        tokens=tokens,
        list_pages=max(1, math.ceil(records / PAGE_LIMIT)),
    )
    return out


def _hours_text(hours: float) -> str:
    if hours < 1:
        return f"{max(1, round(hours * 60))} min"
    return f"{hours:.1f} hours"


def flows_estimate(*, flows: list[Flow]) -> dict[str, Any]:
    """Every flow's estimate and the total against today's budget and the plan's burst rate."""
    items, errors = [], []
    for flow in flows:
        try:
            items.append(flow_estimate(flow=flow))
        except ConnectorError as exc:
            errors.append({"flow_id": flow.pk, "flow": flow.name, "error": exc.message})
    records = sum(i["records"] for i in items)
    tokens = sum(i["tokens"] for i in items)
    calls = sum(i["calls"] for i in items)
    result: dict[str, Any] = {
        "flows": items,
        "errors": errors,
        "records": records,
        "tokens": tokens,
        "calls": calls,
        "counted": all(i["counted"] for i in items),
    }
    if not flows:
        return result
    pipedrive = connector_for(flows[0].target)
    remaining, limit, resets_at = pipedrive.budget()
    config = pipedrive.limiter.config
    per_second = config.burst_limit / config.span
    usable = max(1, limit - config.reserve_tokens(limit))
    hours = calls / per_second / 3600
    result.update(
        budget_remaining=remaining,
        budget_limit=limit,
        budget_resets_at=resets_at.isoformat(),
        percent_of_budget=round(100 * tokens / limit, 1) if limit else None,
        burst_limit=config.burst_limit,
        burst_window_s=config.window_s,
        plan=pipedrive.plan,
        hours=round(hours, 2),
        days=max(1, math.ceil(tokens / usable)),
        fits_today=tokens <= max(0, remaining - config.reserve_tokens(limit)),
    )
    result["summary"] = _summary(result, resets_at)
    return result


def _summary(r: dict[str, Any], resets_at: datetime) -> str:
    source = "" if r["counted"] else " (from a sample: the ERP does not say how many it holds)"
    text = (
        f"The first sync reads about {r['records']:,} records{source} and costs about {r['tokens']:,} tokens "
        f"= {r['percent_of_budget']} % of today's budget ({r['budget_limit']:,} tokens); about "
        f"{_hours_text(r['hours'])} at your plan's rate limit ({r['burst_limit']} requests per "
        f"{r['burst_window_s']:g} s)."
    )
    if not r["fits_today"]:
        text += (
            f" That is more than today's remaining {r['budget_remaining']:,} tokens: the sync pauses at the "
            f"reserve and carries on after the reset at {resets_at:%H:%M} UTC (about {r['days']} days)."
        )
    return text
