"""DRF endpoints added with the dashboard: webhook events (list, reprocess) and replaying a selection
of records. Thin: selectors read, services write; every status code is in the schema."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from api.base import TenantApiView, TenantListApiView, query_typed_not_blank
from syncs.api import RunOutput
from syncs.models import WebhookEvent
from syncs.selectors import WebhookEventFilters, flow_list, webhook_event_list
from syncs.services import FlowBusy, flow_replay_failures_queue, records_replay_selection_queue
from syncs.webhooks import webhook_event_reprocess

# The body of every error answer here; the API-wide exception handler keeps this shape.
ERROR = inline_serializer("ErrorDetail", {"detail": serializers.CharField()})
AUTH_ERRORS = {
    401: OpenApiResponse(ERROR, description="No or invalid token."),
    403: OpenApiResponse(ERROR, description="Not a member of an organisation, or a viewer asking to change."),
}


class WebhookEventOutput(serializers.ModelSerializer):
    class Meta:
        model = WebhookEvent
        fields = [
            "id",
            "connection",
            "delivery_id",
            "version",
            "received",
            "object",
            "action",
            "entity_id",
            "auth_result",
            "status",
            "processed_at",
            "error",
            "duplicates",
            "last_duplicate_at",
            "body",
        ]


class WebhookEventFilterInput(serializers.Serializer):
    connection = serializers.IntegerField(required=False, min_value=1)
    status = serializers.ChoiceField(choices=WebhookEvent.Status.choices, required=False)
    object = serializers.CharField(required=False, max_length=40)
    entity_id = serializers.CharField(required=False, max_length=40)
    duplicates = serializers.BooleanField(
        required=False, default=False, help_text="Only deliveries Pipedrive sent more than once."
    )


class WebhookEventListApi(TenantListApiView):
    """Pipedrive deliveries for write-back flows, newest first: authenticated and stored, then processed
    (or ignored, or failed) by a worker; `duplicates` counts repeats acknowledged but not processed again."""

    @extend_schema(
        operation_id="webhook_events_list",
        parameters=[WebhookEventFilterInput],
        responses={
            200: WebhookEventOutput(many=True),
            400: OpenApiResponse(OpenApiTypes.OBJECT, description="A filter, limit or offset is not valid."),
            **AUTH_ERRORS,
        },
    )
    def get(self, request):
        query_typed_not_blank(request, "connection", "status", "duplicates")
        data = WebhookEventFilterInput(data=request.query_params)
        data.is_valid(raise_exception=True)
        f = data.validated_data
        filters = WebhookEventFilters(
            connection_id=f.get("connection"),
            status=f.get("status"),
            object=f.get("object"),
            entity_id=f.get("entity_id"),
            duplicates_only=f["duplicates"],
        )
        return self.paginated(request, webhook_event_list(tenant=request.tenant, filters=filters), WebhookEventOutput)


class WebhookEventReprocessApi(TenantApiView):
    """Queue one delivery for processing again (after a fix): 202 with the event, now `stored`."""

    @extend_schema(
        operation_id="webhook_events_reprocess",
        request=None,
        responses={
            202: WebhookEventOutput,
            404: OpenApiResponse(ERROR, description="No such event."),
            **AUTH_ERRORS,
        },
    )
    def post(self, request, id):
        event = get_object_or_404(webhook_event_list(tenant=request.tenant), pk=id)
        return Response(
            WebhookEventOutput(webhook_event_reprocess(event=event)).data, status=status.HTTP_202_ACCEPTED
        )


class ReplaySelectionInput(serializers.Serializer):
    records = serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        required=False,
        max_length=500,
        help_text="Failed audit rows to replay.",
    )
    flow = serializers.IntegerField(
        required=False, min_value=1, help_text="Replay every failure of this flow not retried since."
    )

    def validate(self, attrs):
        if bool(attrs.get("records")) == bool(attrs.get("flow")):
            raise ValidationError({"detail": "Give either `records` (a non-empty list of ids) or `flow`."})
        return attrs


class RecordsReplayApi(TenantApiView):
    """Queue the replay of a selection of failed records, or of all a flow's failures: 202 with one
    queued replay run per flow (follow each `status_url`). Ids of rows that did not fail, or are not
    yours, are left out; when nothing is left the answer is 400."""

    @extend_schema(
        operation_id="records_replay_selection",
        request=ReplaySelectionInput,
        responses={
            202: OpenApiResponse(description="The queued replay runs (RunOutput, one per flow)."),
            400: OpenApiResponse(OpenApiTypes.OBJECT, description="Nothing to replay, or a bad body."),
            404: OpenApiResponse(ERROR, description="No such flow."),
            409: OpenApiResponse(ERROR, description="A flow is running right now; replay when it ends."),
            **AUTH_ERRORS,
        },
    )
    def post(self, request):
        data = ReplaySelectionInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            if data.validated_data.get("flow"):
                flow = get_object_or_404(flow_list(tenant=request.tenant), pk=data.validated_data["flow"])
                runs = flow_replay_failures_queue(flow=flow, actor=request.user)
            else:
                runs = records_replay_selection_queue(
                    tenant=request.tenant, actor=request.user, record_ids=data.validated_data["records"]
                )
        except FlowBusy as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        if not runs:
            raise ValidationError(
                {"detail": "None of these records failed (or they are not yours): nothing to replay."}
            )
        for run in runs:
            run.refresh_from_db()  # a fast worker may already have moved it on
        return Response(
            RunOutput(runs, many=True, context={"request": request}).data, status=status.HTTP_202_ACCEPTED
        )


urlpatterns = [
    path("webhook-events/", WebhookEventListApi.as_view(), name="api-webhook-events"),
    path(
        "webhook-events/<int:id>/reprocess/",
        WebhookEventReprocessApi.as_view(),
        name="api-webhook-event-reprocess",
    ),
    path("records/replay/", RecordsReplayApi.as_view(), name="api-records-replay"),
]
