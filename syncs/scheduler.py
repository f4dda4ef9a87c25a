"""The dispatcher: one django-q2 schedule ticks every minute and hands due flows to workers."""

from __future__ import annotations

import logging

from django_q.models import Schedule
from django_q.tasks import async_task

from syncs.services import flows_claim_due

logger = logging.getLogger(__name__)

TICK_NAME = "ml-connector dispatcher"
WEBHOOK_CHECK_NAME = "ml-connector webhook check"


def dispatcher_tick() -> list[int]:
    """Claim due flows atomically (any number of clusters may tick at once) and enqueue their runs."""
    tokens: dict[int, str] = {}
    ids = flows_claim_due(tokens=tokens)
    for flow_id in ids:
        async_task("syncs.tasks.flow_run_task", flow_id, "schedule", tokens[flow_id], task_name=f"flow-{flow_id}",
                   group="flows")
    if ids:
        logger.info("dispatched flows %s", ids)
    return ids


def schedule_ensure() -> Schedule:
    """Idempotently install the every-minute tick and the 10-minute webhook check (run by migrate and
    `make run`); returns the tick."""
    schedule, _ = Schedule.objects.update_or_create(
        name=TICK_NAME,
        defaults={"func": "syncs.tasks.dispatcher_tick_task", "schedule_type": Schedule.MINUTES, "minutes": 1,
                  "repeats": -1},
    )
    Schedule.objects.update_or_create(
        name=WEBHOOK_CHECK_NAME,
        defaults={"func": "syncs.tasks.webhooks_check_task", "schedule_type": Schedule.MINUTES, "minutes": 10,
                  "repeats": -1},
    )
    return schedule
