"""Portal pages for flows, runs and records. Thin: forms for input, services for writes, selectors for reads."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from connectors.base import FlowKind
from syncs.charts import runs_chart
from syncs.forms import (
    FlowCreateForm,
    FlowScheduleForm,
    MappingFormSet,
    RecordFilterForm,
    RunFilterForm,
    StageActionsForm,
    kind_options_for,
    mapping_initial,
)
from syncs.kinds import flow_kind_get
from syncs.live import flow_live, since_parse
from syncs.mapping import STANDARD_FIELDS
from syncs.models import Flow, SyncRecord, SyncRun
from syncs.selectors import (
    RecordFilters,
    flow_list,
    record_failures_outstanding,
    record_history,
    record_list,
    run_list,
    run_search,
)
from syncs.services import (
    FlowBusy,
    flow_create,
    flow_mappings_set,
    flow_pause,
    flow_resume,
    flow_resync,
    flow_schedule_set,
    flow_stage_actions_set,
    replay_queue,
    run_replay_failures_queue,
)
from tenants.decorators import tenant_editor_required, tenant_required
from tenants.selectors import flow_summary_list

PAGE_SIZE = 50
CHAIN_LIMIT = 50  # attempts shown in a record's replay chain


# --- small reads and presentation ------------------------------------------------------------------

@dataclass(frozen=True)
class FlowState:
    code: str  # active | running | waiting | paused
    label: str
    reason: str = ""
    until: datetime | None = None


def flow_state(flow: Flow, *, now: datetime) -> FlowState:
    """The flow's state in plain words, as the tenant should read it."""
    stale_before = now - timedelta(seconds=getattr(settings, "SYNC_CLAIM_STALE_SECONDS", 60))
    if flow.running_since and (flow.heartbeat_at or flow.running_since) >= stale_before:
        return FlowState("running", "Running now")
    if not flow.enabled:
        return FlowState("paused", "Paused", flow.pause_reason or "Paused by a user. Press Resume to sync again.")
    if flow.paused_until and flow.paused_until > now:
        return FlowState("waiting", "Waiting", flow.pause_reason or "Pipedrive's budget ran low.", flow.paused_until)
    return FlowState("active", "Active")


def flow_next_run(flow: Flow) -> datetime | None:
    """When the dispatcher will next start the flow (None while paused by a person or a broken login)."""
    if not flow.enabled:
        return None
    if flow.paused_until and (flow.next_run_at is None or flow.paused_until > flow.next_run_at):
        return flow.paused_until
    return flow.next_run_at


def flow_kind(flow: Flow) -> FlowKind | None:
    try:
        return flow_kind_get(system=flow.source.system, name=flow.kind)
    except LookupError:
        return None


def _flow_present(flow: Flow, *, now: datetime) -> Flow:
    kind = flow_kind(flow)
    flow.kind_label = kind.label if kind else flow.kind
    flow.state = flow_state(flow, now=now)
    flow.next_run = flow_next_run(flow)
    flow.next_run_due = flow.next_run is not None and flow.next_run <= now
    return flow


def duration_text(seconds: float) -> str:
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


def pretty_json(value: Any) -> str:
    return "" if value is None else json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


def run_progress(run: SyncRun) -> dict[str, Any]:
    """Audit rows written so far per outcome (finer than the run's counts, which move once per page)."""
    by_outcome = dict(SyncRecord.objects.filter(run=run).order_by().values_list("outcome").annotate(n=Count("id")))
    return {"written": sum(by_outcome.values()), "by_outcome": by_outcome,
            "elapsed": duration_text(((run.finished or timezone.now()) - run.started).total_seconds())}


def record_chain(record: SyncRecord, *, tenant) -> list[SyncRecord]:
    """Every attempt of this record linked by replays: the first one, then each replay, oldest first."""
    rows = record_list(tenant=tenant).filter(flow_id=record.flow_id)
    root, steps = record, 0
    while root.replay_of_id and steps < CHAIN_LIMIT:
        parent = rows.filter(pk=root.replay_of_id).first()
        if parent is None:
            break
        root, steps = parent, steps + 1
    chain, frontier = [root], [root.pk]
    while frontier and len(chain) < CHAIN_LIMIT:
        children = list(rows.filter(replay_of_id__in=frontier).order_by("id")[:CHAIN_LIMIT])
        chain += children
        frontier = [c.pk for c in children]
    chain.sort(key=lambda r: r.pk)
    number = {r.pk: r.attempt for r in chain}
    for row in chain:
        row.replay_of_attempt = number.get(row.replay_of_id)
    return chain


