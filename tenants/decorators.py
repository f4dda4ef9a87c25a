"""Portal access: signed in, member of a tenant, and (for writes) an owner or admin.

Viewers change nothing: every tenant view refuses them any method but GET/HEAD/OPTIONS with 403,
unless it is marked `tenant_self_service` (a member's own things: their API tokens, their alert
email choice). tests/tenants/test_viewer_guard.py walks every URL pattern to hold this."""

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import render

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
VIEWER_REFUSED = "Viewers can look but not change anything. Ask an owner or admin of your organisation."


def _tenant_view(view, *, viewer_writes: bool):
    @login_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if getattr(request, "tenant", None) is None:
            return render(request, "tenants/no_tenant.html", status=403)
        if not viewer_writes and request.method not in SAFE_METHODS and not request.membership.can_edit:
            raise PermissionDenied(VIEWER_REFUSED)
        return view(request, *args, **kwargs)

    wrapper.tenant_guard = "self_service" if viewer_writes else "member"
    return wrapper


def tenant_required(view):
    """Signed in and a member of a tenant; request.tenant / request.membership are then set. Writes
    (POST, PUT, PATCH, DELETE) need an owner or admin."""
    return _tenant_view(view, viewer_writes=False)


def tenant_self_service(view):
    """As tenant_required, but viewers may also write: for views that change only the member's own
    things (never the tenant's data)."""
    return _tenant_view(view, viewer_writes=True)


def tenant_editor_required(view):
    """As tenant_required, and the member's role may change things (owner or admin), whatever the method."""

    @tenant_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.membership.can_edit:
            raise PermissionDenied("Only owners and admins can change this.")
        return view(request, *args, **kwargs)

    wrapper.tenant_guard = "editor"
    return wrapper
