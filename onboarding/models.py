"""A wizard look-up run by a worker (field list + preview, field creation, estimate): the page and the API
poll its row until the worker stores the result."""

from django.db import models

from syncs.models import Flow
from tenants.models import Tenant


class WizardJob(models.Model):
    class Kind(models.TextChoices):
        MAP = "map", "Pipedrive fields and preview"
        FIELD_CREATE = "field_create", "Create a Pipedrive field"
        ESTIMATE = "estimate", "First-sync estimate"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="wizard_jobs")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    flow = models.ForeignKey(
        Flow, null=True, blank=True, on_delete=models.CASCADE, related_name="wizard_jobs"
    )
    params = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    created = models.DateTimeField(auto_now_add=True)
    finished = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [models.Index(fields=["tenant", "kind", "-created"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk} ({self.status})"

    @property
    def pending(self) -> bool:
        return self.status == self.Status.QUEUED
