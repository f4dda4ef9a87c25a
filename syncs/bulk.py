"""The cheapest sequence of Pipedrive calls for a batch: where a target has bulk forms (deal products:
addManyDealProducts 25 tokens for up to 100 lines against addDealProduct 5 each; deleteManyDealProducts
15 against deleteDealProduct 3), the adds and deletes of one parent go as bulk calls whenever that costs
fewer tokens than singles (a tie goes to the bulk call: fewer round trips for the same tokens).

Each Work keeps its own audit row and link, so a bulk call is only a different way to send them: a lost
bulk-add answer marks every line ambiguous, and the engine looks for them (find_created) before adding
any again, exactly as for single adds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from connectors.base import ConnectorError
from syncs.models import SyncRecord

if TYPE_CHECKING:
    from syncs.ledger import Work
    from syncs.targets import BulkCosts


def bulk_size(n: int, *, single: int, bulk: int, bulk_max: int) -> list[int]:
    """How to send `n` like operations: sizes of bulk calls (each > 1); the rest go one by one."""
    sizes = []
    while n > 0:
        take = min(n, bulk_max)
        if take < 2 or bulk > single * take:
            break
        sizes.append(take)
        n -= take
    return sizes


def units_plan(work: list[Work]) -> list[list[Work]]:
    """The batch as units of calls: a one-element unit is a single call, a longer one a bulk call (all
    adds, or all deletes, of one parent). Order kept: deletes, updates and adds of a parent are
    independent attachments, so grouping them never changes the end state."""
    units: list[list[Work]] = []
    groups: dict[tuple[int, int, str], list[Work]] = {}
    for w in work:
        costs: BulkCosts | None = getattr(w.op.target, "bulk_costs", None)
        kind = {SyncRecord.Action.CREATE: "add", SyncRecord.Action.DELETE: "delete"}.get(w.action)
        if costs is None or kind is None or not w.parent_id:
            units.append([w])
            continue
        groups.setdefault((id(w.op), int(w.parent_id), kind), []).append(w)
    for (_, _, kind), members in groups.items():
        costs = members[0].op.target.bulk_costs
        single, bulk = (
            (costs.single_add, costs.bulk_add) if kind == "add" else (costs.single_delete, costs.bulk_delete)
        )
        start = 0
        for size in bulk_size(len(members), single=single, bulk=bulk, bulk_max=costs.bulk_max):
            units.append(members[start : start + size])
            start += size
        units += [[w] for w in members[start:]]
    return units


def bulk_call(unit: list[Work]) -> None:
    """One bulk call for a unit of adds or deletes of one parent; results land on each Work."""
    first = unit[0]
    target, parent_id = first.op.target, int(first.parent_id)
    if first.action == SyncRecord.Action.DELETE:
        target.delete_many([w.link.target_id for w in unit], parent_id=parent_id)  # already gone is fine
        for w in unit:
            w.result_id = w.link.target_id
        return
    ids = target.create_many([w.body for w in unit], parent_id=parent_id)
    if len(ids) != len(unit):
        raise_mismatch(len(unit), len(ids))
    for w, result_id in zip(unit, ids, strict=True):
        w.result_id = result_id


def raise_mismatch(sent: int, got: int) -> None:
    error = ConnectorError(
        f"Pipedrive answered a bulk add of {sent} lines with {got}; the lines are looked "
        "for before anything is added again.",
        permanent=False,
    )
    error.ambiguous = True  # some may exist: find_created settles which
    raise error
