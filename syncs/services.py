"""Writes: create flows, claim and run them, replay failed records, pause and resume."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from connectors.models import Connection
from syncs.kinds import flow_kind_get
from syncs.models import FieldMapping, Flow, SyncRecord, SyncRun
from syncs.signals import run_finished
from tenants.models import Tenant


def flow_create(*, tenant: Tenant, source: Connection, target: Connection, kind: str, name: str = "",
                interval_minutes: int = 15, options: dict[str, Any] | None = None, enabled: bool = True) -> Flow:
    if source.tenant_id != tenant.pk or target.tenant_id != tenant.pk:
        raise ValueError("Both connections must belong to the tenant.")
    if target.system != Connection.System.PIPEDRIVE:
        raise ValueError("The target of this flow must be a Pipedrive connection.")
    flow_kind = flow_kind_get(system=source.system, name=kind)
    defaults: dict[str, Any] = {"create_missing_fields": True}
    if flow_kind.writeback is not None:
        defaults["trigger"] = flow_kind.writeback.trigger  # "won", or a list of Pipedrive stage ids
    options = dict(options or {})
    if flow_kind.writeback is not None and flow_kind.writeback.mode == "action":
        from syncs.writeback_stage import stage_actions_clean

        options["stage_actions"] = stage_actions_clean(kind=flow_kind, value=options.get("stage_actions"))
    with transaction.atomic():
        flow = Flow.objects.create(
            tenant=tenant, source=source, target=target, kind=kind, name=name or flow_kind.label,
            interval_minutes=interval_minutes, options={**defaults, **options},
            enabled=enabled, next_run_at=timezone.now(),
        )
        FieldMapping.objects.bulk_create([
            FieldMapping(flow=flow, position=i, source=m.source, target=m.target, lookup=m.lookup,
                         required=m.required, field_type=m.field_type)
            for i, m in enumerate(flow_kind.mappings)
        ])
        if enabled:
            _webhook_follow(flow)
    return flow


def _claim_stale_before():
    return timezone.now() - timedelta(seconds=getattr(settings, "SYNC_CLAIM_STALE_SECONDS", 60))


def claims_release_dead() -> int:
    """Free the claims whose holder ran on this host and is gone (killed mid-run): they need not wait
    for the heartbeat to go stale. Claims of other hosts are left to the heartbeat."""
    from syncs.claims import owner_dead

    released = 0
    held = Flow.objects.filter(running_since__isnull=False).exclude(claimed_by="")
    for pk, owner, token in held.values_list("pk", "claimed_by", "claim_token"):
        if owner_dead(owner):
            released += Flow.objects.filter(pk=pk, claim_token=token, claimed_by=owner).update(
                running_since=None, heartbeat_at=None, claimed_by="", claim_token="")
    return released


def _claim_values(now) -> dict[str, Any]:
    from syncs.claims import claim_owner

    return {"running_since": now, "heartbeat_at": now, "claimed_by": claim_owner(), "claim_token": uuid.uuid4().hex}


def flow_claim(*, flow_id: int, due_only: bool = True) -> str | None:
    """Atomically mark a flow as running; returns the claim's token, or None when another worker has
    it (or it is not due)."""
    claims_release_dead()
    now = timezone.now()
    free = Q(running_since__isnull=True) | Q(heartbeat_at__lt=_claim_stale_before())
    qs = Flow.objects.filter(free, pk=flow_id)
    if due_only:
        qs = qs.filter(enabled=True, next_run_at__lte=now).filter(Q(paused_until__isnull=True) | Q(paused_until__lte=now))
    values = _claim_values(now)
    return values["claim_token"] if qs.update(**values) == 1 else None


def flows_claim_due(*, limit: int | None = None, tokens: dict[int, str] | None = None) -> list[int]:
    """Claim up to `limit` due flows, oldest-due first (a flow that yielded its worker is due again at
    once, behind the flows that were waiting), in one statement pair; safe with any number of
    dispatchers. `tokens`, when given, receives each claimed flow's claim token (for the worker task)."""
    if limit is None:
        limit = int(getattr(settings, "SYNC_DISPATCH_LIMIT", 100))
    claims_release_dead()
    now = timezone.now()
    free = Q(running_since__isnull=True) | Q(heartbeat_at__lt=_claim_stale_before())
    due = Q(enabled=True, next_run_at__lte=now) & (Q(paused_until__isnull=True) | Q(paused_until__lte=now))
    with transaction.atomic():
        ids = list(Flow.objects.select_for_update(skip_locked=True).filter(free & due)
                   .order_by("next_run_at").values_list("pk", flat=True)[:limit])
        if ids:
            values = _claim_values(now)
            Flow.objects.filter(pk__in=ids).update(**values)
            if tokens is not None:
                tokens.update(dict.fromkeys(ids, values["claim_token"]))
    return ids


