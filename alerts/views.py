"""Portal alerts page: the messages sent, and the tenant's alert webhook (owners and admins)."""

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from alerts.models import Alert
from alerts.selectors import alert_list, alert_webhook_masked
from alerts.services import alert_settings_update
from tenants.decorators import tenant_editor_required, tenant_required


class WebhookForm(forms.Form):
    webhook_url = forms.CharField(
        label="Webhook URL (Slack-compatible)",
        required=False,
        max_length=500,
        help_text='We POST {"text": …} to it. Leave empty to turn the webhook off.',
    )


def _page(request, *, form=None, status=200):
    kind = request.GET.get("kind") or None
    return render(
        request,
        "alerts/alert_list.html",
        {
            "alerts": alert_list(tenant=request.tenant, kind=kind)[:100],
            "kinds": Alert.Kind.choices,
            "kind": kind,
            "webhook_masked": alert_webhook_masked(tenant=request.tenant),
            "form": form or WebhookForm(),
            "can_edit": request.membership.can_edit,
        },
        status=status,
    )


@tenant_required
def alert_list_view(request):
    return _page(request)


@tenant_editor_required
@require_POST
def alert_settings_view(request):
    form = WebhookForm(request.POST)
    if form.is_valid():
        try:
            alert_settings_update(tenant=request.tenant, webhook_url=form.cleaned_data["webhook_url"])
        except ValidationError as exc:
            form.add_error("webhook_url", exc.message_dict.get("webhook_url", exc.messages))
        else:
            messages.success(
                request,
                "Alert webhook saved." if form.cleaned_data["webhook_url"] else "Alert webhook turned off.",
            )
            return redirect("alert_list")
    return _page(request, form=form, status=400)
