"""One run of one ERP → Pipedrive flow, with the guarantees of design.md "The sync engine".

Follow one record: the ERP page is read (`pipeline`); the record is mapped into its plan's first
operation (`plan.py`: body, references to other flows' links, hash); an unchanged hash costs nothing;
the audit rows of what needs a call are written in flight (`ledger.py`) before any call; creates are
preceded by one reconcile scan per run (adopting records that already carry the external id — a paged
list costs 10 tokens per 500 records where an exact search costs 20 per record and lags behind
writes); the calls go out (`targets.py`: create, update, recreate when deleted in Pipedrive, delete);
links and audit completion are committed together, then the record's children (contacts → persons,
lines → deal products) go through the same steps, and only then the page's cursor. Pages are
pipelined: one page's calls run while the next page is read and prepared.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

from django.conf import settings
from django.db import connections as db_connections
from django.utils import timezone

from connectors.base import BudgetExhausted, ConnectorError, FlowKind
from connectors.registry import connector_for
from syncs.kinds import flow_kind_get
from syncs.ledger import CREATES, Counters, Ledger, Work
from syncs.mapping import MappingError, payload_hash
from syncs.models import Flow, RecordLink, SyncRecord, SyncRun
from syncs.plan import Op, body_build, child_external_id, children_of, ops_build, parent_of, references_fill
from syncs.targets import Gone

logger = logging.getLogger(__name__)

SCAN_MARGIN = timedelta(minutes=5)  # clock skew between us and Pipedrive's update_time
PARALLEL_ABOVE_MS = 5.0  # mean call time above which a run spreads its calls over threads
Replays = dict[tuple[str, str], SyncRecord]  # (source_object, external_id) → the failed row replayed


class RunPaused(Exception):
    def __init__(self, resets_at: datetime, message: str):
        super().__init__(message)
        self.resets_at = resets_at


class RunAborted(Exception):
    """The whole run cannot go on (credentials rejected, source unreachable after retries)."""

    def __init__(self, error: ConnectorError, connection=None):
        super().__init__(error.message)
        self.error = error
        self.connection = connection


def not_sent(reason: str = "") -> ConnectorError:
    """A record held back (budget pause, run stopping): its page is read again later."""
    error = ConnectorError(reason or "Not sent: the Pipedrive daily budget reserve was reached; the flow "
                                     "resumes after the budget resets.")
    error.not_sent = True
    return error


class FlowEngine:
    def __init__(self, *, flow: Flow, run: SyncRun, progress: Callable[[int], None] | None = None):
        self.flow = flow
        self.run = run
        self.progress = progress
        self.kind: FlowKind = flow_kind_get(system=flow.source.system, name=flow.kind)
        self.entity = self.kind.target_entity
        self.erp = connector_for(flow.source)
        self.pipedrive = connector_for(flow.target)
        self.counts = Counters()
        self.ledger = Ledger(flow=flow, run=run, counts=self.counts)
        self.scanned: set[str] = set()  # ops whose reconcile scan ran this run
        self.halted: list[BudgetExhausted] = []  # set once the budget reserve is reached
        self.stop_reason = ""  # set when the run ends early for another reason
        self.parallel: bool | None = None  # decided by the first batch's call latency
        self.first_batch_call_ms: float | None = None
        self.first_batch_call_ms: float | None = None
        self.expected: int | None = None  # records this run will read, when the ERP says
        self._ops: tuple[Op, list[Op]] | None = None
        self._calls_before = self._calls()

    # --- collaborators -------------------------------------------------------------------------
    def _calls(self) -> tuple[int, int]:
        stats = getattr(self.pipedrive, "stats", None)
        return (stats.get("calls", 0), stats.get("tokens", 0)) if stats else (0, 0)

    @property
    def ops(self) -> tuple[Op, list[Op]]:
        if self._ops is None:
            from connectors.pipedrive.fields import FieldResolver

            resolver = FieldResolver(self.pipedrive, self.pipedrive.company_key)
            self._ops = ops_build(flow=self.flow, kind=self.kind, pipedrive=self.pipedrive, resolver=resolver)
        return self._ops

    @property
    def root(self) -> Op:
        return self.ops[0]

    @property
    def mapper(self):
        return self.root.mapper

    def op_for(self, source_object: str) -> Op | None:
        root, children = self.ops
        return next((op for op in (root, *children) if op.source_object == source_object), None)

    # --- the run -------------------------------------------------------------------------------
    def execute(self) -> SyncRun:
        try:
            self.ops  # noqa: B018 - resolve field keys up front: a bad mapping fails the run, not each record
            self.resolve_in_flight()
            if self.flow.cursor.get("verify_links"):
                self.verify_links()
            self.retry_outstanding()
            self.pipeline()
            self.finish(SyncRun.Status.PARTIAL if self.counts.failed else SyncRun.Status.SUCCEEDED)
            for conn in (self.flow.source, self.flow.target):  # both answered: clear an earlier outage
                type(conn).objects.filter(pk=conn.pk, status__in=[conn.Status.NEW, conn.Status.FAILING]).update(
                    status=conn.Status.OK, status_message="")
        except (RunPaused, BudgetExhausted) as pause:
            Flow.objects.filter(pk=self.flow.pk).update(paused_until=pause.resets_at, pause_reason=str(pause))
            self.finish(SyncRun.Status.PAUSED, error=str(pause))
        except RunAborted as exc:
            self.connection_flag(exc.error, exc.connection)
            self.finish(SyncRun.Status.FAILED, error=exc.error.message)
        except ConnectorError as exc:  # Pipedrive set-up (fields, scan) failed for the whole run
            self.connection_flag(exc, self.flow.target)
            self.finish(SyncRun.Status.FAILED, error=exc.message)
        return self.run

    def erp_pages(self):
        """The ERP's pages; a failure reading them is the source connection's, and ends the run."""
        pages = self.erp.changed_since(self.kind.source_object, dict(self.flow.cursor.get("erp") or {}))
        while True:
            try:
                page = next(pages)
            except StopIteration:
                return
            except ConnectorError as exc:
                raise RunAborted(exc, self.flow.source) from exc
            yield page

    def connection_flag(self, error: ConnectorError, connection) -> None:
        """Rejected credentials break the connection and pause the flow, in words the tenant sees."""
        if connection is None:
            return
        if not error.auth:
            if not error.permanent:
                type(connection).objects.filter(pk=connection.pk).update(
                    status=connection.Status.FAILING, status_message=error.message)
            return
        type(connection).objects.filter(pk=connection.pk).update(
            status=connection.Status.BROKEN, status_message=error.message)
        Flow.objects.filter(pk=self.flow.pk).update(
            enabled=False, pause_reason=f"Paused: {connection.name} rejected the credentials. {error.message}")

    def cursor_commit(self, erp_cursor: dict[str, Any]) -> None:
        self.flow.cursor = {**self.flow.cursor, "erp": erp_cursor}
        Flow.objects.filter(pk=self.flow.pk).update(cursor=self.flow.cursor, heartbeat_at=timezone.now())
        SyncRun.objects.filter(pk=self.run.pk).update(**self._count_fields())  # live progress

    def _count_fields(self) -> dict[str, int]:
        c = self.counts
        return dict(read=c.read, created=c.created, updated=c.updated + c.deleted, adopted=c.adopted,
                    unchanged=c.unchanged, skipped=c.skipped, failed=c.failed)

    def finish(self, status: str, error: str = "") -> None:
        calls, tokens = self._calls()
        SyncRun.objects.filter(pk=self.run.pk).update(
            status=status, finished=timezone.now(), error=error[:2000], **self._count_fields(),
            pipedrive_calls=calls - self._calls_before[0], tokens_spent=tokens - self._calls_before[1],
        )
        self.run.refresh_from_db()

    def report_progress(self) -> None:
        if self.progress:
            self.progress(self.counts.read, self.expected)

    # --- preparing a batch -----------------------------------------------------------------------
    def process(self, records: Iterable[dict[str, Any]], *, replay_of: Replays | None = None) -> None:
        """One batch, start to finish (replays); scheduled runs pipeline pages in `pipeline`."""
        records = list(records)
        work = self.prepare(records, replay_of=replay_of)
        if work:
            self.calls(work)
            self.settle(work)
        self.children_step(records, replay_of=replay_of)
        self.report_progress()

    def prepare(self, records: Iterable[dict[str, Any]], *, replay_of: Replays | None = None) -> list[Work]:
        """The root operation of a page of records: map, resolve references, hash, compare, adopt;
        returns the work that needs calls (its audit rows already committed in flight)."""
        op = self.root
        items: dict[str, tuple[dict, dict]] = {}
        for record in records:
            self.counts.read += 1
            record = self.derived(record)
            external_id = str(record.get(op.key_field) or "").strip()
            replayed = (replay_of or {}).get((op.source_object, external_id))
            if not external_id:
                self.ledger.fail_unmapped(op, record, "", MappingError(f"The record has no {op.key_field}."))
                continue
            try:
                items[external_id] = (record, body_build(op, record, external_id))
            except ConnectorError as exc:
                self.ledger.fail_unmapped(op, record, external_id, exc, replay_of=replayed)
        return self.prepare_op(op, items, replay_of=replay_of)

    def derived(self, record: dict[str, Any]) -> dict[str, Any]:
        if self.kind.derive is None:
            return record
        try:
            return {**record, **self.kind.derive(record)}
        except (KeyError, TypeError, ValueError, AttributeError):
            return record  # the mapping then names the field it misses, for this record alone

    def prepare_op(self, op: Op, items: dict[str, tuple[dict, dict]], *, replay_of: Replays | None = None,
                   parents: dict[str, tuple[str, int]] | None = None) -> list[Work]:
        """`items`: external id → (record, body). `parents`: external id → (parent key, parent id)."""
        replay_of = replay_of or {}
        for external_id, error in references_fill(flow=self.flow, op=op, items=items).items():
            record, _ = items.pop(external_id)
            self.ledger.fail_unmapped(op, record, external_id, error,
                                      replay_of=replay_of.get((op.source_object, external_id)))
        if not items:
            return []
        links = self.ledger.links_for(op, items.keys())
        work: list[Work] = []
        for external_id, (record, body) in items.items():
            parent_key, parent_id = (parents or {}).get(external_id, ("", None))
            digest = payload_hash({**body, "_parent": parent_id} if parent_id and not op.parent_field else body)
            link = links.get(external_id)
            replayed = replay_of.get((op.source_object, external_id))
            if link and link.payload_hash == digest:
                self.counts.unchanged += 1
                if replayed:
                    self.ledger.replay_unchanged(op, external_id, body, record, link, replayed)
                continue
            if link and op.additive_only and not link.created_by_us:
                self.counts.skipped += 1
                self.ledger.skip_foreign(op, record, external_id, body, digest, link, replayed)
                continue
            action = SyncRecord.Action.UPDATE if link else SyncRecord.Action.CREATE
            work.append(Work(op, external_id, body, digest, record, link, action, replay_of=replayed,
                             parent_key=parent_key, parent_id=parent_id))
        if op.target.scannable and op.source_object not in self.scanned and any(
                w.action == SyncRecord.Action.CREATE for w in work):
            self.reconcile_scan(op)
            found = self.ledger.links_for(op, [w.external_id for w in work if w.link is None])
            for w in work:
                if w.link is None and w.external_id in found:
                    w.link = found[w.external_id]
                    if op.additive_only and not w.link.created_by_us:
                        self.counts.adopted += 1
                        self.ledger.skip_foreign(op, w.source, w.external_id, w.body, w.digest, w.link, w.replay_of)
                        w.action = ""
                    else:
                        w.action = SyncRecord.Action.ADOPT
            work = [w for w in work if w.action]
        self.ledger.in_flight(work)
        return work

    # --- children: kept in step with their parent ------------------------------------------------
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

    # --- reconcile: find what Pipedrive already has -----------------------------------------------
    def reconcile_scan(self, op: Op | None = None, since: datetime | None = None) -> int:
        """Link every Pipedrive record carrying an external id we do not know yet. Lists (not search),
        so a record created a moment ago is already visible."""
        op = op or self.root
        started = timezone.now()
        scans = dict(self.flow.cursor.get("scans") or {})
        if since is None:
            last = self.flow.cursor.get("pipedrive_scan_at") if not op.is_child else scans.get(op.source_object)
            since = datetime.fromisoformat(last) - SCAN_MARGIN if last else None
        key = op.mapper.external_key
        found = 0
        for page in op.target.pages(key=key, since=since):
            candidates: dict[str, int] = {}
            for item in page:
                value = (item.get("custom_fields") or {}).get(key)
                if value not in (None, "") and not item.get("is_deleted"):
                    candidates.setdefault(str(value).strip(), item["id"])
            if not candidates:
                continue
            links = RecordLink.objects.filter(source_connection=self.flow.source, target_connection=self.flow.target,
                                              source_object=op.source_object, external_id__in=list(candidates))
            known = set(links.values_list("external_id", flat=True))
            ours = set(SyncRecord.objects.filter(
                flow=self.flow, source_object=op.source_object, external_id__in=list(candidates), action__in=CREATES,
            ).values_list("external_id", flat=True))
            new = [RecordLink(tenant_id=self.flow.tenant_id, source_connection=self.flow.source,
                              target_connection=self.flow.target, source_object=op.source_object,
                              external_id=ext, target_object=op.entity, target_id=pd_id, payload_hash="",
                              created_by_us=ext in ours, parent_external_id=parent_of(ext) if op.is_child else "")
                   for ext, pd_id in candidates.items() if ext not in known]
            RecordLink.objects.bulk_create(new, ignore_conflicts=True)
            found += len(new)
        self.scanned.add(op.source_object)
        if op.is_child:
            scans[op.source_object] = started.isoformat()
            self.flow.cursor = {**self.flow.cursor, "scans": scans}
        else:
            self.flow.cursor = {**self.flow.cursor, "pipedrive_scan_at": started.isoformat()}
        Flow.objects.filter(pk=self.flow.pk).update(cursor=self.flow.cursor)
        return found

    # --- the calls -------------------------------------------------------------------------------
    def calls(self, work: list[Work]) -> None:
        """The Pipedrive calls of one batch (on the caller thread in pipelined runs). After a budget
        pause nothing more is sent: the rest is marked not sent and read again after the reset."""

        def attempt(w: Work) -> None:
            if self.halted or self.stop_reason:
                w.error = not_sent(self.stop_reason)
                return
            try:
                self.call(w)
            except BudgetExhausted as exc:
                self.halted.append(exc)
                w.error = not_sent()
            except ConnectorError as exc:
                w.error = exc

        if self.pool is None or len(work) == 1 or not self.parallel:
            started = time.monotonic()
            for w in work:
                attempt(w)
            if self.parallel is None and len(work) >= 10:
                # Threads only pay off when the network wait dominates a call; on a fast link they just
                # contend for the interpreter. The first batch, sent one by one, tells which case this is.
                self.first_batch_call_ms = (time.monotonic() - started) * 1000 / len(work)
                self.parallel = self.first_batch_call_ms > PARALLEL_ABOVE_MS
        else:
            list(self.pool.map(attempt, work))
        ambiguous = [w for w in work if w.error is not None and getattr(w.error, "ambiguous", False)]
        if ambiguous and not self.halted:
            self.resolve_ambiguous(ambiguous)

    def call(self, w: Work) -> None:
        target = w.op.target
        if w.action == SyncRecord.Action.DELETE:
            target.delete(w.link.target_id, parent_id=w.parent_id)  # already gone is fine too
            w.result_id = w.link.target_id
            return
        if w.action == SyncRecord.Action.CREATE:
            w.result_id = target.create(w.body, parent_id=w.parent_id)
            return
        try:
            w.result_id = target.update(w.link.target_id, w.body, parent_id=w.parent_id)
        except Gone:
            # Deleted in Pipedrive (404, or 200 with is_deleted): recreate and relink, logged as its own action.
            w.action = SyncRecord.Action.RECREATE
            w.audit.action = w.action
            w.result_id = target.create(w.body, parent_id=w.parent_id)

    def settle(self, work: list[Work]) -> None:
        """Links and audit completion of a batch whose calls are done; then stop the run if it must."""
        self.ledger.complete(work)
        if self.halted:
            raise RunPaused(self.halted[0].resets_at, self.halted[0].message)
        failed_auth = next((w.error for w in work if w.error and w.error.auth), None)
        if failed_auth:
            raise RunAborted(failed_auth, self.flow.target)

    def resolve_ambiguous(self, ambiguous: list[Work]) -> None:
        """A create whose answer never came may have happened: look before creating again."""
        by_op: dict[str, list[Work]] = {}
        for w in ambiguous:
            by_op.setdefault(w.op.source_object, []).append(w)
        for group in by_op.values():
            op = group[0].op
            since = min(w.audit.created for w in group) - SCAN_MARGIN
            wanted = {w.external_id: w.body for w in group}
            found = self.find_created(op, wanted, since=since, parent_ids={w.external_id: w.parent_id for w in group})
            for w in group:
                if w.external_id in found:
                    w.result_id, w.error = found[w.external_id], None
        for w in ambiguous:
            if w.result_id is None:
                try:
                    w.result_id = w.op.target.create(w.body, parent_id=w.parent_id)
                    w.error = None
                except ConnectorError as exc:
                    w.error = exc  # stays failed (transient): the next run looks again before creating

    def find_created(self, op: Op, wanted: dict[str, dict], *, since: datetime,
                     parent_ids: dict[str, int | None]) -> dict[str, int]:
        known = set()
        if not op.target.scannable:
            known = set(RecordLink.objects.filter(
                source_connection=self.flow.source, target_connection=self.flow.target, source_object=op.source_object,
                parent_target_id__in=[p for p in parent_ids.values() if p]).values_list("target_id", flat=True))
        return op.target.find_created(wanted, key=op.mapper.external_key, since=since, source_object=op.source_object,
                                      parent_ids=parent_ids, known_ids=known)

    # --- threads --------------------------------------------------------------------------------
    @cached_property
    def caller(self) -> ThreadPoolExecutor:
        """One thread making a page's calls while the main thread reads and prepares the next page."""
        return ThreadPoolExecutor(max_workers=1, thread_name_prefix="pipedrive-caller")

    @cached_property
    def pool(self) -> ThreadPoolExecutor | None:
        """Calls of one batch overlap their network waits; the audit rows are already committed."""
        size = int(getattr(settings, "SYNC_PIPEDRIVE_CONCURRENCY", 4))
        return ThreadPoolExecutor(max_workers=size, thread_name_prefix="pipedrive") if size > 1 else None

    def pipeline(self) -> None:
        """ERP pages → prepare → calls (in the background) → settle + children + cursor commit, one page
        behind."""
        pending: tuple[Any, list[Work], dict, list] | None = None
        try:
            for page in self.erp_pages():
                if self.expected is None and page.remaining is not None:
                    self.expected = self.counts.read + page.remaining  # for progress bars
                work = self.prepare(page.records)
                future = self.caller.submit(self.calls, work) if work else None
                if pending is not None:
                    self.settle_page(*pending)
                pending = (future, work, page.cursor, page.records)
            if pending is not None:
                self.settle_page(*pending)
                pending = None
        finally:
            if pending is not None:  # stopping early: the batch in flight sends nothing more, and is recorded
                self.stop_reason = self.stop_reason or ("Not sent: the run stopped before this record's turn; "
                                                        "it is read again on the next run.")
                future, work, _cursor, _records = pending
                if future is not None:
                    future.result()
                    self.ledger.complete(work)

    def settle_page(self, future, work: list[Work], cursor: dict, records: list) -> None:
        if future is not None:
            future.result()
            self.settle(work)
        self.children_step(records)
        self.cursor_commit(cursor)
        self.report_progress()

    def close(self) -> None:
        closer = getattr(self.erp, "close", None)
        if closer is not None:
            try:
                closer()  # log off the ERP session (B1 Logout, SYSPRO Logoff)
            except ConnectorError:
                pass
        caller = self.__dict__.get("caller")
        if caller is not None:
            caller.submit(db_connections.close_all).result()
            caller.shutdown(wait=True)
        pool = self.__dict__.get("pool")
        if pool is None:
            return
        size = pool._max_workers
        barrier = threading.Barrier(size)

        def release_db() -> None:
            barrier.wait(timeout=30)  # one task per worker thread
            db_connections.close_all()

        for future in [pool.submit(release_db) for _ in range(size)]:
            future.result()
        pool.shutdown(wait=True)

    # --- "Resync all": links whose Pipedrive record is gone ------------------------------------
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

    # --- leftovers of earlier runs ---------------------------------------------------------------
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
            self.replay(rows)

    def replay(self, rows: list[SyncRecord]) -> None:
        """Send the current source record again (or the stored one when the source lost it). A child's
        failure replays its parent's plan: the parent record holds the children."""
        root = self.root
        replay_of: Replays = {}
        parents: dict[str, SyncRecord] = {}
        for row in rows:
            replay_of.setdefault((row.source_object, row.external_id), row)
            parent_key = row.external_id if row.source_object == root.source_object else parent_of(row.external_id)
            parents.setdefault(parent_key, row)
        records = []
        for parent_key, row in parents.items():
            current = None
            try:
                current = self.erp.read_one(self.kind.source_object, parent_key)
            except ConnectorError as exc:
                if exc.auth:
                    raise RunAborted(exc, self.flow.source) from exc
            if current is None and row.source_object == root.source_object:
                current = row.source_data
            records.append(current or {root.key_field: parent_key})
        for start in range(0, len(records), 100):
            self.process(records[start:start + 100], replay_of=replay_of)


def flow_execute(*, flow: Flow, run: SyncRun, progress=None) -> SyncRun:
    started = time.monotonic()
    try:
        engine = FlowEngine(flow=flow, run=run, progress=progress)
    except (ConnectorError, LookupError) as exc:
        message = exc.message if isinstance(exc, ConnectorError) else str(exc)
        SyncRun.objects.filter(pk=run.pk).update(status=SyncRun.Status.FAILED, finished=timezone.now(), error=message)
        run.refresh_from_db()
        return run
    try:
        result = engine.execute()
    finally:
        engine.close()
    logger.info("flow %s run %s %s in %.1fs: %s", flow.pk, run.pk, result.status, time.monotonic() - started,
                engine.counts)
    return result