def flow_claim_take(*, flow_id: int, token: str) -> bool:
    """The worker picked the dispatcher's claim up: the claim is now held by this process. False when
    the claim is no longer the one the task was given (it went stale and someone else runs the flow)."""
    from syncs.claims import claim_owner

    qs = Flow.objects.filter(pk=flow_id, running_since__isnull=False)
    if token:
        qs = qs.filter(claim_token=token)
    return qs.update(claimed_by=claim_owner(), heartbeat_at=timezone.now()) == 1


def flow_release(*, flow: Flow, token: str = "", again: bool = False) -> None:
    """Free the claim; `again`: the run yielded its time slice, so the flow is due at once."""
    now = timezone.now()
    fresh = Flow.objects.get(pk=flow.pk)
    next_run = now if again else now + timedelta(minutes=fresh.interval_minutes)
    if fresh.paused_until and fresh.paused_until > now:
        next_run = fresh.paused_until  # paused for the budget: due again at the reset itself
    qs = Flow.objects.filter(pk=flow.pk)
    if token:
        qs = qs.filter(claim_token=token)  # a claim taken over meanwhile is not ours to release
    qs.update(running_since=None, heartbeat_at=None, claimed_by="", claim_token="", next_run_at=next_run)


def runs_interrupt_stale(*, flow: Flow) -> None:
    """A run still 'running' when its flow is claimed again belongs to a dead worker."""
    SyncRun.objects.filter(flow=flow, status=SyncRun.Status.RUNNING).update(
        status=SyncRun.Status.INTERRUPTED, finished=timezone.now(),
        error="The worker running this sync stopped; the next run resumed from the last committed page.")


def flow_run(*, flow: Flow, trigger: str = SyncRun.Trigger.MANUAL, progress=None, claimed: bool = False,
             claim_token: str = "") -> SyncRun | None:
    """Run one flow now. Returns None when another worker is already running it. `claimed`: the
    dispatcher claimed it already (with `claim_token`) and this worker takes the claim over."""
    from syncs.claims import Heartbeat
    from syncs.engine import flow_execute
    from syncs.writeback import deals_poll, writeback_kind

    if claimed:
        if not flow_claim_take(flow_id=flow.pk, token=claim_token):
            return None
        token = claim_token or Flow.objects.values_list("claim_token", flat=True).get(pk=flow.pk)
    else:
        token = flow_claim(flow_id=flow.pk, due_only=False)
        if token is None:
            return None
    run = None
    try:
        with Heartbeat(flow_id=flow.pk, token=token):
            flow.refresh_from_db()
            runs_interrupt_stale(flow=flow)
            if flow.paused_until and flow.paused_until <= timezone.now():
                Flow.objects.filter(pk=flow.pk).update(paused_until=None, pause_reason="")
                flow.paused_until, flow.pause_reason = None, ""
            run = SyncRun.objects.create(tenant_id=flow.tenant_id, flow=flow, trigger=trigger)
            if writeback_kind(flow) is not None:  # a write-back flow's run is a poll of changed deals
                run = deals_poll(flow=flow, run=run)
            else:
                run = flow_execute(flow=flow, run=run, progress=progress)
    finally:
        flow_release(flow=flow, token=token, again=run is not None and run.continues)
    run_finished.send_robust(sender=SyncRun, run=run)  # alerts follow the flow's state from here
    return run


def _webhook_follow(flow: Flow) -> None:
    """A write-back flow enabled or disabled: a worker registers or removes the Pipedrive webhook."""
    from syncs.webhook_registration import flow_is_writeback, webhook_reconcile_queue

    if flow_is_writeback(flow=flow):
        webhook_reconcile_queue(connection_id=flow.target_id)


