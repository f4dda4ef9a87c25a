"""The onboarding wizard's pages. Thin: connection forms and services from connectors/syncs, the
wizard's own services for the rest; the look-ups run on workers and the pages poll them (htmx)."""

from __future__ import annotations

import secrets
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from connectors.base import ConnectorError
from connectors.forms import ConnectionForm
from connectors.models import Connection
from connectors.pipedrive.oauth import _oauth_url, oauth_exchange_code
from connectors.services import connection_create
from onboarding.forms import FieldCreateForm, FlowsForm, MappingAddForm, ScheduleForm
from onboarding.models import WizardJob
from onboarding.sandbox import sandbox_connections_create, sandbox_offered
from onboarding.services import (
    erp_choices,
    wizard_enable,
    wizard_flows_create,
    wizard_job_queue,
    wizard_mapping_add,
)
from syncs.kinds import flow_kinds
from syncs.models import Flow
from syncs.selectors import flow_list
from tenants.decorators import tenant_editor_required

SESSION_KEY = "onboarding"
STEPS = (
    ("start", "Choose the ERP"),
    ("erp", "Connect the ERP"),
    ("pipedrive", "Connect Pipedrive"),
    ("flows", "Choose flows"),
    ("map", "Map fields"),
    ("schedule", "Schedule and enable"),
)


def _state(request) -> dict:
    return dict(request.session.get(SESSION_KEY) or {})


def _save(request, **changes) -> dict:
    state = {**_state(request), **changes}
    request.session[SESSION_KEY] = state
    return state


def _render(request, template: str, step: str, context: dict):
    return render(request, template, {"steps": STEPS, "step": step, "wizard": _state(request), **context})


def _connection(request, key: str) -> Connection | None:
    pk = _state(request).get(key)
    return Connection.objects.filter(tenant=request.tenant, pk=pk).first() if pk else None


def _flows(request) -> list[Flow]:
    ids = _state(request).get("flow_ids") or []
    by_id = {f.pk: f for f in flow_list(tenant=request.tenant).filter(pk__in=ids)}
    return [by_id[i] for i in ids if i in by_id]


# --- 1. choose the ERP -------------------------------------------------------------------------------


@tenant_editor_required
@require_http_methods(["GET", "POST"])
def wizard_start(request):
    choices = erp_choices()
    if request.method == "POST":
        system = request.POST.get("system", "")
        chosen = next((c for c in choices if c["key"] == system and c["available"]), None)
        if chosen is None:
            messages.error(request, "Choose one of the available ERPs.")
            return redirect("wizard_start")
        if request.POST.get("sandbox") and sandbox_offered(system=system):
            try:
                erp, pipedrive = sandbox_connections_create(tenant=request.tenant, system=system)
            except (ConnectorError, ValidationError) as exc:
                messages.error(request, getattr(exc, "message", None) or " ".join(exc.messages))
                return redirect("wizard_start")
            _save(request, system=system, erp_id=erp.pk, pipedrive_id=pipedrive.pk, flow_ids=[], sandbox=True)
            messages.success(
                request,
                "Sandbox companies are ready and both connections are filled in. Test them, then carry on.",
            )
        else:
            request.session[SESSION_KEY] = {"system": system, "flow_ids": []}
        return redirect("wizard_erp")
    return _render(request, "onboarding/start.html", "start", {"choices": choices})


# --- 2 and 3. connect both systems -----------------------------------------------------------------------


def _connect_page(request, *, system: str, key: str, step: str, next_url: str):
    connection = _connection(request, key)
    form = None
    existing = list(Connection.objects.filter(tenant=request.tenant, system=system).order_by("name"))
    if connection is None and request.method == "POST" and request.POST.get("use"):
        chosen = next((c for c in existing if str(c.pk) == request.POST["use"]), None)
        if chosen is not None:  # "Add a flow" later on: reuse a stored connection
            _save(request, **{key: chosen.pk})
            return redirect(request.path)
    if connection is None:
        form = ConnectionForm(request.POST or None, system=system)
        if request.method == "POST" and form.is_valid():
            try:
                connection = connection_create(tenant=request.tenant, system=system, **form.service_kwargs())
            except ValidationError as exc:
                form.add_service_errors(exc)
            else:
                _save(request, **{key: connection.pk})
                if system == "pipedrive" and (connection.options or {}).get("auth") == "oauth":
                    return _oauth_start(request, connection)
                messages.success(request, f"Saved “{connection.name}”. Test it to check the credentials.")
                return redirect(request.path)
    return _render(
        request,
        "onboarding/connect.html",
        step,
        {
            "connection": connection,
            "form": form,
            "system_label": Connection.System(system).label,
            "next_url": next_url,
            "is_pipedrive": system == "pipedrive",
            "existing": existing,
        },
    )