def _flow_get(request, id) -> Flow:
    return get_object_or_404(flow_list(tenant=request.tenant), pk=id)


def _run_get(request, id) -> SyncRun:
    return get_object_or_404(run_list(tenant=request.tenant), pk=id)


def _record_get(request, id) -> SyncRecord:
    return get_object_or_404(record_list(tenant=request.tenant), pk=id)


# --- writes the services do not have yet (candidates for syncs/services.py) -----------------------

# --- flows ---------------------------------------------------------------------------------------------

@tenant_required
def flow_list_view(request):
    now = timezone.now()
    flows = [_flow_present(f, now=now) for f in flow_summary_list(tenant=request.tenant)]
    for flow in flows:
        flow.last_run = flow.last_runs[0] if flow.last_runs else None
    return render(request, "syncs/flow_list.html", {"flows": flows})


@tenant_editor_required
@require_http_methods(["GET", "POST"])
def flow_create_view(request):
    form = FlowCreateForm(request.POST or None, tenant=request.tenant)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            flow = flow_create(tenant=request.tenant, source=data["source"], target=data["target"],
                               kind=data["kind_name"], name=data["name"], interval_minutes=data["interval_minutes"],
                               options={"create_missing_fields": data["create_missing_fields"]},
                               enabled=data["start_now"])
        except (ValueError, LookupError) as exc:
            form.add_error(None, str(exc))
        else:
            if data["start_now"]:
                messages.success(request, f"Created “{flow.name}”. Its first run starts within a minute, then "
                                          f"every {flow.interval_minutes} min.")
            else:
                flow_pause(flow=flow, reason="Not started yet: check the field mappings, then press Resume.")
                messages.success(request, f"Created “{flow.name}”, paused. Check the field mappings below, "
                                          "then press Resume.")
            return redirect("flow_detail", id=flow.pk)
    return render(request, "syncs/flow_form.html", {"form": form})


@tenant_editor_required
@require_GET
def flow_kind_options(request):
    """htmx: the <option>s of what the chosen ERP connection can sync."""
    form = FlowCreateForm(tenant=request.tenant)
    raw = request.GET.get("source", "")
    source = form.fields["source"].queryset.filter(pk=raw).first() if raw.isdigit() else None
    return render(request, "syncs/_kind_options.html", {"groups": kind_options_for(source, form.erp_systems)})


def _stage_form(flow: Flow, kind: FlowKind | None, data=None) -> StageActionsForm | None:
    if kind is None or kind.writeback is None or kind.writeback.mode != "action":
        return None
    return StageActionsForm(data, actions=[name for name, _ in kind.writeback.actions],
                            table=(flow.options or {}).get("stage_actions") or {})


def _flow_page(request, flow: Flow, *, mapping_formset=None, schedule_form=None, stage_form=None):
    _flow_present(flow, now=timezone.now())
    kind = flow_kind(flow)
    entity = kind.target_entity if kind else "organizations"
    mappings = list(flow.mappings.all())
    custom = sorted({m.target for m in mappings if m.target.startswith("custom:")})
    runs = list(run_list(tenant=request.tenant, flow=flow)[:10])
    now = timezone.now()
    live = flow_live(flow=flow, now=now, since=since_parse(request.GET.get("since"), now=now))
    return render(request, "syncs/flow_detail.html", {
        "live": live,
        "chart": runs_chart(runs=live["runs"]),
        "flow": flow,
        "kind": kind,
        "entity": entity,
        "mappings": mappings,
        "mapping_formset": mapping_formset or MappingFormSet(initial=mapping_initial(flow), entity=entity),
        "schedule_form": schedule_form or FlowScheduleForm.for_flow(flow),
        "stage_form": stage_form or _stage_form(flow, kind),
        "target_suggestions": [*sorted(STANDARD_FIELDS.get(entity, {})), *custom],
        "runs": runs,
        "current_run": next((r for r in runs if r.status == SyncRun.Status.RUNNING), None),
        "failures_outstanding": record_failures_outstanding(flow=flow).count(),
    })


