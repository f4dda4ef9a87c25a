"""Reads for alerts, scoped to one tenant."""

from __future__ import annotations

from django.db.models import QuerySet

from alerts.models import Alert, AlertSettings, AlertState
from tenants.models import Tenant
from tenants.selectors import tenant_scope


def alert_list(
    *, tenant: Tenant, kind: str | None = None, level: str | None = None, subject: str | None = None
) -> QuerySet[Alert]:
    qs = tenant_scope(Alert.objects.all(), tenant=tenant)
    if kind:
        qs = qs.filter(kind=kind)
    if level:
        qs = qs.filter(level=level)
    if subject:
        qs = qs.filter(subject=subject)
    return qs.order_by("-created", "-id")


def alerts_active(*, tenant: Tenant) -> list[Alert]:
    """The latest message of every subject whose last alerted state is a problem: the portal's banner."""
    subjects = list(
        tenant_scope(AlertState.objects.exclude(state="ok"), tenant=tenant).values_list("subject", flat=True)
    )
    if not subjects:
        return []
    latest: dict[str, Alert] = {}
    for alert in alert_list(tenant=tenant).filter(subject__in=subjects, level=Alert.Level.PROBLEM)[:200]:
        latest.setdefault(alert.subject, alert)
    return sorted(latest.values(), key=lambda a: a.created, reverse=True)


def alert_webhook_masked(*, tenant: Tenant) -> str:
    """The webhook URL with its secret part hidden: scheme, host and the last 4 characters."""
    config = AlertSettings.objects.filter(tenant=tenant).first()
    url = config.webhook_url if config else ""
    if not url:
        return ""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/')[0]}/••••{url[-4:]}"
