"""The flow page's live part (polled by htmx while a run is due, queued or running): the run in progress
with its progress (records read of `expected`), the last finished run, and whether the flow is failing."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from syncs.models import Flow, SyncRun

RUNS_CHARTED = 20
WATCH_QUEUED_S = 300  # after Run now, the flow page polls this long at most for the run to start


def since_parse(raw: str | None, *, now: datetime) -> datetime | None:
    """When a run was asked for (Run now), from the page's query: the page polls until a run starts after it."""
    try:
        moment = datetime.fromtimestamp(float(raw or ""), tz=timezone.get_current_timezone())
    except (TypeError, ValueError, OverflowError, OSError):
        return None
    return moment if timedelta(0) <= now - moment <= timedelta(seconds=WATCH_QUEUED_S) else None


def flow_live(*, flow: Flow, now: datetime, since: datetime | None = None) -> dict[str, Any]:
    """The flow page's live part: the run in progress (read of expected), the last finished run, whether
    the flow is failing, and whether the page should keep polling (a run is due or was just asked for)."""
    runs = list(SyncRun.objects.filter(flow=flow).order_by("-started", "-id")[:RUNS_CHARTED])
    current = next((r for r in runs if r.status in (SyncRun.Status.RUNNING, SyncRun.Status.QUEUED)), None)
    last = next((r for r in runs if r.finished), None)
    total = current.expected if current else None
    done = current.read if current else 0
    asked = since is not None and not any(r.started >= since for r in runs)
    starting = current is None and (
        asked or (flow.enabled and flow.next_run_at is not None and flow.next_run_at <= now)
    )
    failing = ""
    if last is not None and last.status == SyncRun.Status.FAILED and flow.state.code != "running":
        failing = last.error or "the last run stopped before the end."
    return {
        "run": current,
        "last": last,
        "total": total,
        "done": done,
        "starting": starting,
        "failing": failing,
        "percent": min(100, round(100 * done / total)) if total else None,
        "polling": current is not None or flow.state.code == "running" or starting,
        "since": f"{since.timestamp():.3f}" if since and (starting or current) else "",
        "runs": runs,
    }
