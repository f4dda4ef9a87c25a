"""Portal replays of a selection (checkboxes on the records and run pages) and of all a flow's failures.

Each queues django-q2 tasks (one replay run per flow) and lands on the runs list filtered to replays,
where the queued runs show their status until a worker has sent them."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from syncs.forms import ReplaySelectionForm
from syncs.models import SyncRun
from syncs.selectors import flow_list
from syncs.services import FlowBusy, flow_replay_failures_queue, records_replay_selection_queue
from tenants.decorators import tenant_editor_required


def _back(request, default: str) -> str:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default


def _queued(request, runs: list[SyncRun], *, nothing: str, back: str):
    if not runs:
        messages.info(request, nothing)
        return redirect(back)
    numbers = ", ".join(f"#{r.pk}" for r in runs)
    messages.success(
        request,
        f"Replay queued as run{'s' if len(runs) > 1 else ''} {numbers}: "
        "the status below moves from queued to finished when a worker has sent them.",
    )
    if len(runs) == 1:
        return redirect("run_detail", id=runs[0].pk)
    return redirect(f"{reverse('run_list')}?trigger={SyncRun.Trigger.REPLAY}")


@tenant_editor_required
@require_POST
def records_replay_selection_view(request):
    back = _back(request, reverse("record_list"))
    form = ReplaySelectionForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return redirect(back)
    try:
        runs = records_replay_selection_queue(
            tenant=request.tenant, record_ids=form.cleaned_data["record"], actor=request.user
        )
    except FlowBusy as exc:
        messages.error(request, f"Not replayed: {exc}")
        return redirect(back)
    return _queued(request, runs, back=back, nothing="None of the ticked records failed: nothing to replay.")


@tenant_editor_required
@require_POST
def flow_replay_failures_view(request, id):
    flow = get_object_or_404(flow_list(tenant=request.tenant), pk=id)
    back = _back(request, reverse("flow_detail", kwargs={"id": flow.pk}))
    try:
        runs = flow_replay_failures_queue(flow=flow, actor=request.user)
    except FlowBusy as exc:
        messages.error(request, f"Not replayed: {exc}")
        return redirect(back)
    return _queued(
        request, runs, back=back, nothing=f"“{flow.name}” has no failed records waiting for a replay."
    )
