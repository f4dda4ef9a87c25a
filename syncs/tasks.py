"""django-q2 entry points: thin wrappers over services."""

from __future__ import annotations

from syncs.models import Flow


def dispatcher_tick_task() -> list[int]:
    from syncs.scheduler import dispatcher_tick

    return dispatcher_tick()


def flow_run_task(flow_id: int, trigger: str = "schedule", claim_token: str = "") -> str:
    from syncs.services import flow_run

    flow = Flow.objects.select_related("source", "target").get(pk=flow_id)
    run = flow_run(flow=flow, trigger=trigger, claimed=trigger == "schedule", claim_token=claim_token)
    return "busy" if run is None else f"run {run.pk}: {run.status}"


def health_task(value: int) -> dict:
    """A no-op round trip through the cluster (used by health checks and tests)."""
    from django.db import connection

    return {"echo": value, "database": connection.vendor}


def replay_run_task(run_id: int, record_ids: list[int]) -> str:
    """Send a queued replay run's records (queued by `syncs.services.replay_queue`)."""
    from syncs.models import SyncRun
    from syncs.services import replay_run_execute

    run = replay_run_execute(run=SyncRun.objects.get(pk=run_id), record_ids=record_ids)
    return f"run {run.pk}: {run.status}"
