"""Pipedrive webhook deliveries: every accepted one stored before the 200 (deduplicated by delivery id),
and a small row for every rejected one (never its body)."""

from django.db import models

from connectors.models import Connection


class WebhookEvent(models.Model):
    """One authenticated delivery, stored before it is acknowledged and processed by a django-q2 task."""

    class Status(models.TextChoices):
        STORED = "stored", "Stored (waiting for a worker)"
        PROCESSED = "processed"
        IGNORED = "ignored", "Ignored (not a deal event)"
        FAILED = "failed"

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="webhook_events")
    # v2: meta.id (the event's uuid); v1: a digest of what identifies the event (see syncs/webhooks.py)
    delivery_id = models.CharField(max_length=80)
    version = models.CharField(max_length=3)  # "1" | "2"
    received = models.DateTimeField(auto_now_add=True)
    headers = models.JSONField(default=dict, blank=True)  # without Authorization, signature or cookies
    body = models.JSONField()
    object = models.CharField(max_length=40)  # deal, person, ... (v2 meta.entity, v1 meta.object)
    action = models.CharField(max_length=10)  # create | change | delete (v1 actions mapped onto these)
    entity_id = models.CharField(max_length=40, blank=True)
    auth_result = models.CharField(max_length=20)  # basic | basic+hmac
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.STORED)
    processed_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    # Pipedrive's retries of this same delivery, acknowledged again but neither stored nor processed again
    duplicates = models.PositiveIntegerField(default=0)
    last_duplicate_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["connection", "delivery_id"], name="uniq_webhook_delivery")]
        indexes = [models.Index(fields=["status", "received"], name="webhook_event_status")]

    def __str__(self) -> str:
        return f"{self.object}.{self.action} {self.entity_id} ({self.status})"

    # The record as the delivery shows it, whichever payload version: what the write-back reads.
    @property
    def current(self) -> dict | None:
        value = (self.body or {}).get("data" if self.version == "2" else "current")
        return value if isinstance(value, dict) else None

    @property
    def previous(self) -> dict | None:
        value = (self.body or {}).get("previous")
        return value if isinstance(value, dict) else None

    @property
    def change_source(self) -> str:
        meta = (self.body or {}).get("meta")
        return str(meta.get("change_source") or "") if isinstance(meta, dict) else ""


class WebhookRejection(models.Model):
    """A delivery refused before anything was stored or processed: why, how big, from where."""

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="webhook_rejections")
    received = models.DateTimeField(auto_now_add=True)
    status = models.PositiveSmallIntegerField()  # the HTTP status answered: 400, 401, 413
    reason = models.CharField(max_length=200)
    size = models.BigIntegerField(null=True, blank=True)  # Content-Length as announced (or bytes read)
    remote_addr = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.status} {self.reason}"
