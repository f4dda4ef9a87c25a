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
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from django.conf import settings
from django.utils import timezone

from connectors.base import UNREADABLE, BudgetExhausted, ConnectorError, FlowKind
from connectors.registry import connector_for
from syncs.calls import PARALLEL_ABOVE_MS, CallsMixin  # noqa: F401 - tests read the threshold here
from syncs.children import ChildrenMixin
from syncs.errors import RunAborted, RunPaused, not_sent  # noqa: F401 - services import them from here
from syncs.kinds import flow_kind_get
from syncs.ledger import CREATES, Counters, Ledger, Replays, Work
from syncs.mapping import MappingError, payload_hash
from syncs.models import Flow, RecordLink, SyncRecord, SyncRun
from syncs.plan import Op, body_build, ops_build, parent_of, references_fill
from syncs.recovery import RecoveryMixin
from syncs.targets import SCAN_MARGIN

logger = logging.getLogger(__name__)



class FlowEngine(CallsMixin, ChildrenMixin, RecoveryMixin):
    """One run: read, plan, call, settle, per page. Calls, children and recovery live in their own
    modules (calls.py, children.py, recovery.py) as mixins of this class."""

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
        # Fair share of a worker: past the slice the run stops at a page boundary and the flow is due
        # again at once, so other tenants' flows queued meanwhile get a worker first.
        self.deadline = time.monotonic() + float(getattr(settings, "RUN_TIME_SLICE_S", 300))
        self.continues = False

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
            if not self.continues:
                self.pipeline()
            if self.continues:
                self.finish(SyncRun.Status.PARTIAL, reason=SyncRun.Reason.CONTINUES)
            else:
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
        calls, tokens = self._calls()
        SyncRun.objects.filter(pk=self.run.pk).update(  # live progress, and each flow's share of today's budget
            **self._count_fields(), pipedrive_calls=calls - self._calls_before[0],
            tokens_spent=tokens - self._calls_before[1])

    def _count_fields(self) -> dict[str, int | None]:
        c = self.counts
        return dict(read=c.read, created=c.created, updated=c.updated + c.deleted, adopted=c.adopted,
                    unchanged=c.unchanged, skipped=c.skipped, failed=c.failed, expected=self.expected)

    def slice_over(self) -> bool:
        """The run has had its time slice: stop at the next page boundary (cursor committed)."""
        if time.monotonic() >= self.deadline:
            self.continues = True
        return self.continues

    def finish(self, status: str, error: str = "", reason: str = "") -> None:
        calls, tokens = self._calls()
        SyncRun.objects.filter(pk=self.run.pk).update(
            status=status, reason=reason, finished=timezone.now(), error=error[:2000], **self._count_fields(),
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
            if self.kind.skip is not None and self.kind.skip(record):
                self.counts.skipped += 1  # not this flow's to sync (the kind says why); nothing sent, no row
                continue
            external_id = str(record.get(op.key_field) or "").strip()
            if record.get(UNREADABLE):  # the connector could not read it: fails alone, in its words
                self.ledger.fail_unmapped(op, record, external_id or "(unreadable)",
                                          ConnectorError(str(record[UNREADABLE]), permanent=True))
                continue
            record = self.derived(record)
            external_id = str(record.get(op.key_field) or "").strip()
            replayed = (replay_of or {}).get((op.source_object, external_id))
            if not external_id or "\x00" in external_id:
                self.ledger.fail_unmapped(op, record, external_id, MappingError(
                    f"The record has no {op.key_field}." if not external_id else
                    f"The record's {op.key_field} contains a NUL character, which cannot be a key."))
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

    # --- the pipeline ----------------------------------------------------------------------------
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
                last = page.remaining is not None and page.remaining <= len(page.records)
                if not last and self.slice_over():
                    break  # the page in flight is settled below: at most one page's calls past the slice
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