@tenant_required
def flow_detail(request, id):
    return _flow_page(request, _flow_get(request, id))


@tenant_required
@require_GET
def flow_live_view(request, id):
    """htmx, every 2 s while a run is queued or running: state, progress bar, last run and the chart."""
    now = timezone.now()
    flow = _flow_present(_flow_get(request, id), now=now)
    live = flow_live(flow=flow, now=now, since=since_parse(request.GET.get("since"), now=now))
    return render(request, "syncs/_flow_live.html", {"flow": flow, "live": live, "chart": runs_chart(runs=live["runs"])})


@tenant_editor_required
@require_POST
def flow_mappings_view(request, id):
    flow = _flow_get(request, id)
    kind = flow_kind(flow)
    formset = MappingFormSet(request.POST, entity=kind.target_entity if kind else "organizations")
    if formset.is_valid():
        flow_mappings_set(flow=flow, rows=formset.rows())
        messages.success(request, "Saved the field mappings. They apply to records the next runs send.")
        return redirect("flow_detail", id=flow.pk)
    messages.error(request, "The field mappings were not saved: see the highlighted rows.")
    return _flow_page(request, flow, mapping_formset=formset)


@tenant_editor_required
@require_POST
def flow_stage_actions_view(request, id):
    flow = _flow_get(request, id)
    form = _stage_form(flow, flow_kind(flow), request.POST)
    if form is None:
        raise Http404("This flow has no stage table.")
    if form.is_valid():
        try:
            flow_stage_actions_set(flow=flow, table=form.cleaned_data["table"])
        except ValueError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, "Saved the stage table. It applies to the next stage changes.")
            return redirect("flow_detail", id=flow.pk)
    messages.error(request, "The stage table was not saved: see the highlighted boxes.")
    return _flow_page(request, flow, stage_form=form)


@tenant_editor_required
@require_GET
def flow_mapping_row(request, id):
    """htmx: one blank mapping row for form index N (the current TOTAL_FORMS), and TOTAL_FORMS + 1."""
    flow = _flow_get(request, id)
    kind = flow_kind(flow)
    formset = MappingFormSet(entity=kind.target_entity if kind else "organizations")
    raw = request.GET.get(f"{formset.prefix}-TOTAL_FORMS", "")
    index = min(int(raw), 199) if raw.isdigit() else 0
    html = render_to_string("syncs/_mapping_row.html", {
        "form": formset.empty_form, "prefix": formset.prefix, "total": index + 1, "oob": True,
    }, request=request)
    return HttpResponse(html.replace("__prefix__", str(index)))


@tenant_editor_required
@require_POST
def flow_schedule_view(request, id):
    flow = _flow_get(request, id)
    form = FlowScheduleForm.for_flow(flow, request.POST)
    if form.is_valid():
        flow = flow_schedule_set(flow=flow, **form.cleaned_data)
        messages.success(request, f"Saved. “{flow.name}” runs every {flow.interval_minutes} min.")
        return redirect("flow_detail", id=flow.pk)
    return _flow_page(request, flow, schedule_form=form)


@tenant_editor_required
@require_POST
def flow_run_now(request, id):
    from django_q.tasks import async_task

    flow = _flow_get(request, id)
    if flow_state(flow, now=timezone.now()).code == "running":
        messages.info(request, f"“{flow.name}” is running right now; its progress is on the run's page.")
        return redirect("flow_detail", id=flow.pk)
    async_task("syncs.tasks.flow_run_task", flow.pk, "manual", task_name=f"flow-{flow.pk}-manual")
    messages.success(request, f"Run queued: “{flow.name}” starts as soon as a worker is free. "
                              "It appears under Recent runs.")
    # the page watches for the run to start (and then its progress) instead of waiting for a reload
    return redirect(f"{reverse('flow_detail', kwargs={'id': flow.pk})}?since={time.time():.3f}")


@tenant_editor_required
@require_POST
def flow_pause_view(request, id):
    flow = flow_pause(flow=_flow_get(request, id), reason=f"Paused by {request.user.get_username()}.")
    messages.success(request, f"Paused “{flow.name}”. It will not run until you resume it.")
    return redirect("flow_detail", id=flow.pk)


