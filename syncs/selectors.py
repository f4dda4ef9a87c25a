"""Reads of flows, runs and audit rows — always narrowed to one tenant."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from syncs.models import Flow, RecordLink, SyncRecord, SyncRun, WebhookEvent, WebhookRejection
from tenants.models import Tenant
from tenants.selectors import tenant_scope


def flow_list(*, tenant: Tenant) -> QuerySet[Flow]:
    return tenant_scope(Flow.objects.select_related("source", "target"), tenant=tenant)


def flow_get(*, tenant: Tenant, flow_id: int) -> Flow:
    return flow_list(tenant=tenant).get(pk=flow_id)


def run_list(*, tenant: Tenant, flow: Flow | None = None) -> QuerySet[SyncRun]:
    qs = tenant_scope(SyncRun.objects.select_related("flow"), tenant=tenant)
    return qs.filter(flow=flow) if flow else qs


@dataclass
class RunFilters:
    flow_id: int | None = None
    status: str | None = None
    trigger: str | None = None
    started_from: date | None = None  # inclusive, UTC days
    started_to: date | None = None  # inclusive
    search: str | None = None  # run number, words of its error, or an external id it touched


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min), timezone.get_current_timezone())


def run_search(*, tenant: Tenant, filters: RunFilters | None = None) -> QuerySet[SyncRun]:
    f = filters or RunFilters()
    qs = tenant_scope(SyncRun.objects.select_related("flow"), tenant=tenant)
    for name in ("flow_id", "status", "trigger"):
        if getattr(f, name) not in (None, ""):
            qs = qs.filter(**{name: getattr(f, name)})
    if f.started_from:
        qs = qs.filter(started__gte=_day_start(f.started_from))
    if f.started_to:
        qs = qs.filter(started__lt=_day_start(f.started_to + timedelta(days=1)))
    text = (f.search or "").strip().lstrip("#")
    if text:
        touched = SyncRecord.objects.filter(run=OuterRef("pk"), external_id=text)
        match = Q(error__icontains=text) | Exists(touched)
        if text.isdigit():
            match |= Q(pk=int(text))
        qs = qs.filter(match)
    return qs.order_by("-started", "-id")


@dataclass
class RecordFilters:
    flow_id: int | None = None
    run_id: int | None = None
    outcome: str | None = None
    action: str | None = None
    external_id: str | None = None
    error_kind: str | None = None


def record_list(*, tenant: Tenant, filters: RecordFilters | None = None) -> QuerySet[SyncRecord]:
    qs = tenant_scope(SyncRecord.objects.select_related("flow", "run"), tenant=tenant)
    f = filters or RecordFilters()
    for name, lookup in (("flow_id", "flow_id"), ("run_id", "run_id"), ("outcome", "outcome"),
                         ("action", "action"), ("error_kind", "error_kind")):
        value = getattr(f, name)
        if value not in (None, ""):
            qs = qs.filter(**{lookup: value})
    if f.external_id:
        qs = qs.filter(external_id__icontains=f.external_id)
    return qs


def record_history(*, record: SyncRecord) -> QuerySet[SyncRecord]:
    """Every attempt at the same source record in the same flow, oldest first: first sends, the runs'
    automatic retries and replays alike (the record's tenant is the record's own)."""
    return (SyncRecord.objects.filter(tenant_id=record.tenant_id, flow_id=record.flow_id,
                                      source_object=record.source_object, external_id=record.external_id)
            .select_related("run").order_by("id"))


def record_failures_outstanding(*, flow: Flow) -> QuerySet[SyncRecord]:
    """Failed rows of a flow that are the latest attempt for their record (nothing tried it since)."""
    later = SyncRecord.objects.filter(flow=flow, external_id=OuterRef("external_id"), id__gt=OuterRef("id"))
    return SyncRecord.objects.filter(flow=flow, outcome=SyncRecord.Outcome.FAILED).exclude(Exists(later)).order_by("id")


def writeback_flows(*, connection) -> list[Flow]:
    """Enabled write-back flows fed by this Pipedrive connection's deal events (the connection belongs
    to one tenant, so this stays inside it)."""
    from syncs.writeback import writeback_kind

    flows = Flow.objects.select_related("source", "target").filter(target=connection, enabled=True)
    return [flow for flow in flows if writeback_kind(flow) is not None]


def link_list(*, tenant: Tenant) -> QuerySet[RecordLink]:
    return tenant_scope(RecordLink.objects.all(), tenant=tenant)


@dataclass
class WebhookEventFilters:
    connection_id: int | None = None
    status: str | None = None
    object: str | None = None
    entity_id: str | None = None
    duplicates_only: bool = False


def webhook_event_list(*, tenant: Tenant, filters: WebhookEventFilters | None = None) -> QuerySet[WebhookEvent]:
    f = filters or WebhookEventFilters()
    qs = tenant_scope(WebhookEvent.objects.select_related("connection"), tenant=tenant, field="connection__tenant")
    for name in ("connection_id", "status", "object", "entity_id"):
        if getattr(f, name) not in (None, ""):
            qs = qs.filter(**{name: getattr(f, name)})
    if f.duplicates_only:
        qs = qs.filter(duplicates__gt=0)
    return qs.order_by("-id")


def webhook_rejection_list(*, tenant: Tenant, connection_id: int | None = None) -> QuerySet[WebhookRejection]:
    qs = tenant_scope(WebhookRejection.objects.select_related("connection"), tenant=tenant,
                      field="connection__tenant")
    return (qs.filter(connection_id=connection_id) if connection_id else qs).order_by("-id")
