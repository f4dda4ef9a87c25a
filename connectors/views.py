"""Portal pages for connections. Thin: forms for input, services for writes, selectors for reads."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from connectors.forms import ConnectionForm
from connectors.models import Connection
from connectors.selectors import connection_get, connection_list
from connectors.services import (
    connection_create,
    connection_delete,
    connection_ping_queue,
    connection_update,
)
from tenants.decorators import tenant_editor_required, tenant_required


@tenant_required
def connection_list_view(request):
    return render(request, "connectors/connection_list.html", {
        "connections": connection_list(tenant=request.tenant),
    })


@tenant_editor_required
def connection_system_pick(request):
    return render(request, "connectors/connection_system_pick.html", {"systems": Connection.System.choices})


@tenant_editor_required
@require_http_methods(["GET", "POST"])
def connection_create_view(request, system):
    if system not in Connection.System.values:
        raise Http404("Unknown system.")
    form = ConnectionForm(request.POST or None, system=system)
    if request.method == "POST" and form.is_valid():
        try:
            connection = connection_create(tenant=request.tenant, system=system, **form.service_kwargs())
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            messages.success(request, f"Saved “{connection.name}”. Test it to check the credentials.")
            return redirect("connection_detail", id=connection.pk)
    return render(request, "connectors/connection_form.html", {
        "form": form, "system_label": Connection.System(system).label, "connection": None,
    })


@tenant_required
def connection_detail(request, id):
    connection = connection_get(tenant=request.tenant, id=id)
    return render(request, "connectors/connection_detail.html", {"connection": connection})


@tenant_editor_required
@require_http_methods(["GET", "POST"])
def connection_update_view(request, id):
    connection = connection_get(tenant=request.tenant, id=id)
    form = ConnectionForm(request.POST or None, system=connection.system, connection=connection)
    if request.method == "POST" and form.is_valid():
        try:
            connection = connection_update(connection=connection, **form.service_kwargs())
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            messages.success(request, f"Saved “{connection.name}”.")
            return redirect("connection_detail", id=connection.pk)
    return render(request, "connectors/connection_form.html", {
        "form": form, "system_label": connection.get_system_display(), "connection": connection,
    })


@tenant_editor_required
@require_http_methods(["GET", "POST"])
def connection_delete_view(request, id):
    connection = connection_get(tenant=request.tenant, id=id)
    if request.method == "POST":
        try:
            connection_delete(connection=connection)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
            return redirect("connection_detail", id=connection.pk)
        messages.success(request, f"Deleted “{connection.name}”.")
        return redirect("connection_list")
    return render(request, "connectors/connection_confirm_delete.html", {"connection": connection})


@tenant_editor_required
@require_POST
def connection_ping_view(request, id):
    """Queues the test on a worker and answers at once: htmx requests get the result fragment showing
    "Testing…" (it polls `connection_ping_status` until the outcome is stored), plain posts a redirect."""
    connection = connection_ping_queue(connection=connection_get(tenant=request.tenant, id=id))
    if request.headers.get("HX-Request"):
        return render(request, "connectors/_ping_result.html", {"connection": connection, "oob": True})
    if connection.ping_pending:
        messages.info(request, "Testing the connection: the result appears below in a few seconds.")
    return redirect("connection_detail", id=connection.pk)


@tenant_required
@require_GET
def connection_ping_status(request, id):
    """htmx, every second while a test is pending: the result fragment, which stops polling once it is stored."""
    connection = connection_get(tenant=request.tenant, id=id)
    return render(request, "connectors/_ping_result.html", {"connection": connection, "oob": True})
