"""What every API view shares: the tenant resolved after DRF authentication, and role checks."""

from rest_framework import permissions
from rest_framework.exceptions import ValidationError
from rest_framework.views import APIView

from api.pagination import StrictLimitOffsetPagination
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


class TenantListApiView(TenantApiView):
    """A tenant-scoped list: `?limit=&offset=` pagination (invalid values answer 400)."""

    pagination_class = StrictLimitOffsetPagination

    def paginated(self, request, queryset, serializer_class, **context):
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(queryset, request, view=self)
        return paginator.get_paginated_response(
            serializer_class(page, many=True, context={"request": request, **context}).data)


def query_typed_not_blank(request, *names: str) -> None:
    """A typed filter (number, date, enum, boolean) given with no value is a 400, as its schema says, not
    silently ignored (DRF serializers skip blank query values of optional fields)."""
    blank = [name for name in names if request.query_params.get(name) == ""]
    if blank:
        raise ValidationError({name: ["Give a value or leave the parameter out."] for name in blank})


def query_choice(request, name: str, choices) -> str | None:
    """An optional enum filter from the query string; a value outside `choices` is a 400, not an empty list."""
    value = request.query_params.get(name)
    if value is None:
        return None
    allowed = [c[0] if isinstance(c, tuple) else c for c in choices]
    if value not in allowed:
        raise ValidationError({name: [f"'{value}' is not one of: {', '.join(map(str, allowed))}."]})
    return value


def query_text(request, name: str) -> str | None:
    """An optional free-text filter; NUL characters cannot be stored or searched, so they are a 400."""
    value = request.query_params.get(name)
    if value in (None, ""):
        return None
    if "\x00" in value:
        raise ValidationError({name: ["Null characters are not allowed."]})
    return value
