"""What a run cleans up from earlier ones before reading anything new: rows left in flight by a worker
that died (its creates may have happened), transient failures to retry, links whose Pipedrive record is
gone after "Resync all", and replays of failed rows."""

from __future__ import annotations

import logging
from datetime import datetime

from django.conf import settings
from django.utils import timezone

from connectors.base import ConnectorError
from syncs.errors import RunAborted
from syncs.ledger import CREATES, Replays
from syncs.models import Flow, RecordLink, SyncRecord
from syncs.plan import Op, parent_of
from syncs.targets import SCAN_MARGIN

logger = logging.getLogger("syncs.engine")


class RecoveryMixin:
    def verify_links(self) -> int:
        """After "Resync all": find links whose Pipedrive record is gone (deleted there). Pipedrive's ids
        (one paged list, 10 tokens per 500) and our links are both walked in id order, so memory stays
        flat. Ours get their hash cleared (the re-read updates, meets the 404 and recreates); links to
        records we never created are dropped, so the record is looked for again and created."""
        op = self.root
        gone = 0
        if op.target.scannable:
            present = (item["id"] for page in op.target.pages(key=op.mapper.external_key)
                       for item in page if not item.get("is_deleted"))
            links = RecordLink.objects.filter(
                source_connection=self.flow.source, target_connection=self.flow.target, source_object=op.source_object,
            ).order_by("target_id").values_list("pk", "target_id", "created_by_us").iterator(chunk_size=2000)
            current = next(present, None)
            ours, foreign = [], []

            def flush() -> None:
                RecordLink.objects.filter(pk__in=ours).update(payload_hash="")
                RecordLink.objects.filter(pk__in=foreign).delete()
                ours.clear()
                foreign.clear()

            for pk, target_id, created_by_us in links:
                while current is not None and current < target_id:
                    current = next(present, None)
                if current != target_id:
                    gone += 1
                    (ours if created_by_us else foreign).append(pk)
                    if len(ours) + len(foreign) >= 1000:
                        flush()
            flush()
        self.flow.cursor = {k: v for k, v in self.flow.cursor.items() if k != "verify_links"}
        Flow.objects.filter(pk=self.flow.pk).update(cursor=self.flow.cursor)
        if gone:
            logger.info("flow %s: %d linked Pipedrive records are gone; they will be recreated", self.flow.pk, gone)
        return gone

    def resolve_in_flight(self) -> None:
        """Rows left in flight by a worker that died: its creates may have happened. Look in Pipedrive
        from the oldest such row and link what is there; the rest will be re-read and sent."""
        stale = SyncRecord.objects.filter(flow=self.flow, outcome=SyncRecord.Outcome.IN_FLIGHT).exclude(run=self.run)
        groups = sorted(set(stale.order_by().values_list("source_object", flat=True).distinct()))
        now = timezone.now()
        for source_object in groups:
            rows = list(stale.filter(source_object=source_object))
            if not rows:
                continue
            op = self.op_for(source_object)
            if op is not None:
                oldest = min(r.created for r in rows)
                if op.target.scannable:
                    self.reconcile_scan(op, since=oldest - SCAN_MARGIN)
                else:
                    self.relink_lost_creates(op, rows, since=oldest - SCAN_MARGIN)
            linked = set(RecordLink.objects.filter(
                source_connection=self.flow.source, target_connection=self.flow.target, source_object=source_object,
                external_id__in=[r.external_id for r in rows]).values_list("external_id", flat=True))
            for row in rows:
                row.completed = now
                if row.action == SyncRecord.Action.DELETE:
                    row.outcome, row.error_kind = SyncRecord.Outcome.FAILED, "transient"
                    row.error_message = "The worker stopped before the delete finished; it is sent again."
                elif row.external_id in linked:
                    row.outcome = SyncRecord.Outcome.RESOLVED
                    row.error_message = "The worker stopped before recording the answer; found in Pipedrive afterwards."
                else:
                    row.outcome, row.error_kind = SyncRecord.Outcome.FAILED, "transient"
                    row.error_message = "The worker stopped before the call finished; the record is sent again."
                row.save(update_fields=["completed", "outcome", "error_kind", "error_message"])

    def relink_lost_creates(self, op: Op, rows: list[SyncRecord], *, since: datetime) -> None:
        """Creates of records without an external-id field (notes, deal products) that a dead worker may
        have made: find them where they hang, and link them before anything is sent again."""
        creates = [r for r in rows if r.action in CREATES and r.payload is not None]
        if not creates:
            return
        parent_ids = {}
        if op.is_child:
            parents = dict(RecordLink.objects.filter(
                source_connection=self.flow.source, target_connection=self.flow.target,
                source_object=self.root.source_object,
                external_id__in=[parent_of(r.external_id) for r in creates]).values_list("external_id", "target_id"))
            parent_ids = {r.external_id: parents.get(parent_of(r.external_id)) for r in creates}
        found = self.find_created(op, {r.external_id: r.payload for r in creates}, since=since, parent_ids=parent_ids)
        RecordLink.objects.bulk_create([
            RecordLink(tenant_id=self.flow.tenant_id, source_connection=self.flow.source,
                       target_connection=self.flow.target, source_object=op.source_object, external_id=ext,
                       target_object=op.entity, target_id=pd_id, payload_hash="", created_by_us=True,
                       parent_external_id=parent_of(ext) if op.is_child else "",
                       parent_target_id=parent_ids.get(ext))
            for ext, pd_id in found.items()], ignore_conflicts=True)

    def retry_outstanding(self) -> None:
        """Transient failures of earlier runs are retried automatically (bounded attempts)."""
        from syncs.selectors import record_failures_outstanding

        max_attempts = getattr(settings, "SYNC_MAX_AUTO_ATTEMPTS", 5)
        rows = list(record_failures_outstanding(flow=self.flow).filter(
            error_kind="transient", attempt__lt=max_attempts).exclude(run=self.run)[:5000])
        if rows:
            self.replay(rows, bounded=True)

    def replay(self, rows: list[SyncRecord], *, bounded: bool = False) -> None:
        """Send the current source record again (or the stored one when the source lost it), 100 at a
        time. A child's failure replays its parent's plan: the parent record holds the children. A
        `bounded` replay (a scheduled run's retries) stops when the run's time slice is over; the rest
        stay outstanding for the next run."""
        root = self.root
        replay_of: Replays = {}
        parents: dict[str, SyncRecord] = {}
        for row in rows:
            replay_of.setdefault((row.source_object, row.external_id), row)
            parent_key = row.external_id if row.source_object == root.source_object else parent_of(row.external_id)
            parents.setdefault(parent_key, row)
        keys = list(parents)
        for start in range(0, len(keys), 100):
            if bounded and start and self.slice_over():
                return
            records = []
            for parent_key in keys[start:start + 100]:
                row, current = parents[parent_key], None
                try:
                    current = self.erp.read_one(self.kind.source_object, parent_key)
                except ConnectorError as exc:
                    if exc.auth:
                        raise RunAborted(exc, self.flow.source) from exc
                if current is None and row.source_object == root.source_object:
                    current = row.source_data
                records.append(current or {root.key_field: parent_key})
            self.process(records, replay_of=replay_of)
