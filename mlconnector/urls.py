from django.contrib import admin
from django.urls import include, path

from syncs.webhook_views import pipedrive_webhook

urlpatterns = [
    path("", include("ops.urls")),  # /healthz, /metrics
    path("admin/", admin.site.urls),
    path("hooks/pipedrive/<uuid:connection_uuid>/", pipedrive_webhook, name="pipedrive_webhook"),
    path("api/", include("api.urls")),
    path("connections/", include("connectors.urls")),
    path("onboarding/", include("onboarding.urls")),
    path("", include("syncs.urls")),
    path("", include("tenants.urls")),
]
