"""Reads behind the dashboard: every flow's state at a glance, and each Pipedrive company's token budget.

Always narrowed to one tenant. The budget comes from the shared limiter (what it stored for the
connection's company key), the per-flow shares from the runs' own token accounting."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import OuterRef, Prefetch, QuerySet, Subquery, Sum

from connectors.base import ConnectorError
from connectors.models import Connection
from syncs.models import Flow, SyncRecord, SyncRun
from tenants.models import Tenant
from tenants.selectors import tenant_scope

log = logging.getLogger(__name__)
FAILING = (SyncRun.Status.FAILED, SyncRun.Status.PARTIAL, SyncRun.Status.INTERRUPTED)


@dataclass(frozen=True)
class FlowOverview:
    flow: Flow
    state: str  # running | paused | waiting | failing | active | new
    label: str
    reason: str = ""  # why paused or failing, in plain words
    resumes_at: datetime | None = None
    last_run: SyncRun | None = None
    current_run: SyncRun | None = None
    next_run: datetime | None = None


def _flows_with_runs(*, tenant: Tenant) -> QuerySet[Flow]:
    last_failure = (
        SyncRecord.objects.filter(run=OuterRef("pk"), outcome=SyncRecord.Outcome.FAILED)
        .order_by("-id")
        .values("error_message")[:1]
    )
    runs = SyncRun.objects.order_by("-started", "-id").annotate(last_failure=Subquery(last_failure))
    return (
        tenant_scope(Flow.objects.select_related("source", "target"), tenant=tenant)
        .defer("source__credentials", "target__credentials")  # names only: no decryption per flow
        .prefetch_related(Prefetch("runs", queryset=runs[:2], to_attr="recent_runs"))
        .order_by("name", "id")
    )


def _running(flow: Flow, now: datetime) -> bool:
    stale_before = now - timedelta(seconds=getattr(settings, "SYNC_CLAIM_STALE_SECONDS", 60))
    return bool(flow.running_since and (flow.heartbeat_at or flow.running_since) >= stale_before)


def flow_overview(flow: Flow, *, now: datetime) -> FlowOverview:
    """One flow's state as the tenant should read it. `flow.recent_runs` holds its two latest runs."""
    recent = list(getattr(flow, "recent_runs", []))
    current = next((r for r in recent if r.status in (SyncRun.Status.RUNNING, SyncRun.Status.QUEUED)), None)
    last = next((r for r in recent if r is not current), None) if current else (recent[0] if recent else None)
    next_run = None
    if flow.enabled:
        next_run = (
            flow.paused_until
            if flow.paused_until and (flow.next_run_at is None or flow.paused_until > flow.next_run_at)
            else flow.next_run_at
        )
    common = {"flow": flow, "last_run": last, "current_run": current, "next_run": next_run}
    if _running(flow, now):
        return FlowOverview(state="running", label="Running", **common)
    if not flow.enabled:
        return FlowOverview(
            state="paused",
            label="Paused",
            reason=flow.pause_reason or "Paused by a user. Press Resume on the flow to sync again.",
            **common,
        )
    if flow.paused_until and flow.paused_until > now:
        return FlowOverview(
            state="waiting",
            label="Waiting for the budget",
            resumes_at=flow.paused_until,
            reason=flow.pause_reason or "Pipedrive's daily budget ran low.",
            **common,
        )
    if last is not None and last.status in FAILING and not last.continues:
        reason = last.error or last.last_failure or "The last run did not finish."
        if last.status == SyncRun.Status.PARTIAL and last.last_failure:
            reason = f"{last.failed} record{'s' if last.failed != 1 else ''} failed, e.g. {last.last_failure}"
        return FlowOverview(state="failing", label="Failing", reason=reason, **common)
    if last is None:
        return FlowOverview(state="new", label="Not run yet", **common)
    return FlowOverview(state="active", label="Healthy", **common)


def flow_overview_list(*, tenant: Tenant, now: datetime) -> list[FlowOverview]:
    return [flow_overview(flow, now=now) for flow in _flows_with_runs(tenant=tenant)]


@dataclass
class FlowShare:
    flow: Flow
    tokens: int
    percent: float  # of the tokens used today


@dataclass
class BudgetGauge:
    connection: Connection
    error: str = ""  # the limiter could not be read (broken credentials, unreachable Redis)
    limit: int = 0
    remaining: int = 0
    reserve: int = 0
    resets_at: datetime | None = None
    burst_used: int = 0
    burst_limit: int = 0
    shares: list[FlowShare] = field(default_factory=list)
    other_tokens: int = 0  # tests, webhook registration, other connections to the same company

    @property
    def used(self) -> int:
        return max(0, self.limit - self.remaining)

    @property
    def used_percent(self) -> float:
        return round(100 * self.used / self.limit, 1) if self.limit else 0.0

    @property
    def reserve_percent(self) -> float:
        return round(100 * self.reserve / self.limit, 1) if self.limit else 0.0

    @property
    def burst_percent(self) -> float:
        return round(100 * self.burst_used / self.burst_limit, 1) if self.burst_limit else 0.0

    @property
    def under_reserve(self) -> bool:
        return self.limit > 0 and self.remaining <= self.reserve


def connection_budget(*, connection: Connection, now: datetime) -> BudgetGauge:
    """What the shared limiter holds for this Pipedrive connection's company, and the share of the
    tokens used since the last reset that each of the tenant's flows into it spent."""
    from connectors.pipedrive.client import PipedriveClient

    gauge = BudgetGauge(connection=connection)
    try:
        client = PipedriveClient.from_connection(connection, check_url=False)  # no DNS lookup per page view
    except ConnectorError as exc:
        gauge.error = exc.message
        return gauge
    try:
        limiter = client.limiter
        gauge.remaining, gauge.limit, gauge.resets_at = limiter.budget()
        gauge.reserve = limiter.config.reserve_tokens(gauge.limit)
        gauge.burst_used, gauge.burst_limit = limiter.burst_usage()
    except ConnectorError as exc:
        gauge.error = exc.message
        return gauge
    finally:
        client.session.close()
    day_start = (gauge.resets_at or now) - timedelta(days=1)
    spent = dict(
        SyncRun.objects.filter(
            tenant_id=connection.tenant_id, flow__target=connection, started__gte=day_start
        )
        .order_by()
        .values_list("flow_id")
        .annotate(tokens=Sum("tokens_spent"))
    )
    flows = Flow.objects.filter(pk__in=[pk for pk, tokens in spent.items() if tokens])
    used = gauge.used
    for flow in flows:
        tokens = int(spent[flow.pk])
        gauge.shares.append(
            FlowShare(flow=flow, tokens=tokens, percent=round(100 * tokens / used, 1) if used else 0.0)
        )
    gauge.shares.sort(key=lambda s: -s.tokens)
    gauge.other_tokens = max(0, used - sum(s.tokens for s in gauge.shares))
    return gauge


def budget_list(*, tenant: Tenant, now: datetime) -> list[BudgetGauge]:
    pipedrive = tenant_scope(Connection.objects.filter(system=Connection.System.PIPEDRIVE), tenant=tenant)
    return [connection_budget(connection=c, now=now) for c in pipedrive.order_by("name", "id")]
