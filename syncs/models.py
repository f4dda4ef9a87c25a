"""Flows, runs and the append-only audit of every record that moves."""

from django.conf import settings
from django.db import models

from connectors.models import Connection
from tenants.models import Tenant


class Flow(models.Model):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="flows")
    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=60, help_text="Flow kind of the source system, e.g. customers_to_organizations")
    source = models.ForeignKey(Connection, on_delete=models.PROTECT, related_name="flows_out")
    target = models.ForeignKey(Connection, on_delete=models.PROTECT, related_name="flows_in")
    interval_minutes = models.PositiveIntegerField(default=15)
    enabled = models.BooleanField(default=True)
    # Flow options: create_missing_fields (bool), ...
    options = models.JSONField(default=dict, blank=True)
    # Where the next read starts; advanced only after a page is committed.
    cursor = models.JSONField(default=dict, blank=True)
    next_run_at = models.DateTimeField(null=True, blank=True, db_index=True)
    paused_until = models.DateTimeField(null=True, blank=True)
    pause_reason = models.TextField(blank=True)
    # Claim marker: set atomically by the dispatcher; a stale claim (dead worker) expires.
    running_since = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # The claim's holder (host:pid:start, see syncs/claims.py) and the claim's id, handed to the worker task
    claimed_by = models.CharField(max_length=200, blank=True)
    claim_token = models.CharField(max_length=32, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["tenant", "name"]

    def __str__(self) -> str:
        return self.name


class FieldMapping(models.Model):
    flow = models.ForeignKey(Flow, on_delete=models.CASCADE, related_name="mappings")
    position = models.PositiveIntegerField(default=0)
    source = models.CharField(max_length=500, help_text="ERP field name or template like '{AddressLine1}, {City}'")
    target = models.CharField(max_length=200, help_text="Pipedrive field: 'name', 'address', or 'custom:<name>'")
    lookup = models.JSONField(null=True, blank=True, help_text="Optional table mapping ERP values to Pipedrive values")
    required = models.BooleanField(default=False)
    field_type = models.CharField(max_length=20, default="varchar")

    class Meta:
        ordering = ["flow", "position", "id"]

    def __str__(self) -> str:
        return f"{self.source} → {self.target}"


class SyncRun(models.Model):
    class Trigger(models.TextChoices):
        SCHEDULE = "schedule"
        MANUAL = "manual"
        WEBHOOK = "webhook"
        REPLAY = "replay"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued (waiting for a worker)"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        PARTIAL = "partial", "Finished with failed records"
        FAILED = "failed"
        PAUSED = "paused", "Paused (Pipedrive budget)"
        INTERRUPTED = "interrupted", "Interrupted (worker stopped)"

    class Reason(models.TextChoices):
        NONE = "", "—"
        # the run used its time slice and yielded the worker; the flow is due again at once
        CONTINUES = "continues", "Continues in the next run"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="runs")
    flow = models.ForeignKey(Flow, on_delete=models.CASCADE, related_name="runs")
    trigger = models.CharField(max_length=10, choices=Trigger.choices)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.RUNNING)
    reason = models.CharField(max_length=12, choices=Reason.choices, default=Reason.NONE, blank=True)
    started = models.DateTimeField(auto_now_add=True)
    finished = models.DateTimeField(null=True, blank=True)
    read = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    adopted = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    pipedrive_calls = models.PositiveIntegerField(default=0)
    tokens_spent = models.PositiveIntegerField(default=0)
    # Records this run will read, when the ERP says (its first page's count): the progress bar's 100 %.
    expected = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    # Who asked for a manual run or replay (a portal user or support staff); empty for scheduled runs.
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+")

    class Meta:
        ordering = ["-started"]
        indexes = [models.Index(fields=["flow", "-started"])]

    def __str__(self) -> str:
        return f"Run {self.pk} of {self.flow} ({self.status})"

    @property
    def continues(self) -> bool:
        return self.reason == self.Reason.CONTINUES

    @property
    def status_label(self) -> str:
        """What the portal shows: a sliced run is partial because it continues, not because it failed."""
        if self.continues:
            return "Partial — continues"
        return self.get_status_display()


