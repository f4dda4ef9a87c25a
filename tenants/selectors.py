"""Reads scoped to one tenant. Every selector in the project filters through `tenant_scope`."""

from __future__ import annotations

import hashlib

from django.core.cache import cache
from django.db.models import Prefetch, QuerySet

from tenants.models import ApiToken, Invite, Membership, Tenant

LOGIN_FAILURE_LIMIT = 10
LOGIN_FAILURE_WINDOW = 15 * 60  # seconds
API_TOKEN_PREFIX = "mlc_"  # recognisable by secret scanners


def tenant_scope(queryset: QuerySet, *, tenant: Tenant, field: str = "tenant") -> QuerySet:
    """The only way a tenant-owned queryset is narrowed; a missing tenant yields nothing."""
    if tenant is None:
        return queryset.none()
    return queryset.filter(**{field: tenant})


def membership_for_user(*, user) -> Membership | None:
    if user is None or not user.is_authenticated:
        return None
    return Membership.objects.select_related("tenant").filter(user=user).order_by("created").first()


def tenant_list_for_user(*, user) -> QuerySet[Tenant]:
    return Tenant.objects.filter(memberships__user=user)


def membership_list(*, tenant: Tenant) -> QuerySet[Membership]:
    return tenant_scope(Membership.objects.select_related("user"), tenant=tenant).order_by("created")


def invite_list(*, tenant: Tenant, open_only: bool = False) -> QuerySet[Invite]:
    """The tenant's invites, newest first; `open_only`: not accepted nor revoked (expired included)."""
    qs = tenant_scope(Invite.objects.select_related("invited_by"), tenant=tenant)
    if open_only:
        qs = qs.filter(accepted_at__isnull=True, revoked_at__isnull=True)
    return qs.order_by("-created", "-id")


def email_normalize(email: str) -> str:
    return (email or "").strip().lower()


def login_failure_key(*, ip: str, email: str) -> str:
    digest = hashlib.sha256(f"{ip}|{email_normalize(email)}".encode()).hexdigest()
    return f"login-failures:{digest}"


def login_is_locked(*, ip: str, email: str) -> bool:
    """True after LOGIN_FAILURE_LIMIT failed sign-ins for this IP + email within the window."""
    return (cache.get(login_failure_key(ip=ip, email=email)) or 0) >= LOGIN_FAILURE_LIMIT


def api_token_hash(key: str) -> str:
    # Keys are 256 random bits: a plain SHA-256 cannot be brute-forced, and lookups stay one index probe.
    return hashlib.sha256(key.encode()).hexdigest()


def api_token_list(*, user) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user=user)


def api_token_find(*, key: str) -> ApiToken | None:
    """The token with this key (and its user), or None."""
    if not key:
        return None
    return ApiToken.objects.select_related("user").filter(key_hash=api_token_hash(key)).first()


def flow_summary_list(*, tenant: Tenant) -> QuerySet:
    """The tenant's flows with `last_runs` (a list of at most one SyncRun) for the dashboard."""
    # syncs depends on tenants, so import at call time to keep the module graph one-way.
    from syncs.models import Flow, SyncRun

    last_run = Prefetch("runs", queryset=SyncRun.objects.order_by("-started", "-id")[:1], to_attr="last_runs")
    return (
        tenant_scope(Flow.objects.all(), tenant=tenant)
        .select_related("source", "target")
        .prefetch_related(last_run)
        .order_by("name", "id")
    )
