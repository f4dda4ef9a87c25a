"""django-q2 entry points for alerts."""


def alert_deliver_task(alert_id: int) -> str:
    from alerts.models import Alert
    from alerts.services import alert_deliver

    alert = alert_deliver(alert=Alert.objects.select_related("tenant").get(pk=alert_id))
    return f"alert {alert.pk}: {alert.emails_sent} emails; webhook {alert.webhook_result or 'none'}"
