"""Writes: create flows, claim and run them, replay failed records, pause and resume."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from connectors.models import Connection
from syncs.kinds import flow_kind_get
from syncs.models import FieldMapping, Flow, SyncRecord, SyncRun
from tenants.models import Tenant


def flow_create(*, tenant: Tenant, source: Connection, target: Connection, kind: str, name: str = "",
                interval_minutes: int = 15, options: dict[str, Any] | None = None, enabled: bool = True) -> Flow:
    if source.tenant_id != tenant.pk or target.tenant_id != tenant.pk:
        raise ValueError("Both connections must belong to the tenant.")
    if target.system != Connection.System.PIPEDRIVE:
        raise ValueError("The target of this flow must be a Pipedrive connection.")
    flow_kind = flow_kind_get(system=source.system, name=kind)
    with transaction.atomic():
        flow = Flow.objects.create(
            tenant=tenant, source=source, target=target, kind=kind, name=name or flow_kind.label,
            interval_minutes=interval_minutes, options={"create_missing_fields": True, **(options or {})},
            enabled=enabled, next_run_at=timezone.now(),
        )
        FieldMapping.objects.bulk_create([
            FieldMapping(flow=flow, position=i, source=m.source, target=m.target, lookup=m.lookup,
                         required=m.required, field_type=m.field_type)
            for i, m in enumerate(flow_kind.mappings)
        ])
    return flow


def _claim_stale_before():
    return timezone.now() - timedelta(seconds=getattr(settings, "SYNC_CLAIM_STALE_SECONDS", 600))


def flow_claim(*, flow_id: int, due_only: bool = True) -> bool:
    """Atomically mark a flow as running; False when another worker has it (or it is not due)."""
    now = timezone.now()
    free = Q(running_since__isnull=True) | Q(heartbeat_at__lt=_claim_stale_before())
    qs = Flow.objects.filter(free, pk=flow_id)
    if due_only:
        qs = qs.filter(enabled=True, next_run_at__lte=now).filter(Q(paused_until__isnull=True) | Q(paused_until__lte=now))
    return qs.update(running_since=now, heartbeat_at=now) == 1


def flows_claim_due(*, limit: int | None = None) -> list[int]:
    """Claim up to `limit` due flows, oldest-due first (a flow that yielded its worker is due again at
    once, behind the flows that were waiting), in one statement pair; safe with any number of dispatchers."""
    if limit is None:
        limit = int(getattr(settings, "SYNC_DISPATCH_LIMIT", 100))
    now = timezone.now()
    free = Q(running_since__isnull=True) | Q(heartbeat_at__lt=_claim_stale_before())
    due = Q(enabled=True, next_run_at__lte=now) & (Q(paused_until__isnull=True) | Q(paused_until__lte=now))
    with transaction.atomic():
        ids = list(Flow.objects.select_for_update(skip_locked=True).filter(free & due)
                   .order_by("next_run_at").values_list("pk", flat=True)[:limit])
        if ids:
            Flow.objects.filter(pk__in=ids).update(running_since=now, heartbeat_at=now)
    return ids


def flow_release(*, flow: Flow, again: bool = False) -> None:
    """Free the claim; `again`: the run yielded its time slice, so the flow is due at once."""
    now = timezone.now()
    fresh = Flow.objects.get(pk=flow.pk)
    next_run = now if again else now + timedelta(minutes=fresh.interval_minutes)
    if fresh.paused_until and fresh.paused_until > next_run:
        next_run = fresh.paused_until
    Flow.objects.filter(pk=flow.pk).update(running_since=None, heartbeat_at=None, next_run_at=next_run)


def runs_interrupt_stale(*, flow: Flow) -> None:
    """A run still 'running' when its flow is claimed again belongs to a dead worker."""
    SyncRun.objects.filter(flow=flow, status=SyncRun.Status.RUNNING).update(
        status=SyncRun.Status.INTERRUPTED, finished=timezone.now(),
        error="The worker running this sync stopped; the next run resumed from the last committed page.")


def flow_run(*, flow: Flow, trigger: str = SyncRun.Trigger.MANUAL, progress=None, claimed: bool = False) -> SyncRun | None:
    """Run one flow now. Returns None when another worker is already running it."""
    from syncs.engine import flow_execute

    if not claimed and not flow_claim(flow_id=flow.pk, due_only=False):
        return None
    run = None
    try:
        flow.refresh_from_db()
        runs_interrupt_stale(flow=flow)
        if flow.paused_until and flow.paused_until <= timezone.now():
            Flow.objects.filter(pk=flow.pk).update(paused_until=None, pause_reason="")
            flow.paused_until, flow.pause_reason = None, ""
        run = SyncRun.objects.create(tenant_id=flow.tenant_id, flow=flow, trigger=trigger)
        run = flow_execute(flow=flow, run=run, progress=progress)
        return run
    finally:
        flow_release(flow=flow, again=run is not None and run.continues)


def flow_pause(*, flow: Flow, reason: str = "Paused by a user") -> Flow:
    Flow.objects.filter(pk=flow.pk).update(enabled=False, pause_reason=reason)
    flow.refresh_from_db()
    return flow


def flow_resume(*, flow: Flow) -> Flow:
    Flow.objects.filter(pk=flow.pk).update(enabled=True, pause_reason="", paused_until=None, next_run_at=timezone.now())
    flow.refresh_from_db()
    return flow


def records_replay(*, records, actor=None) -> list[SyncRun]:
    """Replay the given failed audit rows, grouped per flow, each group as one 'replay' run.
    New audit rows are appended; history is never rewritten."""
    from connectors.base import BudgetExhausted
    from syncs.engine import FlowEngine, RunAborted, RunPaused

    by_flow: dict[int, list[SyncRecord]] = {}
    for row in records:
        if row.outcome == SyncRecord.Outcome.FAILED:
            by_flow.setdefault(row.flow_id, []).append(row)
    runs = []
    for flow_id, rows in by_flow.items():
        flow = Flow.objects.select_related("source", "target").get(pk=flow_id)
        if not flow_claim(flow_id=flow.pk, due_only=False):
            raise FlowBusy(f"{flow.name} is running right now; replay again when it finishes.")
        try:
            run = SyncRun.objects.create(tenant_id=flow.tenant_id, flow=flow, trigger=SyncRun.Trigger.REPLAY)
            engine = FlowEngine(flow=flow, run=run)
            try:
                engine.replay(sorted(rows, key=lambda r: -r.pk))
                engine.finish(SyncRun.Status.PARTIAL if engine.counts.failed else SyncRun.Status.SUCCEEDED)
            except RunAborted as exc:
                engine.finish(SyncRun.Status.FAILED, error=exc.error.message)
            except (RunPaused, BudgetExhausted) as exc:
                engine.finish(SyncRun.Status.PAUSED, error=str(exc))
            finally:
                engine.close()
            runs.append(engine.run)
        finally:
            Flow.objects.filter(pk=flow.pk).update(running_since=None, heartbeat_at=None)
    return runs


class FlowBusy(Exception):
    pass


def record_replay(*, record: SyncRecord, actor=None) -> SyncRun:
    return records_replay(records=[record], actor=actor)[0]


def run_replay_failures(*, run: SyncRun, actor=None) -> list[SyncRun]:
    """The run's failures that nothing has retried since (a fixed record is not sent again)."""
    from syncs.selectors import record_failures_outstanding

    return records_replay(records=record_failures_outstanding(flow=run.flow).filter(run=run), actor=actor)