def flow_pause(*, flow: Flow, reason: str = "Paused by a user") -> Flow:
    with transaction.atomic():
        Flow.objects.filter(pk=flow.pk).update(enabled=False, pause_reason=reason)
        flow.refresh_from_db()
        _webhook_follow(flow)
    return flow


def flow_resume(*, flow: Flow) -> Flow:
    with transaction.atomic():
        Flow.objects.filter(pk=flow.pk).update(enabled=True, pause_reason="", paused_until=None,
                                               next_run_at=timezone.now())
        flow.refresh_from_db()
        _webhook_follow(flow)
    return flow


def _failed_by_flow(records) -> dict[int, list[SyncRecord]]:
    by_flow: dict[int, list[SyncRecord]] = {}
    for row in records:
        if row.outcome == SyncRecord.Outcome.FAILED:
            by_flow.setdefault(row.flow_id, []).append(row)
    return by_flow


def flow_is_busy(*, flow: Flow) -> bool:
    """A live worker holds the flow's claim (a stale claim of a dead worker does not count)."""
    free = Q(running_since__isnull=True) | Q(heartbeat_at__lt=_claim_stale_before())
    return not Flow.objects.filter(free, pk=flow.pk).exists()


def replay_queue(*, records, actor=None) -> list[SyncRun]:
    """Queue the replay of the given failed audit rows: one 'queued' replay run per flow, returned at
    once; a django-q2 worker sends the records (`syncs.tasks.replay_run_task`). Raises FlowBusy when a
    flow is running right now."""
    from django_q.tasks import async_task

    by_flow = _failed_by_flow(records)
    flows = {f.pk: f for f in Flow.objects.filter(pk__in=list(by_flow))}
    for flow in flows.values():
        if flow_is_busy(flow=flow):
            raise FlowBusy(f"{flow.name} is running right now; replay again when it finishes.")
    runs = []
    for flow_id, rows in by_flow.items():
        run = SyncRun.objects.create(tenant_id=flows[flow_id].tenant_id, flow=flows[flow_id],
                                     trigger=SyncRun.Trigger.REPLAY, status=SyncRun.Status.QUEUED,
                                     requested_by=actor if getattr(actor, "pk", None) else None)
        async_task("syncs.tasks.replay_run_task", run.pk, [r.pk for r in rows], task_name=f"replay-run-{run.pk}")
        runs.append(run)
    return runs


def replay_run_execute(*, run: SyncRun, record_ids: list[int]) -> SyncRun:
    """A worker's half of `replay_queue`: send the queued run's records, or say why it could not."""
    rows = list(SyncRecord.objects.filter(pk__in=record_ids, flow_id=run.flow_id, outcome=SyncRecord.Outcome.FAILED))
    flow = Flow.objects.select_related("source", "target").get(pk=run.flow_id)
    if not flow_claim(flow_id=flow.pk, due_only=False):
        SyncRun.objects.filter(pk=run.pk).update(
            status=SyncRun.Status.FAILED, finished=timezone.now(),
            error=f"{flow.name} was running when this replay's turn came, so nothing was sent. Replay again.")
        run.refresh_from_db()
        return run
    try:
        SyncRun.objects.filter(pk=run.pk).update(status=SyncRun.Status.RUNNING)
        run.refresh_from_db()
        return _replay_into(flow, run, rows)
    finally:
        Flow.objects.filter(pk=flow.pk).update(running_since=None, heartbeat_at=None)


def records_replay(*, records, actor=None) -> list[SyncRun]:
    """Replay the given failed audit rows now, in this process (the command line; the web queues them
    with `replay_queue`), grouped per flow, each group as one 'replay' run. New audit rows are
    appended; history is never rewritten."""
    runs = []
    for flow_id, rows in _failed_by_flow(records).items():
        flow = Flow.objects.select_related("source", "target").get(pk=flow_id)
        if flow_claim(flow_id=flow.pk, due_only=False) is None:
            raise FlowBusy(f"{flow.name} is running right now; replay again when it finishes.")
        try:
            run = SyncRun.objects.create(tenant_id=flow.tenant_id, flow=flow, trigger=SyncRun.Trigger.REPLAY,
                                         requested_by=actor if getattr(actor, "pk", None) else None)
            runs.append(_replay_into(flow, run, rows))
        finally:
            Flow.objects.filter(pk=flow.pk).update(running_since=None, heartbeat_at=None, claimed_by="",
                                                   claim_token="")
    return runs


