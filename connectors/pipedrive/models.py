"""State shared by every worker for one Pipedrive company: the token budget and custom-field keys."""

from django.db import models


class PipedriveBudget(models.Model):
    """Limiter state for one key: a company (daily budget) or a token (burst window)."""

    key = models.CharField(max_length=80, unique=True)
    daily_limit = models.IntegerField(null=True)
    daily_remaining = models.IntegerField(null=True)
    resets_at = models.DateTimeField(null=True)
    window = models.JSONField(default=list)  # recent grant times (epoch seconds) in the burst window
    updated = models.DateTimeField(auto_now=True)


class PipedriveFieldCache(models.Model):
    """Custom-field definitions of one company and entity, resolved by name to the 40-char key."""

    company_key = models.CharField(max_length=80)
    entity = models.CharField(max_length=20)
    fields = models.JSONField(default=list)
    fetched_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["company_key", "entity"], name="uniq_field_cache")]
