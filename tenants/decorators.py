"""Portal access: signed in, member of a tenant, and (for writes) an owner or admin."""

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import render


def tenant_required(view):
    """Signed in and a member of a tenant; request.tenant / request.membership are then set."""

    @login_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if getattr(request, "tenant", None) is None:
            return render(request, "tenants/no_tenant.html", status=403)
        return view(request, *args, **kwargs)

    return wrapper


def tenant_editor_required(view):
    """As tenant_required, and the member's role may change things (owner or admin)."""

    @tenant_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.membership.can_edit:
            raise PermissionDenied("Only owners and admins can change this.")
        return view(request, *args, **kwargs)

    return wrapper