@tenant_editor_required
@require_http_methods(["GET", "POST"])
def wizard_erp(request):
    system = _state(request).get("system")
    if not system:
        return redirect("wizard_start")
    return _connect_page(
        request, system=system, key="erp_id", step="erp", next_url=reverse("wizard_pipedrive")
    )


@tenant_editor_required
@require_http_methods(["GET", "POST"])
def wizard_pipedrive(request):
    if not _state(request).get("system"):
        return redirect("wizard_start")
    return _connect_page(
        request, system="pipedrive", key="pipedrive_id", step="pipedrive", next_url=reverse("wizard_flows")
    )


@tenant_editor_required
@require_POST
def wizard_connection_forget(request, key):
    """Start a step's connection again (a typo in the URL, another account); the stored one stays listed
    under Connections."""
    if key not in ("erp_id", "pipedrive_id"):
        raise Http404
    _save(request, **{key: None})
    return redirect("wizard_erp" if key == "erp_id" else "wizard_pipedrive")


def _oauth_redirect_uri(request) -> str:
    return request.build_absolute_uri(reverse("wizard_oauth_callback"))


def _oauth_start(request, connection: Connection):
    state = secrets.token_urlsafe(24)
    _save(request, oauth_state=state)
    query = urlencode(
        {
            "client_id": (connection.options or {}).get("client_id", ""),
            "redirect_uri": _oauth_redirect_uri(request),
            "state": state,
        }
    )
    return redirect(f"{_oauth_url().rstrip('/')}/oauth/authorize?{query}")


@tenant_editor_required
@require_GET
def wizard_oauth_callback(request):
    """Pipedrive sends the browser back here with an authorization code: trade it for tokens."""
    state = _state(request)
    connection = _connection(request, "pipedrive_id")
    expected = state.get("oauth_state")
    if (
        connection is None
        or not expected
        or not secrets.compare_digest(request.GET.get("state", ""), expected)
    ):
        messages.error(request, "That Pipedrive authorisation did not come from this wizard; connect again.")
        return redirect("wizard_pipedrive")
    _save(request, oauth_state=None)
    if request.GET.get("error") or not request.GET.get("code"):
        messages.error(request, "Pipedrive did not authorise the app. Try again, or use an API token.")
        return redirect("wizard_pipedrive")
    try:
        oauth_exchange_code(
            connection=connection, code=request.GET["code"], redirect_uri=_oauth_redirect_uri(request)
        )
    except ConnectorError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request, "Pipedrive authorised the app. Test the connection to see your company and budget."
        )
    return redirect("wizard_pipedrive")


@tenant_editor_required
@require_POST
def wizard_oauth_restart(request):
    connection = _connection(request, "pipedrive_id")
    if connection is None or (connection.options or {}).get("auth") != "oauth":
        return redirect("wizard_pipedrive")
    return _oauth_start(request, connection)


# --- 4. choose flows ---------------------------------------------------------------------------------------


@tenant_editor_required
@require_http_methods(["GET", "POST"])
def wizard_flows(request):
    erp, pipedrive = _connection(request, "erp_id"), _connection(request, "pipedrive_id")
    if erp is None or pipedrive is None:
        messages.info(request, "Connect both systems first.")
        return redirect("wizard_erp" if erp is None else "wizard_pipedrive")
    kinds = flow_kinds(erp.system)
    chosen = [f.kind for f in _flows(request)]
    form = FlowsForm(request.POST or None, kinds=kinds, initial={"kinds": chosen or list(kinds)[:1]})
    if request.method == "POST" and form.is_valid():
        try:
            flows = wizard_flows_create(
                tenant=request.tenant, source=erp, target=pipedrive, kinds=form.cleaned_data["kinds"]
            )
        except (ValueError, LookupError) as exc:
            form.add_error("kinds", str(exc))
        else:
            _save(request, flow_ids=[f.pk for f in flows])
            return redirect("wizard_map", flow_id=flows[0].pk)
    return _render(request, "onboarding/flows.html", "flows", {"form": form, "erp": erp, "kinds": kinds})


# --- 5. map fields ----------------------------------------------------------------------------------------------


def _latest_job(
    request, *, kind: str, flow: Flow | None = None, kinds: tuple[str, ...] = ()
) -> WizardJob | None:
    jobs = WizardJob.objects.filter(tenant=request.tenant, kind__in=kinds or (kind,))
    if flow is not None:
        jobs = jobs.filter(flow=flow)
    return jobs.order_by("-created", "-id").first()