def _replay_into(flow: Flow, run: SyncRun, rows: list[SyncRecord]) -> SyncRun:
    from connectors.base import BudgetExhausted, ConnectorError
    from syncs import writeback
    from syncs.engine import FlowEngine, RunAborted, RunPaused

    if writeback.writeback_kind(flow) is not None:  # Pipedrive → ERP: the deal is written back again
        return writeback.records_replay(flow=flow, run=run, rows=rows)
    try:
        engine = FlowEngine(flow=flow, run=run)
    except Exception as exc:  # a client that cannot be built: the run must not stay "running"
        SyncRun.objects.filter(pk=run.pk).update(
            status=SyncRun.Status.FAILED, finished=timezone.now(),
            error=(exc.message if isinstance(exc, ConnectorError) else "") or "The replay could not start.")
        if not isinstance(exc, ConnectorError):
            raise
        run.refresh_from_db()
        return run
    try:
        engine.replay(sorted(rows, key=lambda r: -r.pk))
        engine.finish(SyncRun.Status.PARTIAL if engine.counts.failed else SyncRun.Status.SUCCEEDED)
    except RunAborted as exc:
        engine.finish(SyncRun.Status.FAILED, error=exc.error.message)
    except (RunPaused, BudgetExhausted) as exc:
        engine.finish(SyncRun.Status.PAUSED, error=str(exc))
    finally:
        engine.close()
    return engine.run


class FlowBusy(Exception):
    pass


def record_replay(*, record: SyncRecord, actor=None) -> SyncRun:
    return records_replay(records=[record], actor=actor)[0]


def run_failures_outstanding(*, run: SyncRun):
    """The run's failures that nothing has retried since (a fixed record is not sent again)."""
    from syncs.selectors import record_failures_outstanding

    return record_failures_outstanding(flow=run.flow).filter(run=run)


def run_replay_failures(*, run: SyncRun, actor=None) -> list[SyncRun]:
    return records_replay(records=run_failures_outstanding(run=run), actor=actor)


def run_replay_failures_queue(*, run: SyncRun, actor=None) -> list[SyncRun]:
    return replay_queue(records=run_failures_outstanding(run=run), actor=actor)


def records_replay_selection_queue(*, tenant: Tenant, record_ids: list[int], actor=None) -> list[SyncRun]:
    """Queue the replay of exactly the chosen audit rows that are the tenant's and failed (others'
    ids and rows that did not fail are left out, never an error that tells them apart)."""
    rows = SyncRecord.objects.filter(tenant=tenant, pk__in=record_ids, outcome=SyncRecord.Outcome.FAILED)
    return replay_queue(records=list(rows.order_by("id")), actor=actor)


def flow_replay_failures_queue(*, flow: Flow, actor=None) -> list[SyncRun]:
    """Queue the replay of every failure of the flow that nothing has retried since."""
    from syncs.selectors import record_failures_outstanding

    return replay_queue(records=list(record_failures_outstanding(flow=flow)), actor=actor)


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


def flow_stage_actions_set(*, flow: Flow, table: Any) -> Flow:
    """An action-mode write-back's table of Pipedrive stage id → ERP action; ValueError (plain words) for
    an unknown action or a value that is not a stage id, nothing saved. Applies to the next stage changes."""
    from syncs.writeback import writeback_kind
    from syncs.writeback_stage import stage_actions_clean

    kind = writeback_kind(flow)
    if kind is None or kind.writeback.mode != "action":
        raise ValueError("This flow does not map Pipedrive stages to actions.")
    cleaned = stage_actions_clean(kind=kind, value=table)
    with transaction.atomic():  # locked: another option written at the same moment is kept
        current = Flow.objects.select_for_update().get(pk=flow.pk)
        Flow.objects.filter(pk=flow.pk).update(options={**(current.options or {}), "stage_actions": cleaned},
                                               updated=timezone.now())
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
