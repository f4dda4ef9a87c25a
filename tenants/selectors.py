"""Reads scoped to one tenant. Every selector in the project filters through `tenant_scope`."""

from __future__ import annotations

from django.db.models import QuerySet

from tenants.models import Membership, Tenant


def tenant_scope(queryset: QuerySet, *, tenant: Tenant, field: str = "tenant") -> QuerySet:
    """The only way a tenant-owned queryset is narrowed; a missing tenant yields nothing."""
    if tenant is None:
        return queryset.none()
    return queryset.filter(**{field: tenant})


def membership_for_user(*, user) -> Membership | None:
    if not user.is_authenticated:
        return None
    return Membership.objects.select_related("tenant").filter(user=user).order_by("created").first()


def tenant_list_for_user(*, user) -> QuerySet[Tenant]:
    return Tenant.objects.filter(memberships__user=user)
