def alerts_banner(request):
    """Open problems (failing flows, rejected credentials, budget reserve) for the banner on every page."""
    tenant = getattr(request, "tenant", None)
    if tenant is None:
        return {}
    from alerts.selectors import alerts_active  # selectors load models: not at settings import time

    return {"alerts_active": alerts_active(tenant=tenant)}
