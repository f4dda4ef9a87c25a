"""Cross-tenant aggregates for monitoring. Deliberately not tenant-scoped: only /metrics reads them,
and they return counts and sums, never a tenant's rows."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, Min, Q, Sum
from django.utils import timezone

from connectors.pipedrive.models import PipedriveBudget
from syncs.models import Flow, SyncRecord, SyncRun

# SyncRun counters summed into "records by outcome" (read counts every record the ERP gave us).
RECORD_OUTCOMES = ("read", "created", "updated", "adopted", "unchanged", "skipped", "failed")
# PipedriveBudget keys that hold a company's daily budget (burst:/search: rows are 2-second windows).
COMPANY_PREFIXES = ("company:", "token:", "oauth:")


def runs_by_status() -> dict[str, dict[str, int]]:
    """{status: {"runs": n, "read": n, "created": n, ..., "tokens": n}} over every run ever recorded."""
    sums = {name: Sum(name) for name in RECORD_OUTCOMES}
    rows = SyncRun.objects.order_by().values("status").annotate(runs=Count("id"), tokens=Sum("tokens_spent"), **sums)
    return {row.pop("status"): {k: int(v or 0) for k, v in row.items()} for row in rows}


def record_failures_by_kind() -> dict[str, int]:
    """Failed record attempts by error kind (permanent / transient / auth)."""
    rows = (SyncRecord.objects.filter(outcome=SyncRecord.Outcome.FAILED).order_by()
            .values("error_kind").annotate(n=Count("id")))
    return {row["error_kind"] or "unknown": row["n"] for row in rows}


def pipedrive_budgets(*, now: datetime | None = None) -> list[dict]:
    """Today's token budget per Pipedrive company, as the shared limiter (database store) holds it.
    A row past its reset counts as untouched: the limiter refills it on the next grant."""
    now = now or timezone.now()
    company = Q()
    for prefix in COMPANY_PREFIXES:
        company |= Q(key__startswith=prefix)
    result = []
    for key, limit, remaining, resets_at in (PipedriveBudget.objects.filter(company, daily_limit__isnull=False)
                                             .values_list("key", "daily_limit", "daily_remaining", "resets_at")):
        if remaining is None or resets_at is None or resets_at <= now:
            remaining = limit
        result.append({"company": company_label(key), "limit": limit, "remaining": remaining,
                       "spent": max(0, limit - remaining)})
    return result


def company_label(key: str) -> str:
    """`company:<id>` as is; a token or OAuth digest shortened (it names, it does not reveal)."""
    prefix, _, rest = key.partition(":")
    return key if prefix == "company" else f"{prefix}:{rest[:12]}"


def flows_due(*, now: datetime | None = None):
    """Flows the dispatcher would claim now: enabled, due, not paused, not held by a live worker."""
    now = now or timezone.now()
    stale = now - timedelta(seconds=getattr(settings, "SYNC_CLAIM_STALE_SECONDS", 600))
    free = Q(running_since__isnull=True) | Q(heartbeat_at__lt=stale)
    due = Q(enabled=True, next_run_at__lte=now) & (Q(paused_until__isnull=True) | Q(paused_until__lte=now))
    return Flow.objects.filter(free & due)


def oldest_due_age_seconds(*, now: datetime | None = None) -> float:
    now = now or timezone.now()
    oldest = flows_due(now=now).aggregate(oldest=Min("next_run_at"))["oldest"]
    return max(0.0, (now - oldest).total_seconds()) if oldest else 0.0
