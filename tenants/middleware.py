from tenants.selectors import membership_for_user


class TenantMiddleware:
    """Sets request.tenant / request.membership from the logged-in user (None when anonymous)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        membership = membership_for_user(user=request.user) if hasattr(request, "user") else None
        request.membership = membership
        request.tenant = membership.tenant if membership else None
        return self.get_response(request)
