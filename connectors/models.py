import uuid

from django.db import models

from connectors.fields import EncryptedJSONField
from connectors.registry import system_choices
from tenants.models import Tenant

# Secrets ml-connector generates itself (the Basic-auth pair Pipedrive sends with webhooks): never shown,
# never set through the portal or the API.
GENERATED_CREDENTIALS = ("webhook_user", "webhook_password")


def mask_secret(value: str) -> str:
    """Show at most the last 4 characters, and none of a short secret."""
    value = str(value or "")
    if len(value) <= 8:
        return "••••" if value else ""
    return "••••" + value[-4:]


class Connection(models.Model):
    # One member per line of connectors/registry.py (SYSPRO, SAP_B1, SAGE300, IFS, S4HANA, PIPEDRIVE).
    System = models.TextChoices("System", system_choices())

    class Status(models.TextChoices):
        NEW = "new", "Not tested yet"
        OK = "ok", "Working"
        FAILING = "failing", "Failing (temporary)"
        BROKEN = "broken", "Credentials rejected"
        PAUSED = "paused", "Paused by support"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="connections")
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    system = models.CharField(max_length=20, choices=System.choices)
    name = models.CharField(max_length=120)
    base_url = models.URLField(max_length=500)
    # Secrets: password, api_token, client_secret, OAuth tokens. Never rendered back.
    credentials = EncryptedJSONField(default=dict, blank=True)
    # Non-secret per-system settings (company id, user name, plan, seats, api_domain, ...).
    options = models.JSONField(default=dict, blank=True)
    tls_ca_bundle = models.TextField(blank=True, help_text="PEM CA bundle for a self-signed server.")
    tls_pinned_sha256 = models.CharField(max_length=95, blank=True,
                                         help_text="SHA-256 fingerprint of the server certificate.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.NEW)
    status_message = models.TextField(blank=True)
    last_ping_at = models.DateTimeField(null=True, blank=True)
    last_ping_ok = models.BooleanField(null=True)
    last_ping_message = models.TextField(blank=True)
    # Set when a test is queued; the test is pending while it is later than last_ping_at.
    ping_requested_at = models.DateTimeField(null=True, blank=True)
    # Bumped on each credential write so concurrent OAuth refreshes can compare-and-swap.
    credentials_version = models.PositiveIntegerField(default=0)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["tenant", "name"]
        indexes = [models.Index(fields=["tenant", "system"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_system_display()})"

    @property
    def ping_pending(self) -> bool:
        return bool(self.ping_requested_at and (self.last_ping_at is None or self.last_ping_at < self.ping_requested_at))

    @property
    def credentials_masked(self) -> dict:
        return {key: mask_secret(value) for key, value in (self.credentials or {}).items()
                if key not in GENERATED_CREDENTIALS}


from connectors.pipedrive.models import PipedriveBudget, PipedriveFieldCache  # noqa: E402,F401