class SyncRecord(models.Model):
    """Append-only audit: written before the outbound call, completed after it."""

    class Direction(models.TextChoices):
        TO_PIPEDRIVE = "to_pipedrive", "ERP → Pipedrive"
        TO_ERP = "to_erp", "Pipedrive → ERP"

    class Action(models.TextChoices):
        CREATE = "create"
        UPDATE = "update"
        RECREATE = "recreate", "Recreate (deleted in Pipedrive)"
        ADOPT = "adopt", "Adopt existing"
        SKIP = "skip"
        FAIL = "fail", "Fail (before any call)"
        DELETE = "delete", "Delete (removed at the source)"

    class Outcome(models.TextChoices):
        IN_FLIGHT = "in_flight", "In flight"
        OK = "ok"
        FAILED = "failed"
        RESOLVED = "resolved", "Resolved by a later attempt"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="records")
    run = models.ForeignKey(SyncRun, on_delete=models.CASCADE, related_name="records")
    flow = models.ForeignKey(Flow, on_delete=models.CASCADE, related_name="records")
    direction = models.CharField(max_length=14, choices=Direction.choices, default=Direction.TO_PIPEDRIVE)
    source_object = models.CharField(max_length=60)
    external_id = models.CharField(max_length=200)
    target_object = models.CharField(max_length=60)
    # A string: Pipedrive ids, B1 document entries, IFS order numbers ("" before the call has an answer).
    target_id = models.CharField(max_length=100, blank=True, default="")
    action = models.CharField(max_length=10, choices=Action.choices)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.IN_FLIGHT)
    payload = models.JSONField(null=True, blank=True)
    source_data = models.JSONField(null=True, blank=True, help_text="The ERP record as read, for replay")
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_excerpt = models.TextField(blank=True)
    error_kind = models.CharField(max_length=10, blank=True)  # permanent | transient | auth
    error_message = models.TextField(blank=True)
    attempt = models.PositiveSmallIntegerField(default=1)
    replay_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="replays")
    created = models.DateTimeField(auto_now_add=True)
    completed = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["flow", "outcome"]),
            models.Index(fields=["run", "outcome"]),
            models.Index(fields=["flow", "external_id"]),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.source_object} {self.external_id}: {self.outcome}"


class RecordLink(models.Model):
    """Source key → Pipedrive id and the hash of the last payload sent: idempotency and zero-cost reruns."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="links")
    source_connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="links_out")
    target_connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="links_in")
    source_object = models.CharField(max_length=60)
    external_id = models.CharField(max_length=200)
    target_object = models.CharField(max_length=60)
    target_id = models.BigIntegerField()
    payload_hash = models.CharField(max_length=64, blank=True)  # blank: adopted, never written by us
    created_by_us = models.BooleanField(default=False)
    last_synced = models.DateTimeField(auto_now=True)
    # Children of a plan (contact → person, order line → deal product): the parent's external id and
    # Pipedrive id, so a parent's children are found in one query and addressed through the parent.
    parent_external_id = models.CharField(max_length=200, blank=True, default="")
    parent_target_id = models.BigIntegerField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["source_connection", "source_object", "target_connection", "external_id"],
                                    name="uniq_record_link"),
        ]
        indexes = [models.Index(fields=["source_connection", "source_object", "parent_external_id"],
                                name="record_link_parent")]

    def __str__(self) -> str:
        return f"{self.source_object} {self.external_id} → {self.target_object} {self.target_id}"


class WritebackLink(models.Model):
    """A Pipedrive deal → the ERP document a write-back flow made from it: at most one per deal and flow.

    `sending` is a claim (one handler at a time per deal, whatever mix of webhook tasks and polls);
    `created` means the ERP has the document but its number is not on the deal yet; a `failed` link
    with a permanent error waits for a fix and a replay, a transient one is retried by the next poll."""

    class State(models.TextChoices):
        PENDING = "pending", "Not sent yet"
        SENDING = "sending", "Being sent"
        CREATED = "created", "Created in the ERP (number not yet on the deal)"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="writeback_links")
    flow = models.ForeignKey(Flow, on_delete=models.CASCADE, related_name="writeback_links")
    deal_id = models.CharField(max_length=40)
    document_id = models.CharField(max_length=100, blank=True)
    document_number = models.CharField(max_length=100, blank=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    error_kind = models.CharField(max_length=10, blank=True)
    error_message = models.TextField(blank=True)
    noted_error = models.TextField(blank=True, help_text="The failure last explained in a note on the deal")
    claim_token = models.CharField(max_length=32, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["flow", "deal_id"], name="uniq_writeback_link")]

    def __str__(self) -> str:
        return f"deal {self.deal_id} → {self.document_number or self.document_id or '?'} ({self.state})"



class WritebackAction(models.Model):
    """One move of a deal into a stage an action-mode write-back maps (deal stage → IFS order status), and
    the ERP action it ran: at most one per flow, deal, stage and stage-change time, whatever mix of webhook
    deliveries, polls and replays sees the move. Moving back and forth makes new rows (new times)."""

    class State(models.TextChoices):
        PENDING = "pending", "Not sent yet"
        SENDING = "sending", "Being sent"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="writeback_actions")
    flow = models.ForeignKey(Flow, on_delete=models.CASCADE, related_name="writeback_actions")
    deal_id = models.CharField(max_length=40)
    stage_id = models.BigIntegerField()
    changed_at = models.CharField(max_length=40, help_text="The deal's stage_change_time (UTC, ISO)")
    action = models.CharField(max_length=60)
    document_id = models.CharField(max_length=100, blank=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    result = models.CharField(max_length=200, blank=True)
    error_kind = models.CharField(max_length=10, blank=True)
    error_message = models.TextField(blank=True)
    claim_token = models.CharField(max_length=32, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["flow", "deal_id", "stage_id", "changed_at"],
                                               name="uniq_writeback_action")]

    def __str__(self) -> str:
        return f"deal {self.deal_id} stage {self.stage_id} → {self.action} {self.document_id or '?'} ({self.state})"

from syncs.webhook_models import WebhookEvent, WebhookRejection  # noqa: E402,F401
