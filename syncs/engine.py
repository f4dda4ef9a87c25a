"""One run of one ERP → Pipedrive flow, with the guarantees of design.md "The sync engine".

Per page of ERP records: map and hash each record; unchanged hashes cost nothing; the audit rows of
the records that need a call are written (in flight) before any call; creates are preceded by one
reconcile scan of Pipedrive per run (adopting records that already carry the external id — a
paged list costs 10 tokens per 500 records, where an exact-match search would cost 20 tokens per
record and lag behind writes); then the calls; then links and audit completion in one commit, and
only after that the page's cursor. Pages are pipelined: one page's calls run while the next is prepared.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

from django.conf import settings
from django.db import connection as db_connection
from django.db import connections as db_connections
from django.db import transaction
from django.utils import timezone

from connectors.base import BudgetExhausted, ConnectorError, FlowKind, NotFound
from connectors.registry import connector_for
from syncs.kinds import flow_kind_get
from syncs.mapping import Mapper, MappingError, Rule, payload_hash
from syncs.models import Flow, RecordLink, SyncRecord, SyncRun

logger = logging.getLogger(__name__)

EXCERPT = 500
SCAN_MARGIN = timedelta(minutes=5)  # clock skew between us and Pipedrive's update_time
PARALLEL_ABOVE_MS = 5.0  # mean call time above which a run spreads its calls over threads


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


@dataclass
class Work:
    """One record that needs a Pipedrive call."""

    external_id: str
    body: dict[str, Any]
    digest: str
    source: dict[str, Any]
    link: RecordLink | None
    action: str
    audit: SyncRecord | None = None
    replay_of: SyncRecord | None = None
    result_id: int | None = None
    error: ConnectorError | None = None


@dataclass
class Counters:
    read: int = 0
    created: int = 0
    updated: int = 0
    adopted: int = 0
    unchanged: int = 0
    skipped: int = 0
    failed: int = 0


def not_sent(reason: str = "") -> ConnectorError:
    """A record held back (budget pause, run stopping): its page is read again later."""
    error = ConnectorError(reason or "Not sent: the Pipedrive daily budget reserve was reached; the flow "
                                     "resumes after the budget resets.")
    error.not_sent = True
    return error


def _excerpt(value: Any) -> str:
    text = str(value)
    return text if len(text) <= EXCERPT else text[:EXCERPT] + "…"


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
        self.scanned_this_run = False
        self.halted: list[BudgetExhausted] = []  # set once the budget reserve is reached
        self.stop_reason = ""  # set when the run ends early for another reason
        self.parallel: bool | None = None  # decided by the first batch's call latency
        self.first_batch_call_ms: float | None = None
        self.expected: int | None = None  # records this run will read, when the ERP says
        self._mapper: Mapper | None = None
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
    def mapper(self) -> Mapper:
        if self._mapper is None:
            from connectors.pipedrive.fields import FieldResolver

            resolver = FieldResolver(self.pipedrive, self.pipedrive.company_key)
            rules = [Rule(source=m.source, target=m.target, lookup=m.lookup, required=m.required,
                          field_type=m.field_type) for m in self.flow.mappings.all()]
            self._mapper = Mapper(rules=rules, entity=self.entity, resolver=resolver,
                                  external_id_field=self.kind.external_id_field,
                                  create_missing_fields=self.flow.options.get("create_missing_fields", True))
        return self._mapper

    # --- the run -------------------------------------------------------------------------------
    def execute(self) -> SyncRun:
        try:
            self.mapper  # noqa: B018 - resolve field keys up front: a bad mapping fails the run, not each record
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
        c = self.counts  # live progress for the portal and the API
        SyncRun.objects.filter(pk=self.run.pk).update(
            read=c.read, created=c.created, updated=c.updated, adopted=c.adopted, unchanged=c.unchanged,
            skipped=c.skipped, failed=c.failed)

    def slice_over(self) -> bool:
        """The run has had its time slice: stop at the next page boundary (cursor committed)."""
        if time.monotonic() >= self.deadline:
            self.continues = True
        return self.continues

    def finish(self, status: str, error: str = "", reason: str = "") -> None:
        calls, tokens = self._calls()
        c = self.counts
        SyncRun.objects.filter(pk=self.run.pk).update(
            status=status, reason=reason, finished=timezone.now(), error=error[:2000], read=c.read, created=c.created,
            updated=c.updated, adopted=c.adopted, unchanged=c.unchanged, skipped=c.skipped, failed=c.failed,
            pipedrive_calls=calls - self._calls_before[0], tokens_spent=tokens - self._calls_before[1],
        )
        self.run.refresh_from_db()

    # --- page processing -----------------------------------------------------------------------
    def process(self, records: Iterable[dict[str, Any]], *, replay_of: dict[str, SyncRecord] | None = None) -> None:
        """One batch, start to finish (replays); scheduled runs pipeline pages in `execute`."""
        work = self.prepare(records, replay_of=replay_of)
        if work:
            self.calls(work)
            self.settle(work)
        self.report_progress()

    def prepare(self, records: Iterable[dict[str, Any]], *,
                replay_of: dict[str, SyncRecord] | None = None) -> list[Work]:
        """Map, hash and compare; adopt what Pipedrive already has; write the in-flight audit rows of
        the records that need a call (committed before any call) and return them."""
        items: dict[str, tuple[dict, dict, str]] = {}
        for record in records:
            self.counts.read += 1
            external_id = str(record.get(self.kind.key_field) or "").strip()
            if not external_id:
                self.fail_unmapped(record, "", MappingError(f"The record has no {self.kind.key_field}."))
                continue
            try:
                body = self.mapper.body(record, external_id)
            except ConnectorError as exc:
                self.fail_unmapped(record, external_id, exc, replay_of=(replay_of or {}).get(external_id))
                continue
            items[external_id] = (record, body, payload_hash(body))
        if not items:
            return []
        links = self.links_for(items.keys())
        work: list[Work] = []
        for external_id, (record, body, digest) in items.items():
            link = links.get(external_id)
            if link and link.payload_hash == digest:
                self.counts.unchanged += 1
                if replay_of and external_id in replay_of:  # a replay always leaves a row behind
                    self.audit_new(external_id=external_id, action=SyncRecord.Action.SKIP,
                                   outcome=SyncRecord.Outcome.OK, body=body, source=record,
                                   replay_of=replay_of[external_id], target_id=link.target_id,
                                   response_excerpt="Already up to date in Pipedrive; no call needed.",
                                   completed=timezone.now()).save()
                continue
            if link and self.kind.additive_only and not link.created_by_us:
                self.counts.skipped += 1
                self.skip_foreign(record, external_id, body, digest, link, (replay_of or {}).get(external_id))
                continue
            action = SyncRecord.Action.UPDATE if link else SyncRecord.Action.CREATE
            work.append(Work(external_id, body, digest, record, link, action,
                             replay_of=(replay_of or {}).get(external_id)))
        if any(w.action == SyncRecord.Action.CREATE for w in work) and not self.scanned_this_run:
            self.reconcile_scan()
            links = self.links_for([w.external_id for w in work if w.link is None])
            for w in work:
                if w.link is None and w.external_id in links:
                    w.link = links[w.external_id]
                    if self.kind.additive_only and not w.link.created_by_us:
                        self.counts.adopted += 1
                        self.skip_foreign(w.source, w.external_id, w.body, w.digest, w.link, w.replay_of)
                        w.action = ""
                    else:
                        w.action = SyncRecord.Action.ADOPT
            work = [w for w in work if w.action]
        for w in work:
            # the ERP record itself is kept only when the attempt fails (replay needs it if the source
            # loses it); the payload sent is always kept
            w.audit = self.audit_new(external_id=w.external_id, action=w.action,
                                     outcome=SyncRecord.Outcome.IN_FLIGHT, body=w.body,
                                     replay_of=w.replay_of, target_id=w.link.target_id if w.link else None)
        SyncRecord.objects.bulk_create([w.audit for w in work])
        return work

    def report_progress(self) -> None:
        if self.progress:
            self.progress(self.counts.read, self.expected)

    def links_for(self, keys: Iterable[str]) -> dict[str, RecordLink]:
        return {link.external_id: link for link in RecordLink.objects.filter(
            source_connection=self.flow.source, target_connection=self.flow.target,
            source_object=self.kind.source_object, external_id__in=list(keys))}

    def audit_new(self, *, external_id: str, action: str, outcome: str, body=None, source=None,
                  replay_of: SyncRecord | None = None, **extra: Any) -> SyncRecord:
        return SyncRecord(
            tenant_id=self.flow.tenant_id, run=self.run, flow=self.flow, source_object=self.kind.source_object,
            external_id=external_id, target_object=self.entity, action=action, outcome=outcome, payload=body,
            source_data=source, replay_of=replay_of, attempt=(replay_of.attempt + 1) if replay_of else 1, **extra)

    def fail_unmapped(self, record: dict, external_id: str, exc: ConnectorError,
                      replay_of: SyncRecord | None = None) -> None:
        self.counts.failed += 1
        self.audit_new(external_id=external_id or "(none)", action=SyncRecord.Action.FAIL,
                       outcome=SyncRecord.Outcome.FAILED, source=record, replay_of=replay_of,
                       error_kind=exc.kind, error_message=exc.message, completed=timezone.now()).save()

    def skip_foreign(self, record, external_id, body, digest, link, replay_of) -> None:
        """Additive flows leave records they did not create alone; remembering the payload's hash makes
        the next unchanged re-read free and row-less, and a later ERP change leaves one row again."""
        RecordLink.objects.filter(pk=link.pk).update(payload_hash=digest)
        self.audit_new(external_id=external_id, action=SyncRecord.Action.SKIP, outcome=SyncRecord.Outcome.OK,
                       body=body, source=record, replay_of=replay_of, target_id=link.target_id,
                       response_excerpt="Left untouched: this Pipedrive record was not created by ml-connector "
                                        "and the flow is additive-only.",
                       completed=timezone.now()).save()

    # --- reconcile: find what Pipedrive already has -----------------------------------------------
    def reconcile_scan(self, since: datetime | None = None) -> int:
        """Link every Pipedrive record carrying an external id we do not know yet. Lists (not search),
        so a record created a moment ago is already visible."""
        started = timezone.now()
        if since is None:
            last = self.flow.cursor.get("pipedrive_scan_at")
            since = datetime.fromisoformat(last) - SCAN_MARGIN if last else None
        key = self.mapper.external_key
        found = 0
        for page in self.pipedrive.entity_pages(self.entity, updated_since=since, custom_field_keys=[key]):
            candidates: dict[str, int] = {}
            for item in page:
                value = (item.get("custom_fields") or {}).get(key)
                if value not in (None, "") and not item.get("is_deleted"):
                    candidates.setdefault(str(value).strip(), item["id"])
            if not candidates:
                continue
            known = set(RecordLink.objects.filter(
                source_connection=self.flow.source, target_connection=self.flow.target,
                source_object=self.kind.source_object, external_id__in=list(candidates),
            ).values_list("external_id", flat=True))
            ours = set(SyncRecord.objects.filter(
                flow=self.flow, external_id__in=list(candidates),
                action__in=[SyncRecord.Action.CREATE, SyncRecord.Action.RECREATE],
            ).values_list("external_id", flat=True))
            new = [RecordLink(tenant_id=self.flow.tenant_id, source_connection=self.flow.source,
                              target_connection=self.flow.target, source_object=self.kind.source_object,
                              external_id=ext, target_object=self.entity, target_id=pd_id, payload_hash="",
                              created_by_us=ext in ours)
                   for ext, pd_id in candidates.items() if ext not in known]
            RecordLink.objects.bulk_create(new, ignore_conflicts=True)
            found += len(new)
        self.scanned_this_run = True
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

    def settle(self, work: list[Work]) -> None:
        """Links and audit completion of a batch whose calls are done; then stop the run if it must."""
        self.complete(work)
        if self.halted:
            raise RunPaused(self.halted[0].resets_at, self.halted[0].message)
        failed_auth = next((w.error for w in work if w.error and w.error.auth), None)
        if failed_auth:
            raise RunAborted(failed_auth, self.flow.target)

    @cached_property
    def caller(self) -> ThreadPoolExecutor:
        """One thread making a page's calls while the main thread reads and prepares the next page."""
        return ThreadPoolExecutor(max_workers=1, thread_name_prefix="pipedrive-caller")

    def pipeline(self) -> None:
        """ERP pages → prepare → calls (in the background) → settle + cursor commit, one page behind."""
        pending: tuple[Any, list[Work], dict] | None = None
        try:
            for page in self.erp_pages():
                if self.expected is None and page.remaining is not None:
                    self.expected = self.counts.read + page.remaining  # for progress bars
                work = self.prepare(page.records)
                future = self.caller.submit(self.calls, work) if work else None
                if pending is not None:
                    self.settle_page(*pending)
                pending = (future, work, page.cursor)
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
                future, work, _cursor = pending
                if future is not None:
                    future.result()
                    self.complete(work)

    def settle_page(self, future, work: list[Work], cursor: dict) -> None:
        if future is not None:
            future.result()
            self.settle(work)
        self.cursor_commit(cursor)
        self.report_progress()

    @cached_property
    def pool(self) -> ThreadPoolExecutor | None:
        """Calls of one batch overlap their network waits; the audit rows are already committed."""
        size = int(getattr(settings, "SYNC_PIPEDRIVE_CONCURRENCY", 4))
        return ThreadPoolExecutor(max_workers=size, thread_name_prefix="pipedrive") if size > 1 else None

    def close(self) -> None:
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

    def call(self, w: Work) -> None:
        if w.action == SyncRecord.Action.CREATE:
            w.result_id = self.pipedrive.entity_create(self.entity, w.body)["id"]
            return
        try:
            w.result_id = self.pipedrive.entity_update(self.entity, w.link.target_id, w.body)["id"]
        except NotFound:
            # Deleted in Pipedrive: recreate and relink (logged as its own action).
            w.action = SyncRecord.Action.RECREATE
            w.audit.action = w.action
            w.result_id = self.pipedrive.entity_create(self.entity, w.body)["id"]

    def resolve_ambiguous(self, ambiguous: list[Work]) -> None:
        """A create whose answer never came may have happened: look before creating again."""
        since = min(w.audit.created for w in ambiguous) - SCAN_MARGIN
        key = self.mapper.external_key
        wanted = {w.external_id: w for w in ambiguous}
        for page in self.pipedrive.entity_pages(self.entity, updated_since=since, custom_field_keys=[key]):
            for item in page:
                ext = str((item.get("custom_fields") or {}).get(key) or "").strip()
                w = wanted.get(ext)
                if w is not None and w.result_id is None and not item.get("is_deleted"):
                    w.result_id, w.error = item["id"], None
        for w in ambiguous:
            if w.result_id is None:
                try:
                    w.result_id = self.pipedrive.entity_create(self.entity, w.body)["id"]
                    w.error = None
                except ConnectorError as exc:
                    w.error = exc  # stays failed (transient): the next run looks again before creating

    def complete(self, work: list[Work]) -> None:
        """Links, audit completion and counters of one batch in one commit (two statements, not 2N)."""
        now = timezone.now()
        rows, links = [], []
        for w in work:
            audit = w.audit
            if w.error is None and w.result_id is not None:
                audit.outcome, audit.target_id = SyncRecord.Outcome.OK, w.result_id
                audit.response_status = 201 if w.action in ("create", "recreate") else 200
                links.append(self.link_for(w))
                self.count_ok(w.action)
            else:
                error = w.error or ConnectorError("No answer recorded.")
                audit.outcome, audit.error_kind = SyncRecord.Outcome.FAILED, error.kind
                audit.error_message, audit.response_status = error.message[:2000], error.status
                audit.response_excerpt = _excerpt(getattr(error, "body", "") or "")
                if not getattr(error, "not_sent", False):
                    self.counts.failed += 1
            rows.append((now, audit.outcome, audit.target_id, audit.response_status, audit.error_kind,
                         audit.error_message, audit.response_excerpt, audit.action, audit.pk))
        with transaction.atomic():
            if links:
                RecordLink.objects.bulk_create(
                    links, update_conflicts=True,
                    unique_fields=["source_connection", "source_object", "target_connection", "external_id"],
                    update_fields=["target_id", "payload_hash", "created_by_us", "target_object", "last_synced"])
            with db_connection.cursor() as cursor:
                cursor.executemany(
                    f"UPDATE {SyncRecord._meta.db_table} SET completed=%s, outcome=%s, target_id=%s, "
                    "response_status=%s, error_kind=%s, error_message=%s, response_excerpt=%s, action=%s "
                    "WHERE id=%s", rows)
            for w in work:
                if w.audit.outcome == SyncRecord.Outcome.FAILED:
                    SyncRecord.objects.filter(pk=w.audit.pk).update(source_data=w.source)

    def count_ok(self, action: str) -> None:
        if action in (SyncRecord.Action.CREATE, SyncRecord.Action.RECREATE):
            self.counts.created += 1
        elif action == SyncRecord.Action.ADOPT:
            self.counts.adopted += 1
        else:
            self.counts.updated += 1

    def link_for(self, w: Work) -> RecordLink:
        created_by_us = w.action in (SyncRecord.Action.CREATE, SyncRecord.Action.RECREATE) or (
            w.link is not None and w.link.created_by_us)
        return RecordLink(tenant_id=self.flow.tenant_id, source_connection=self.flow.source,
                          target_connection=self.flow.target, source_object=self.kind.source_object,
                          external_id=w.external_id, target_object=self.entity, target_id=w.result_id,
                          payload_hash=w.digest, created_by_us=created_by_us, last_synced=timezone.now())

    def verify_links(self) -> int:
        """After "Resync all": find links whose Pipedrive record is gone (deleted there). Pipedrive's ids
        (one paged list, 10 tokens per 500) and our links are both walked in id order, so memory stays
        flat. Ours get their hash cleared (the re-read updates, meets the 404 and recreates); links to
        records we never created are dropped, so the record is looked for again and created."""
        key = self.mapper.external_key
        present = (item["id"] for page in self.pipedrive.entity_pages(self.entity, custom_field_keys=[key])
                   for item in page if not item.get("is_deleted"))
        links = RecordLink.objects.filter(
            source_connection=self.flow.source, target_connection=self.flow.target,
            source_object=self.kind.source_object,
        ).order_by("target_id").values_list("pk", "target_id", "created_by_us").iterator(chunk_size=2000)
        current = next(present, None)
        ours, foreign, gone = [], [], 0

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
        """Rows left in flight by a worker that died: its creates may have happened. Scan from the
        oldest such row and link what Pipedrive has; the rest will be re-read and sent."""
        stale = SyncRecord.objects.filter(flow=self.flow, outcome=SyncRecord.Outcome.IN_FLIGHT).exclude(run=self.run)
        oldest = stale.order_by("created").values_list("created", flat=True).first()
        if oldest is None:
            return
        self.reconcile_scan(since=oldest - SCAN_MARGIN)
        linked = set(RecordLink.objects.filter(
            source_connection=self.flow.source, target_connection=self.flow.target,
            source_object=self.kind.source_object,
            external_id__in=stale.values_list("external_id", flat=True)).values_list("external_id", flat=True))
        now = timezone.now()
        for row in stale.iterator():
            row.completed = now
            if row.external_id in linked:
                row.outcome = SyncRecord.Outcome.RESOLVED
                row.error_message = "The worker stopped before recording the answer; found in Pipedrive afterwards."
            else:
                row.outcome, row.error_kind = SyncRecord.Outcome.FAILED, "transient"
                row.error_message = "The worker stopped before the call finished; the record is sent again."
            row.save(update_fields=["completed", "outcome", "error_kind", "error_message"])

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
        time; a `bounded` replay (a scheduled run's retries) stops when the run's time slice is over."""
        by_key: dict[str, SyncRecord] = {}
        for row in rows:
            by_key.setdefault(row.external_id, row)
        keys = list(by_key)
        for start in range(0, len(keys), 100):
            if bounded and start and self.slice_over():
                return  # the rest stay outstanding and are retried by the next run
            records = []
            for external_id in keys[start:start + 100]:
                current = None
                try:
                    current = self.erp.read_one(self.kind.source_object, external_id)
                except ConnectorError as exc:
                    if exc.auth:
                        raise RunAborted(exc, self.flow.source) from exc
                row = by_key[external_id]
                records.append(current if current is not None
                               else (row.source_data or {self.kind.key_field: external_id}))
            self.process(records, replay_of=by_key)


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


