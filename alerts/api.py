"""/api/alerts/ — the alerts sent, and the alert webhook (owners and admins change it)."""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.urls import path
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from alerts.models import Alert
from alerts.selectors import alert_list, alert_webhook_masked
from alerts.services import alert_settings_update
from api.base import TenantApiView, TenantListApiView, query_choice


class AlertOutput(serializers.ModelSerializer):
    class Meta:
        model = Alert
        fields = [
            "id",
            "subject",
            "kind",
            "level",
            "title",
            "text",
            "link",
            "created",
            "sent_at",
            "emails_sent",
            "webhook_result",
        ]


class AlertSettingsOutput(serializers.Serializer):
    webhook_masked = serializers.CharField(
        allow_blank=True, help_text="The webhook URL, its secret part hidden."
    )


class AlertSettingsInput(serializers.Serializer):
    webhook_url = serializers.CharField(
        max_length=500,
        allow_blank=True,
        help_text=(
            'A Slack-compatible incoming-webhook URL (we POST {"text": ...}); empty turns the webhook off. Write-only.'
        ),
    )


class AlertListApi(TenantListApiView):
    """Alerts sent, newest first (paginated, filtered by kind and level)."""

    @extend_schema(
        operation_id="alerts_list",
        responses=AlertOutput(many=True),
        parameters=[
            OpenApiParameter("kind", str, enum=Alert.Kind.values),
            OpenApiParameter("level", str, enum=Alert.Level.values),
        ],
    )
    def get(self, request):
        alerts = alert_list(
            tenant=request.tenant,
            kind=query_choice(request, "kind", Alert.Kind.values),
            level=query_choice(request, "level", Alert.Level.values),
        )
        return self.paginated(request, alerts, AlertOutput)


class AlertSettingsApi(TenantApiView):
    """The alert webhook (shown masked); PUT sets it, an empty URL turns it off."""

    @extend_schema(operation_id="alerts_settings_retrieve", responses=AlertSettingsOutput)
    def get(self, request):
        return Response({"webhook_masked": alert_webhook_masked(tenant=request.tenant)})

    @extend_schema(
        operation_id="alerts_settings_update", request=AlertSettingsInput, responses=AlertSettingsOutput
    )
    def put(self, request):
        data = AlertSettingsInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            alert_settings_update(tenant=request.tenant, webhook_url=data.validated_data["webhook_url"])
        except DjangoValidationError as exc:
            raise ValidationError(exc.message_dict) from None
        return Response({"webhook_masked": alert_webhook_masked(tenant=request.tenant)})


urlpatterns = [
    path("alerts/", AlertListApi.as_view(), name="api-alerts"),
    path("alerts/settings/", AlertSettingsApi.as_view(), name="api-alert-settings"),
]
