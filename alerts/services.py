"""Writes for alerts: record a subject's state, create one message per change, deliver it (email to
owners and admins who did not opt out, and the tenant's webhook as Slack-compatible JSON)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from alerts.models import Alert, AlertSettings, AlertState
from connectors.base import ConnectorError
from connectors.http import RetryPolicy, send, session_build, status_error, url_check
from tenants.models import Membership, Tenant

logger = logging.getLogger(__name__)

OK = "ok"
WEBHOOK_POLICY = RetryPolicy(
    retries=2, cap_s=2.0, max_retry_after=5.0
)  # a worker must not hang on a chat hook


@dataclass(frozen=True)
class AlertMessage:
    kind: str
    level: str
    title: str
    text: str
    link: str = ""


def alert_state_change(
    *, tenant: Tenant, subject: str, state: str, message: AlertMessage | None
) -> Alert | None:
    """Record `subject`'s state. A change creates `message` (None: change silently) and queues its
    delivery; the same state again does nothing. A subject seen first in the "ok" state is recorded
    silently (nothing recovered). Concurrent workers: only the one whose update moved the state alerts."""
    row, created = AlertState.objects.get_or_create(tenant=tenant, subject=subject, defaults={"state": state})
    if created:
        if state == OK:
            return None
    else:
        if row.state == state:
            return None
        if not AlertState.objects.filter(pk=row.pk, state=row.state).update(
            state=state, changed=timezone.now()
        ):
            return None  # another worker recorded a change meanwhile; it sends the message
    if message is None:
        return None
    alert = Alert.objects.create(
        tenant=tenant,
        subject=subject,
        kind=message.kind,
        level=message.level,
        title=message.title[:200],
        text=message.text,
        link=message.link[:200],
    )
    transaction.on_commit(lambda: _deliver_queue(alert.pk))
    return alert


def _deliver_queue(alert_id: int) -> None:
    from django_q.tasks import async_task

    async_task("alerts.tasks.alert_deliver_task", alert_id, task_name=f"alert-{alert_id}")


def alert_recipients(*, tenant: Tenant) -> list[str]:
    members = Membership.objects.filter(
        tenant=tenant,
        alert_emails=True,
        user__is_active=True,
        role__in=[Membership.Role.OWNER, Membership.Role.ADMIN],
    ).select_related("user")
    return sorted({m.user.email for m in members if m.user.email})


def _absolute(link: str) -> str:
    base = (getattr(settings, "PUBLIC_BASE_URL", "") or "").rstrip("/")
    return f"{base}{link}" if base and link else link


def alert_deliver(*, alert: Alert) -> Alert:
    """Email and webhook for one alert (the django-q2 task). A webhook failure is recorded in words on
    the alert, never raised: the email and the portal still tell."""
    recipients = alert_recipients(tenant=alert.tenant)
    link = _absolute(alert.link)
    body = f"{alert.text}\n\n{link}\n" if link else f"{alert.text}\n"
    body += "\nYou get this as an owner or admin; turn alert emails off on the Team page.\n"
    if recipients:
        send_mail(f"[ml-connector] {alert.title}", body, None, recipients)
    alert.emails_sent = len(recipients)
    alert.webhook_result = _webhook_post(alert, link)
    alert.sent_at = timezone.now()
    alert.save(update_fields=["emails_sent", "webhook_result", "sent_at"])
    return alert


def _webhook_post(alert: Alert, link: str) -> str:
    config = AlertSettings.objects.filter(tenant=alert.tenant).first()
    url = config.webhook_url if config else ""
    if not url:
        return ""
    text = f"*{alert.title}*\n{alert.text}" + (f"\n<{link}>" if link.startswith("http") else "")
    session = session_build()
    try:
        resp = send(
            session,
            "POST",
            url,
            system="The alert webhook",
            json={"text": text},
            classify=lambda r: (
                None if r.ok else status_error("The alert webhook", r.status_code, r.reason or "refused")
            ),
            policy=WEBHOOK_POLICY,
            idempotent=True,
        )  # a repeated alert message is harmless, a lost one is not
        return f"delivered ({resp.status_code})"
    except ConnectorError as exc:
        logger.warning("alert %s: webhook not delivered: %s", alert.pk, exc.message)
        return f"not delivered: {exc.message}"[:300]
    finally:
        session.close()


def alert_settings_update(*, tenant: Tenant, webhook_url: str) -> AlertSettings:
    """Set (or with "" clear) the tenant's alert webhook; the SSRF guard judges the URL on save too."""
    webhook_url = (webhook_url or "").strip()
    if webhook_url:
        if not webhook_url.startswith(("https://", "http://")):
            raise ValidationError({"webhook_url": "Enter an http(s) URL, e.g. a Slack incoming-webhook URL."})
        try:
            url_check(webhook_url)
        except ConnectorError as exc:
            raise ValidationError({"webhook_url": exc.message}) from None
    config, _ = AlertSettings.objects.get_or_create(tenant=tenant)
    config.secrets = {"webhook_url": webhook_url} if webhook_url else {}
    config.save()
    return config
