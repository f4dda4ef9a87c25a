"""Alerts: the last alerted state of each subject (a flow, a connection, a Pipedrive budget), the
messages sent when it changed, and each tenant's alert webhook."""

from django.db import models

from connectors.fields import EncryptedJSONField
from tenants.models import Tenant


class AlertSettings(models.Model):
    tenant = models.OneToOneField(Tenant, on_delete=models.CASCADE, related_name="alert_settings")
    # {"webhook_url": ...}: a Slack incoming-webhook URL is a credential, so it is stored encrypted.
    secrets = EncryptedJSONField(default=dict, blank=True)
    updated = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Alert settings of {self.tenant}"

    @property
    def webhook_url(self) -> str:
        return (self.secrets or {}).get("webhook_url", "")


class AlertState(models.Model):
    """One row per subject ("flow:12", "connection:3", "budget:4"): a message goes out only when
    `state` changes, never per record or per run."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="alert_states")
    subject = models.CharField(max_length=60)
    state = models.CharField(max_length=20)
    changed = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "subject"], name="uniq_alert_subject")]

    def __str__(self) -> str:
        return f"{self.subject}: {self.state}"


class Alert(models.Model):
    class Kind(models.TextChoices):
        FLOW_FAILING = "flow_failing", "Flow failing"
        FLOW_RECOVERED = "flow_recovered", "Flow recovered"
        CREDENTIALS_REJECTED = "credentials_rejected", "Credentials rejected"
        CREDENTIALS_ACCEPTED = "credentials_accepted", "Credentials accepted again"
        BUDGET_RESERVE = "budget_reserve", "Pipedrive budget reserve reached"

    class Level(models.TextChoices):
        PROBLEM = "problem"
        RECOVERY = "recovery"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="alerts")
    subject = models.CharField(max_length=60)
    kind = models.CharField(max_length=30, choices=Kind.choices)
    level = models.CharField(max_length=10, choices=Level.choices)
    title = models.CharField(max_length=200)
    text = models.TextField()
    link = models.CharField(max_length=200, blank=True, help_text="Portal path of the subject.")
    created = models.DateTimeField(auto_now_add=True)
    # Delivery, filled by the task: how many emails went out, and the webhook's outcome in words.
    sent_at = models.DateTimeField(null=True, blank=True)
    emails_sent = models.PositiveIntegerField(default=0)
    webhook_result = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [models.Index(fields=["tenant", "-created"])]

    def __str__(self) -> str:
        return self.title
