"""Portal page of the Pipedrive webhook deliveries (write-back flows): received, refused, processed,
repeated; and reprocessing one delivery as a queued task."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from syncs.forms import WebhookEventFilterForm
from syncs.models import WebhookEvent
from syncs.selectors import webhook_event_list, webhook_rejection_list
from syncs.webhooks import webhook_event_reprocess
from tenants.decorators import tenant_editor_required, tenant_required

PAGE_SIZE = 50


@tenant_required
def webhook_event_list_view(request):
    form = WebhookEventFilterForm(request.GET, tenant=request.tenant)
    filters = form.filters()
    events = Paginator(webhook_event_list(tenant=request.tenant, filters=filters), PAGE_SIZE)
    rejections = Paginator(
        webhook_rejection_list(tenant=request.tenant, connection_id=filters.connection_id), PAGE_SIZE
    )
    page = events.get_page(request.GET.get("page"))
    return render(
        request,
        "syncs/webhook_event_list.html",
        {
            "form": form,
            "page": page,
            "rejections": rejections.get_page(request.GET.get("refused_page")),
            # the list refreshes itself while a shown event waits for a worker (after a reprocess, say)
            "any_waiting": any(e.status == WebhookEvent.Status.STORED for e in page.object_list),
        },
    )


@tenant_editor_required
@require_POST
def webhook_event_reprocess_view(request, id):
    event = get_object_or_404(webhook_event_list(tenant=request.tenant), pk=id)
    webhook_event_reprocess(event=event)
    messages.success(
        request,
        f"Delivery #{event.pk} ({event.object} {event.entity_id}) queued for processing "
        "again; its status changes when a worker has handled it.",
    )
    return redirect("webhook_event_list")
