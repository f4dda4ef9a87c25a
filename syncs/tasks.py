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


def webhook_event_process_task(event_id: int) -> str:
    """Process one stored Pipedrive webhook delivery (queued by the receiver)."""
    from syncs.webhooks import webhook_event_process

    return webhook_event_process(event_id=event_id)


def webhook_reconcile_task(connection_id: int) -> str:
    """Register or remove a connection's Pipedrive webhook after a write-back flow was enabled or disabled."""
    from connectors.models import Connection
    from syncs.webhook_registration import webhook_reconcile

    return webhook_reconcile(connection=Connection.objects.get(pk=connection_id))


def webhooks_check_task() -> dict:
    """Every 10 minutes: re-register webhooks Pipedrive deleted, queue events left stored."""
    from syncs.webhook_registration import webhooks_check

    return webhooks_check()
