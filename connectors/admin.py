"""Support staff's view of connections: no secret ever reaches a form, a list or the history."""

from django.contrib import admin, messages
from django.db import models
from django.utils.html import format_html_join

from connectors.models import Connection
from connectors.services import connection_pause, connection_ping_queue, connection_resume
from tenants.admin import TENANT_EXTRA_INLINES, TenantScopedAdmin, TenantScopedMixin

# The encrypted field never appears in a ModelForm: excluded, and masked when displayed.
CONNECTION_SECRET_FIELDS = ("credentials",)


@admin.register(Connection)
class ConnectionAdmin(TenantScopedAdmin):
    list_display = ("name", "tenant", "system", "status", "last_ping_at", "last_ping_ok")
    list_filter = ("system", "status")
    search_fields = ("name", "base_url", "uuid")
    list_select_related = ("tenant",)
    exclude = CONNECTION_SECRET_FIELDS
    # options too: the shared Pipedrive limiter and field cache are keyed by values in them, and the
    # customer changes their settings through the portal or the API, which validate every key.
    readonly_fields = ("uuid", "credentials_display", "credentials_version", "options", "status_message",
                       "last_ping_at", "last_ping_ok", "last_ping_message", "ping_requested_at", "created",
                       "updated")
    fieldsets = (
        (None, {"fields": ("tenant", "system", "name", "base_url", "status", "status_message")}),
        ("Credentials", {
            "fields": ("credentials_display", "credentials_version", "options"),
            "description": "Secrets are write-only: the customer changes them in the portal or the API.",
        }),
        ("TLS", {"fields": ("tls_ca_bundle", "tls_pinned_sha256"), "classes": ("collapse",)}),
        ("Last test", {"fields": ("ping_requested_at", "last_ping_at", "last_ping_ok", "last_ping_message")}),
        (None, {"fields": ("uuid", "created", "updated")}),
    )
    actions = ("test_connection", "pause_connection", "resume_connection")
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    @admin.display(description="Credentials (masked)")
    def credentials_display(self, obj: Connection):
        masked = obj.credentials_masked if obj.pk else {}
        if not masked:
            return "—"
        return format_html_join(", ", "{}: {}", sorted(masked.items()))

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None:
            fields += ["tenant", "system"]  # moving a connection would orphan its flows and links
        return fields

    @admin.action(description="Test connection", permissions=["change"])
    def test_connection(self, request, queryset):
        # Queued on a worker: the result appears under "Last test" (and in the history, with who asked).
        for connection in queryset:
            connection_ping_queue(connection=connection)
            self.log_change(request, connection, "Test queued")
        self.message_user(request, f"Testing {len(queryset)} connection(s) on a worker: the results appear under "
                                   "“Last test” in a few seconds.", messages.SUCCESS)

    @admin.action(description="Pause connection", permissions=["change"])
    def pause_connection(self, request, queryset):
        for connection in queryset:
            connection_pause(connection=connection, reason=f"Paused by support ({request.user.get_username()}).")
            self.log_change(request, connection, "Paused")
        self.message_user(request, f"Paused {len(queryset)} connection(s).", messages.SUCCESS)

    @admin.action(description="Resume connection", permissions=["change"])
    def resume_connection(self, request, queryset):
        for connection in queryset:
            connection_resume(connection=connection)
            self.log_change(request, connection, "Resumed")
        self.message_user(request, f"Resumed {len(queryset)} connection(s).", messages.SUCCESS)


class ConnectionInline(TenantScopedMixin, admin.TabularInline):
    """Read-only list of a tenant's connections on the Tenant page."""

    model = Connection
    extra = 0
    show_change_link = True
    fields = ("name", "system", "status", "last_ping_at")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


TENANT_EXTRA_INLINES.append(ConnectionInline)
