"""The engine's Pipedrive calls: one batch at a time, spread over threads when the network wait
dominates, stopped cleanly by a budget pause, and a lost create answered by looking before creating."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from functools import cached_property

import requests
from django.conf import settings
from django.db import connections as db_connections

from connectors.base import BudgetExhausted, ConnectorError
from syncs.bulk import bulk_call, units_plan
from syncs.errors import RunAborted, RunPaused, not_sent
from syncs.ledger import Work
from syncs.models import RecordLink, SyncRecord
from syncs.plan import Op
from syncs.targets import SCAN_MARGIN, Gone

PARALLEL_ABOVE_MS = 5.0  # mean call time above which a run spreads its calls over threads


class CallsMixin:
    def calls(self, work: list[Work]) -> None:
        """The Pipedrive calls of one batch (on the caller thread in pipelined runs). After a budget
        pause nothing more is sent: the rest is marked not sent and read again after the reset."""

        def attempt(unit: list[Work]) -> None:
            if self.halted or self.stop_reason:
                for w in unit:
                    w.error = not_sent(self.stop_reason)
                return
            try:
                if len(unit) == 1:
                    self.call(unit[0])
                else:
                    bulk_call(unit)
            except BudgetExhausted as exc:
                self.halted.append(exc)
                for w in unit:
                    w.error = not_sent()
            except ConnectorError as exc:
                if len(unit) > 1 and exc.permanent and not exc.auth and not getattr(exc, "ambiguous", False):
                    # Pipedrive refused the bulk call as a whole (all or none): one line is bad, and it
                    # must fail alone, so the lines go one by one.
                    for w in unit:
                        attempt([w])
                    return
                for w in unit:
                    w.result_id, w.error = None, exc

        units = units_plan(work)  # bulk calls where they cost fewer tokens than singles
        if self.pool is None or len(units) == 1 or not self.parallel:
            started = time.monotonic()
            for unit in units:
                attempt(unit)
            if self.parallel is None and len(units) >= 10:
                # Threads only pay off when the network wait dominates a call; on a fast link they just
                # contend for the interpreter. The first batch, sent one by one, tells which case this is.
                self.first_batch_call_ms = (time.monotonic() - started) * 1000 / len(units)
                self.parallel = self.first_batch_call_ms > PARALLEL_ABOVE_MS
        else:
            list(self.pool.map(attempt, units))
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
        """A create whose answer never came may have happened: look before creating again. A create
        that timed out may still be committing at Pipedrive, so those are looked for once more after
        SYNC_LOST_CREATE_RECHECK_S before the record is left to the next run."""
        self._look_for(ambiguous)
        late = [w for w in ambiguous if w.result_id is None and _timed_out(w.error)]
        if late:
            time.sleep(float(getattr(settings, "SYNC_LOST_CREATE_RECHECK_S", 5)))
            self._look_for(late)
        for w in ambiguous:
            if w.result_id is None:
                # Not there (yet): creating again now could make a twin. The next run looks again (its
                # reconcile scan covers this moment) and creates only if it is still missing.
                w.error = ConnectorError(
                    "Pipedrive's answer to the create was lost and the record is not in Pipedrive yet; the next "
                    "run looks for it again before creating it.", permanent=False, status=w.error.status)

    def _look_for(self, works: list[Work]) -> None:
        by_op: dict[str, list[Work]] = {}
        for w in works:
            by_op.setdefault(w.op.source_object, []).append(w)
        for group in by_op.values():
            op = group[0].op
            since = min(w.audit.created for w in group) - SCAN_MARGIN
            wanted = {w.external_id: w.body for w in group}
            found = self.find_created(op, wanted, since=since, parent_ids={w.external_id: w.parent_id for w in group})
            for w in group:
                if w.external_id in found:
                    w.result_id, w.error = found[w.external_id], None

    def find_created(self, op: Op, wanted: dict[str, dict], *, since: datetime,
                     parent_ids: dict[str, int | None]) -> dict[str, int]:
        known = set()
        if not op.target.scannable:
            known = set(RecordLink.objects.filter(
                source_connection=self.flow.source, target_connection=self.flow.target, source_object=op.source_object,
                parent_target_id__in=[p for p in parent_ids.values() if p]).values_list("target_id", flat=True))
        return op.target.find_created(wanted, key=op.mapper.external_key, since=since, source_object=op.source_object,
                                      parent_ids=parent_ids, known_ids=known)

    @cached_property
    def caller(self) -> ThreadPoolExecutor:
        """One thread making a page's calls while the main thread reads and prepares the next page."""
        return ThreadPoolExecutor(max_workers=1, thread_name_prefix="pipedrive-caller")

    @cached_property
    def pool(self) -> ThreadPoolExecutor | None:
        """Calls of one batch overlap their network waits; the audit rows are already committed."""
        size = int(getattr(settings, "SYNC_PIPEDRIVE_CONCURRENCY", 4))
        return ThreadPoolExecutor(max_workers=size, thread_name_prefix="pipedrive") if size > 1 else None

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


def _timed_out(error: BaseException | None) -> bool:
    """The failure (or what caused it) was a timeout: the server may still be working on the request."""
    seen = 0
    while error is not None and seen < 5:
        if isinstance(error, requests.exceptions.Timeout | TimeoutError):
            return True
        if isinstance(error, ConnectorError) and "did not answer in time" in error.message:
            return True
        error, seen = error.__cause__, seen + 1
    return False
