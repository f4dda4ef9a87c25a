"""Children kept in step with their parent: each collection of a page's records (contacts → persons,
lines → deal products) is added, changed and — for what we created — removed, after the parents' calls
have settled, since children carry the parent's Pipedrive id."""

from __future__ import annotations

from typing import Any

from connectors.base import ConnectorError
from syncs.ledger import Replays, Work
from syncs.mapping import MappingError
from syncs.models import RecordLink, SyncRecord
from syncs.plan import Op, body_build, child_external_id, children_of


class ChildrenMixin:
    def children_step(self, records: list[dict[str, Any]], *, replay_of: Replays | None = None) -> None:
        """Each children collection of the page's records whose parent is in Pipedrive: adds, changes
        and removals, after the parents' calls are settled (children carry the parent's id)."""
        _, children = self.ops
        if not children or self.halted or self.stop_reason:
            return
        by_key = {}
        for record in records:
            record = self.derived(record)
            key = str(record.get(self.root.key_field) or "").strip()
            if key:
                by_key[key] = record
        parent_links = self.ledger.links_for(self.root, by_key)
        for op in children:
            work = self.prepare_children(op, by_key, parent_links, replay_of=replay_of)
            if work:
                self.calls(work)
                self.settle(work)

    def prepare_children(self, op: Op, records: dict[str, dict], parent_links: dict[str, RecordLink], *,
                         replay_of: Replays | None) -> list[Work]:
        items: dict[str, tuple[dict, dict]] = {}
        parents: dict[str, tuple[str, int]] = {}
        present: dict[str, set[str]] = {}
        for parent_key, record in records.items():
            parent = parent_links.get(parent_key)
            if parent is None:
                continue  # the parent failed or was held back: its children wait for it
            try:
                kids = children_of(op, record)
            except ConnectorError as exc:
                self.ledger.fail_unmapped(op, record, child_external_id(parent_key, "*"), exc)
                continue
            if kids is None:
                continue
            present[parent_key] = set()
            for kid in kids:
                child_key = str(kid.get(op.key_field) if kid.get(op.key_field) is not None else "").strip()
                if not child_key:
                    self.ledger.fail_unmapped(op, kid, child_external_id(parent_key, "?"),
                                              MappingError(f"A {op.name} entry has no {op.key_field}."))
                    continue
                external_id = child_external_id(parent_key, child_key)
                present[parent_key].add(external_id)
                try:
                    items[external_id] = (kid, body_build(op, kid, external_id, parent_id=parent.target_id))
                except ConnectorError as exc:
                    self.ledger.fail_unmapped(op, kid, external_id, exc,
                                              replay_of=(replay_of or {}).get((op.source_object, external_id)))
                    continue
                parents[external_id] = (parent_key, parent.target_id)
        work = self.prepare_op(op, items, replay_of=replay_of, parents=parents)
        if op.remove_missing and present:
            removals = []
            for parent_key, links in self.ledger.child_links_for(op, present).items():
                for link in links:
                    if link.external_id in present[parent_key]:
                        continue
                    if not link.created_by_us:  # not ours to delete: forget it
                        RecordLink.objects.filter(pk=link.pk).delete()
                        continue
                    removals.append(Work(op, link.external_id, {}, "", {}, link, SyncRecord.Action.DELETE,
                                         parent_key=parent_key, parent_id=link.parent_target_id))
            self.ledger.in_flight(removals)
            work += removals
        return work