@tenant_editor_required
@require_http_methods(["GET", "POST"])
def wizard_map(request, flow_id):
    flows = _flows(request)
    flow = next((f for f in flows if f.pk == flow_id), None)
    if flow is None:
        raise Http404("This flow is not part of the wizard.")
    add_form = MappingAddForm(request.POST if request.POST.get("action") == "add" else None)
    create_form = FieldCreateForm(request.POST if request.POST.get("action") == "create" else None)
    if request.method == "POST":
        if add_form.is_bound and add_form.is_valid():
            wizard_mapping_add(flow=flow, **add_form.cleaned_data)
            wizard_job_queue(tenant=request.tenant, kind=WizardJob.Kind.MAP, flow=flow)
            messages.success(
                request,
                f"Mapped {add_form.cleaned_data['source']} → "
                f"{add_form.cleaned_data['target']}. The preview is being refreshed.",
            )
            return redirect("wizard_map", flow_id=flow.pk)
        if create_form.is_bound and create_form.is_valid():
            wizard_job_queue(
                tenant=request.tenant,
                kind=WizardJob.Kind.FIELD_CREATE,
                flow=flow,
                params=create_form.cleaned_data,
            )
            messages.success(
                request, f"Creating the field “{create_form.cleaned_data['name']}” in Pipedrive…"
            )
            return redirect("wizard_map", flow_id=flow.pk)
        if request.POST.get("action") == "refresh":
            wizard_job_queue(tenant=request.tenant, kind=WizardJob.Kind.MAP, flow=flow)
            return redirect("wizard_map", flow_id=flow.pk)
    job = _latest_job(
        request, kind=WizardJob.Kind.MAP, flow=flow, kinds=(WizardJob.Kind.MAP, WizardJob.Kind.FIELD_CREATE)
    )
    if job is None:  # first visit: fetch the field list and preview (read-only look-ups)
        job = wizard_job_queue(tenant=request.tenant, kind=WizardJob.Kind.MAP, flow=flow)
    index = flows.index(flow)
    next_url = (
        reverse("wizard_map", kwargs={"flow_id": flows[index + 1].pk})
        if index + 1 < len(flows)
        else reverse("wizard_schedule")
    )
    return _render(
        request,
        "onboarding/map.html",
        "map",
        {
            "flow": flow,
            "flows": flows,
            "job": job,
            "mappings": list(flow.mappings.all()),
            "add_form": add_form,
            "create_form": create_form,
            "next_url": next_url,
        },
    )


@tenant_editor_required
@require_GET
def wizard_job_status(request, job_id):
    """htmx, every second while a look-up is pending: its fragment, which stops polling once it is stored."""
    job = get_object_or_404(WizardJob.objects.filter(tenant=request.tenant), pk=job_id)
    template = (
        "onboarding/_estimate_job.html" if job.kind == WizardJob.Kind.ESTIMATE else "onboarding/_map_job.html"
    )
    return render(
        request,
        template,
        {"job": job, "flow": job.flow, "add_form": MappingAddForm(), "create_form": FieldCreateForm()},
    )


# --- 6. schedule, estimate, enable ------------------------------------------------------------------------------------


@tenant_editor_required
@require_http_methods(["GET", "POST"])
def wizard_schedule(request):
    flows = _flows(request)
    if not flows:
        return redirect("wizard_flows")
    form = ScheduleForm(request.POST or None, initial={"interval_minutes": flows[0].interval_minutes})
    if request.method == "POST" and form.is_valid():
        enabled = wizard_enable(flows=flows, interval_minutes=form.cleaned_data["interval_minutes"])
        request.session.pop(SESSION_KEY, None)
        messages.success(
            request,
            f"Enabled {len(enabled)} flow{'s' if len(enabled) != 1 else ''}. The first sync "
            "has started: watch it below.",
        )
        return redirect("flow_detail", id=enabled[0].pk)
    ids = sorted(f.pk for f in flows)
    job = _latest_job(request, kind=WizardJob.Kind.ESTIMATE)
    if job is None or sorted(job.params.get("flow_ids") or []) != ids or request.GET.get("refresh"):
        job = wizard_job_queue(tenant=request.tenant, kind=WizardJob.Kind.ESTIMATE, params={"flow_ids": ids})
    return _render(
        request, "onboarding/schedule.html", "schedule", {"flows": flows, "form": form, "job": job}
    )