def flow_mappings_set(*, flow: Flow, rows: list[dict]) -> None:
    """Replace a flow's mappings by `rows` in order; rows keep their id (and field type) when they had one."""
    with transaction.atomic():
        existing = {m.pk: m for m in FieldMapping.objects.select_for_update().filter(flow=flow)}
        for position, row in enumerate(rows):
            mapping = existing.pop(row.get("id"), None) or FieldMapping(flow=flow)
            mapping.position, mapping.source, mapping.target = position, row["source"], row["target"]
            mapping.lookup, mapping.required = row["lookup"], row["required"]
            mapping.save()
        FieldMapping.objects.filter(pk__in=list(existing)).delete()


def flow_schedule_set(*, flow: Flow, name: str, interval_minutes: int, create_missing_fields: bool) -> Flow:
    """Only these columns are written: a running engine updates the cursor of the same row meanwhile."""
    now = timezone.now()
    soonest = now + timedelta(minutes=interval_minutes)
    next_run_at = flow.next_run_at if flow.next_run_at and flow.next_run_at <= soonest else soonest
    Flow.objects.filter(pk=flow.pk).update(
        name=name, interval_minutes=interval_minutes, next_run_at=next_run_at, updated=now,
        options={**(flow.options or {}), "create_missing_fields": create_missing_fields})
    flow.refresh_from_db()
    return flow


def flow_resync(*, flow: Flow) -> Flow:
    """Read every ERP record again on the next run (after a mapping change, say), and first check that
    every linked Pipedrive record still exists. Records whose payload is unchanged still cost nothing;
    changed ones are updated; ones deleted in Pipedrive are recreated."""
    cursor = {k: v for k, v in (flow.cursor or {}).items() if k != "erp"}
    cursor["verify_links"] = True
    Flow.objects.filter(pk=flow.pk).update(cursor=cursor, next_run_at=timezone.now())
    flow.refresh_from_db()
    return flow
