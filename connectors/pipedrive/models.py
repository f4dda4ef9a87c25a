"""State shared by every worker for one Pipedrive company: the token budget and custom-field keys."""

from django.db import models


class PipedriveBudget(models.Model):
    """Limiter state for one key: a company (`company:...`: daily budget) or a token
    (`burst:...` / `search:...`: the rolling 2-second window)."""

    key = models.CharField(max_length=80, unique=True)
    daily_limit = models.IntegerField(null=True)
    daily_remaining = models.IntegerField(null=True)
    resets_at = models.DateTimeField(null=True)
    window = models.JSONField(default=list)  # recent grant times (epoch seconds) in the burst window
    # The burst limit Pipedrive announced in x-ratelimit-limit (wins over the plan table).
    burst_limit = models.IntegerField(null=True)
    # Epoch seconds before which nobody may call with this token (429, remaining 0, firewall 403).
    blocked_until = models.FloatField(null=True)
    updated = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.key


class PipedriveFieldCache(models.Model):
    """Custom-field definitions of one company and entity, resolved by name to the 40-char key."""

    company_key = models.CharField(max_length=80)
    entity = models.CharField(max_length=20)
    fields = models.JSONField(default=list)
    fetched_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["company_key", "entity"], name="uniq_field_cache")]

    def __str__(self) -> str:
        return f"{self.company_key} {self.entity}"