@tenant_editor_required
@require_POST
def flow_resync_view(request, id):
    flow = flow_resync(flow=_flow_get(request, id))
    messages.success(request, f"“{flow.name}” will read every ERP record again on its next run and recreate "
                              "anything deleted in Pipedrive. Records that did not change cost no Pipedrive calls.")
    return redirect("flow_detail", id=flow.pk)


@tenant_editor_required
@require_POST
def flow_resume_view(request, id):
    flow = flow_resume(flow=_flow_get(request, id))
    messages.success(request, f"Resumed “{flow.name}”. It runs within a minute.")
    return redirect("flow_detail", id=flow.pk)


# --- runs ----------------------------------------------------------------------------------------------

@tenant_required
def run_list_view(request):
    form = RunFilterForm(request.GET, tenant=request.tenant)
    runs = run_search(tenant=request.tenant, filters=form.filters())
    page = Paginator(runs, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "syncs/run_list.html", {"form": form, "flow": form.cleaned_data.get("flow"), "page": page})


def _run_context(request, run: SyncRun) -> dict[str, Any]:
    return {
        "run": run,
        "progress": run_progress(run),
        "failed_outstanding": record_failures_outstanding(flow=run.flow).filter(run=run).count(),
    }


@tenant_required
def run_detail(request, id):
    run = _run_get(request, id)
    records = record_list(tenant=request.tenant, filters=RecordFilters(run_id=run.pk))
    page = Paginator(records, PAGE_SIZE).get_page(request.GET.get("page"))
    for record in page.object_list:
        record.payload_text, record.source_text = pretty_json(record.payload), pretty_json(record.source_data)
    return render(request, "syncs/run_detail.html", {**_run_context(request, run), "page": page})


@tenant_required
@require_GET
def run_progress_view(request, id):
    """htmx, every 2 s while the run is running: the status card, which stops polling once it ends."""
    return render(request, "syncs/_run_status.html", _run_context(request, _run_get(request, id)))


@tenant_editor_required
@require_POST
def run_replay_view(request, id):
    """Queues the replay on a worker; the new run's page shows it queued, then its progress and counts."""
    run = _run_get(request, id)
    try:
        replays = run_replay_failures_queue(run=run, actor=request.user)
    except FlowBusy as exc:
        messages.error(request, f"Not replayed: {exc}")
        return redirect("run_detail", id=run.pk)
    if not replays:
        messages.info(request, "This run has no failed records to replay.")
        return redirect("run_detail", id=run.pk)
    messages.success(request, f"Replay queued as run #{replays[0].pk}: its counts appear below when it finishes.")
    return redirect("run_detail", id=replays[0].pk)


# --- records -------------------------------------------------------------------------------------------

@tenant_required
def record_list_view(request):
    form = RecordFilterForm(request.GET, tenant=request.tenant)
    records = record_list(tenant=request.tenant, filters=form.filters())
    page = Paginator(records, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "syncs/record_list.html", {"form": form, "page": page})


@tenant_required
def record_detail(request, id):
    record = _record_get(request, id)
    return render(request, "syncs/record_detail.html", {
        "record": record,
        "payload": pretty_json(record.payload),
        "source_data": pretty_json(record.source_data),
        "chain": record_chain(record, tenant=request.tenant),
        "history": list(record_history(record=record)[:CHAIN_LIMIT * 4]),
    })


@tenant_editor_required
@require_POST
def record_replay_view(request, id):
    """Queues the replay on a worker and shows the replay run, which reports the new attempt when done."""
    record = _record_get(request, id)
    if record.outcome != SyncRecord.Outcome.FAILED:
        messages.error(request, "Only failed records can be replayed.")
        return redirect("record_detail", id=record.pk)
    try:
        replay = replay_queue(records=[record], actor=request.user)[0]
    except FlowBusy as exc:
        messages.error(request, f"Not replayed: {exc}")
        return redirect("record_detail", id=record.pk)
    messages.success(request, f"Replay of {record.external_id} queued as run #{replay.pk}: the new attempt "
                              "appears below when it finishes.")
    return redirect("run_detail", id=replay.pk)
