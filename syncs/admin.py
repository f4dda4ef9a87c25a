"""Support staff's view: find a tenant's flows, runs and failed records; replay; pause."""

from django.contrib import admin, messages
from django.utils.html import format_html

from syncs.models import (
    FieldMapping,
    Flow,
    RecordLink,
    SyncRecord,
    SyncRun,
    WebhookEvent,
    WebhookRejection,
    WritebackAction,
    WritebackLink,
)
from syncs.services import FlowBusy, flow_pause, flow_resume, replay_queue, run_failures_outstanding
from tenants.admin import TenantScopedAdmin


class FieldMappingInline(admin.TabularInline):
    model = FieldMapping
    extra = 0


def _replay_queued(model_admin, request, runs) -> None:
    """Say what was queued, and record who asked on each replay run (its `requested_by` and history)."""
    for run in runs:
        model_admin.log_addition(request, run, "Replay requested")
        messages.success(request, f"Replay run {run.pk} of {run.flow} queued: a worker sends the records now; "
                                  "its counts appear on the run.")


@admin.register(Flow)
class FlowAdmin(TenantScopedAdmin):
    list_display = ("name", "tenant", "kind", "enabled", "next_run_at", "paused_until", "running_since")
    list_filter = ("enabled", "kind")
    search_fields = ("name", "tenant__name")
    inlines = [FieldMappingInline]
    readonly_fields = ("cursor", "running_since", "heartbeat_at", "created", "updated")
    actions = ["pause_flows", "resume_flows"]

    @admin.action(description="Pause selected flows")
    def pause_flows(self, request, queryset):
        for flow in queryset:
            flow_pause(flow=flow, reason=f"Paused by support ({request.user.get_username()}).")
            self.log_change(request, flow, "Paused")
        messages.success(request, f"Paused {queryset.count()} flow(s).")

    @admin.action(description="Resume selected flows (run now)")
    def resume_flows(self, request, queryset):
        for flow in queryset:
            flow_resume(flow=flow)
            self.log_change(request, flow, "Resumed")
        messages.success(request, f"Resumed {queryset.count()} flow(s).")


@admin.register(SyncRun)
class SyncRunAdmin(TenantScopedAdmin):
    list_display = ("id", "flow", "tenant", "trigger", "status", "requested_by", "started", "finished", "read",
                    "created", "updated", "adopted", "unchanged", "skipped", "failed", "tokens_spent")
    list_filter = ("status", "trigger")
    search_fields = ("flow__name", "tenant__name")
    readonly_fields = [f.name for f in SyncRun._meta.fields]
    actions = ["replay_failures"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Replay all failed records of the selected runs")
    def replay_failures(self, request, queryset):
        try:
            for run in queryset:
                _replay_queued(self, request, replay_queue(records=run_failures_outstanding(run=run), actor=request.user))
        except FlowBusy as exc:
            messages.error(request, str(exc))


@admin.register(SyncRecord)
class SyncRecordAdmin(TenantScopedAdmin):
    list_display = ("id", "created", "flow", "external_id", "action", "outcome_badge", "target_id", "error_kind",
                    "short_error", "attempt")
    list_filter = ("outcome", "action", "error_kind", "direction")
    search_fields = ("external_id", "error_message", "flow__name", "tenant__name")
    readonly_fields = [f.name for f in SyncRecord._meta.fields]
    list_select_related = ("flow",)
    actions = ["replay_records"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # append-only audit

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="outcome", ordering="outcome")
    def outcome_badge(self, obj):
        colour = {"ok": "#1a7f37", "failed": "#cf222e", "in_flight": "#9a6700"}.get(obj.outcome, "#57606a")
        return format_html('<b style="color:{}">{}</b>', colour, obj.get_outcome_display())

    @admin.display(description="error")
    def short_error(self, obj):
        return (obj.error_message[:90] + "…") if len(obj.error_message) > 90 else obj.error_message

    @admin.action(description="Replay the selected failed records")
    def replay_records(self, request, queryset):
        failed = queryset.filter(outcome=SyncRecord.Outcome.FAILED)
        if not failed.exists():
            messages.warning(request, "None of the selected records failed; nothing to replay.")
            return
        try:
            _replay_queued(self, request, replay_queue(records=list(failed), actor=request.user))
        except FlowBusy as exc:
            messages.error(request, str(exc))


@admin.register(RecordLink)
class RecordLinkAdmin(TenantScopedAdmin):
    list_display = ("external_id", "source_object", "target_object", "target_id", "created_by_us", "last_synced", "tenant")
    search_fields = ("external_id", "tenant__name")
    list_filter = ("source_object", "created_by_us")
    readonly_fields = [f.name for f in RecordLink._meta.fields]


@admin.register(WritebackLink)
class WritebackLinkAdmin(TenantScopedAdmin):
    """Deals written back to an ERP: which document each became, or why not yet."""

    list_display = ("deal_id", "flow", "state", "document_number", "document_id", "error_kind", "updated", "tenant")
    search_fields = ("deal_id", "document_number", "document_id", "tenant__name")
    list_filter = ("state", "error_kind")
    readonly_fields = [f.name for f in WritebackLink._meta.fields]


@admin.register(WritebackAction)
class WritebackActionAdmin(TenantScopedAdmin):
    """Deal stage changes written back as ERP actions (IFS order status): one row per change."""

    list_display = ("deal_id", "stage_id", "changed_at", "action", "document_id", "state", "error_kind", "flow",
                    "tenant")
    search_fields = ("deal_id", "document_id", "tenant__name")
    list_filter = ("state", "action", "error_kind")
    readonly_fields = [f.name for f in WritebackAction._meta.fields]


class ReadOnlyAdmin(TenantScopedAdmin):
    """Rows written only by the webhook receiver: support reads them, nobody edits them."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdmin):
    tenant_field = "connection__tenant"
    list_display = ("received", "object", "action", "entity_id", "status", "auth_result", "connection")
    list_filter = ("status", "object", "action")
    search_fields = ("delivery_id", "entity_id")


@admin.register(WebhookRejection)
class WebhookRejectionAdmin(ReadOnlyAdmin):
    tenant_field = "connection__tenant"
    list_display = ("received", "status", "reason", "size", "remote_addr", "connection")
    list_filter = ("status", "reason")
