"""What every API view shares: the tenant resolved after DRF authentication, and role checks."""

from rest_framework import permissions
from rest_framework.views import APIView

from tenants.selectors import membership_for_user


class IsTenantMember(permissions.BasePermission):
    message = "This account is not a member of any organisation."

    def has_permission(self, request, view):
        return bool(request.user and request.user.is_authenticated and getattr(request, "tenant", None))


class IsTenantEditorOrReadOnly(permissions.BasePermission):
    """Owners and admins may write; viewers may only read."""

    message = "Only owners and admins can change this."

    def has_permission(self, request, view):
        if request.method in permissions.SAFE_METHODS:
            return True
        membership = getattr(request, "membership", None)
        return bool(membership and membership.can_edit)


class TenantApiView(APIView):
    """Base for tenant-scoped endpoints: `request.tenant` / `request.membership` are the token's (or
    session's) user's, so selectors scoped by them return 404 for other tenants' ids."""

    permission_classes = [permissions.IsAuthenticated, IsTenantMember, IsTenantEditorOrReadOnly]

    def perform_authentication(self, request):
        super().perform_authentication(request)
        # TenantMiddleware ran before DRF authenticated a token; resolve again for this user.
        membership = membership_for_user(user=request.user)
        request.membership = membership
        request.tenant = membership.tenant if membership else None
