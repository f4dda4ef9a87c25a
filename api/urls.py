"""/api/ — everything the portal does, for integrators. Token auth: `Authorization: Token <key>`."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from api import views

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", views.SwaggerUiView.as_view(url_name="schema"), name="api-docs"),
    # Connections
    path("connections/", views.ConnectionListApi.as_view(), name="api-connection-list"),
    path("connections/<int:id>/", views.ConnectionDetailApi.as_view(), name="api-connection-detail"),
    path("connections/<int:id>/ping/", views.ConnectionPingApi.as_view(), name="api-connection-ping"),
    # Flows, runs and records (syncs/api.py)
    # Wizard steps: preview a mapping, the first-sync estimate (onboarding/api.py); before syncs.api,
    # whose flows/<id>/<action>/ would take flows/<id>/preview/
    path("", include("onboarding.api")),
    path("", include("syncs.api")),
    # Webhook events and replaying a selection (syncs/api_events.py)
    path("", include("syncs.api_events")),
]
