"""Reads of flows, runs and audit rows — always narrowed to one tenant."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Exists, OuterRef, QuerySet

from syncs.models import Flow, RecordLink, SyncRecord, SyncRun
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
