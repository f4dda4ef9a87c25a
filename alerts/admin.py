"""Alerts in the admin: read-only, tenant-scoped like every tenant-owned model."""

from django.contrib import admin

from alerts.models import Alert
from tenants.admin import TenantScopedAdmin


@admin.register(Alert)
class AlertAdmin(TenantScopedAdmin):
    list_display = ("created", "tenant", "kind", "title", "emails_sent", "webhook_result", "sent_at")
    list_filter = ("kind", "level")
    readonly_fields = [f.name for f in Alert._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
