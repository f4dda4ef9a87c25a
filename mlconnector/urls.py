from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("", include("ops.urls")),  # /healthz, /metrics
    path("admin/", admin.site.urls),
    path("api/", include("api.urls")),
    path("connections/", include("connectors.urls")),
    path("", include("syncs.urls")),
    path("", include("tenants.urls")),
]
