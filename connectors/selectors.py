"""Reads of connections, always within one tenant."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404

from connectors.models import Connection
from tenants.models import Tenant
from tenants.selectors import tenant_scope


def connection_list(*, tenant: Tenant, system: str | None = None) -> QuerySet[Connection]:
    queryset = tenant_scope(Connection.objects.all(), tenant=tenant).order_by("name", "id")
    if system:
        queryset = queryset.filter(system=system)
    return queryset


def connection_get(*, tenant: Tenant, id: int) -> Connection:
    """The tenant's connection; Http404 for another tenant's id or an unknown one."""
    try:
        return connection_list(tenant=tenant).get(pk=id)
    except (Connection.DoesNotExist, ValueError, TypeError):
        raise Http404("No such connection.") from None
