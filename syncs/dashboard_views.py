"""The dashboard: connections, every flow's state at a glance, and each Pipedrive company's budget."""

from __future__ import annotations

from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from connectors.selectors import connection_list
from syncs.overview import budget_list, flow_overview_list
from tenants.decorators import tenant_required


def _flows_context(request) -> dict:
    now = timezone.now()
    flows = flow_overview_list(tenant=request.tenant, now=now)
    return {"overviews": flows, "now": now, "any_running": any(f.state == "running" for f in flows)}


@tenant_required
def dashboard(request):
    connections = list(connection_list(tenant=request.tenant))
    return render(
        request,
        "tenants/dashboard.html",
        {
            "connections": connections,
            "has_erp": any(c.system != "pipedrive" for c in connections),
            "has_pipedrive": any(c.system == "pipedrive" for c in connections),
            "budgets": budget_list(tenant=request.tenant, now=timezone.now()),
            **_flows_context(request),
        },
    )


@tenant_required
@require_GET
def dashboard_flows(request):
    """htmx, every 5 s while a flow runs: the flows card, which stops polling once none runs."""
    return render(request, "syncs/_dashboard_flows.html", _flows_context(request))
