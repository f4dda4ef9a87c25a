"""API parity for the wizard: preview a flow's mapping, the first-sync estimate, and the look-up they queue
(test connection is `POST /api/connections/{id}/ping/`). Both answer 202 with a `status_url` to poll."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from api.base import TenantApiView
from onboarding.models import WizardJob
from onboarding.services import wizard_job_queue
from syncs.selectors import flow_list

ERROR = inline_serializer("WizardErrorOutput", fields={"detail": serializers.CharField()})
COMMON = {
    401: OpenApiResponse(ERROR, description="No valid token or session."),
    403: OpenApiResponse(ERROR, description="Not a member of an organisation, or a viewer (writes only)."),
}


class JobOutput(serializers.ModelSerializer):
    status_url = serializers.SerializerMethodField(help_text="GET it until `status` is no longer `queued`.")
    result = serializers.JSONField(
        allow_null=True,
        help_text="map: {entity, fields[{name, key, type, custom}], sample_fields, records[{external_id, body, "
        "error, notes, children}], new_fields, error}; estimate: {flows[{flow_id, flow, records, counted, calls, "
        "tokens}], records, tokens, calls, percent_of_budget, budget_remaining, budget_limit, hours, summary, ...}",
    )

    class Meta:
        model = WizardJob
        fields = ["id", "kind", "flow", "status", "result", "error", "created", "finished", "status_url"]

    def get_status_url(self, obj) -> str:
        url = reverse("api-wizard-job", kwargs={"job_id": obj.pk})
        request = self.context.get("request")
        return request.build_absolute_uri(url) if request else url


class FlowPreviewApi(TenantApiView):
    """Map 3 real ERP records with the flow's current mappings: the exact Pipedrive bodies and the error of
    each record, plus the target entity's live Pipedrive fields. Reads both systems, writes nothing."""

    @extend_schema(
        operation_id="flows_preview",
        request=None,
        responses={202: JobOutput, 404: OpenApiResponse(ERROR, description="No such flow here."), **COMMON},
    )
    def post(self, request, flow_id):
        flow = get_object_or_404(flow_list(tenant=request.tenant), pk=flow_id)
        job = wizard_job_queue(tenant=request.tenant, kind=WizardJob.Kind.MAP, flow=flow)
        return Response(JobOutput(job, context={"request": request}).data, status=status.HTTP_202_ACCEPTED)


class EstimateInput(serializers.Serializer):
    flows = serializers.ListField(child=serializers.IntegerField(min_value=1), min_length=1, max_length=50)


class EstimateApi(TenantApiView):
    """What the first sync of these flows costs: records (the ERP's count, or a sample), Pipedrive calls and
    tokens, the share of today's budget and the hours at the plan's rate limit."""

    class Input(serializers.Serializer):
        flows = serializers.ListField(
            child=serializers.IntegerField(min_value=1), min_length=1, max_length=50
        )

    @extend_schema(
        operation_id="flows_estimate",
        request=EstimateInput,
        responses={
            202: JobOutput,
            400: OpenApiResponse(description="`flows` missing, empty, or not a list of ids."),
            404: OpenApiResponse(ERROR, description="A flow in `flows` does not exist here."),
            **COMMON,
        },
    )
    def post(self, request):
        data = EstimateInput(data=request.data)
        data.is_valid(raise_exception=True)
        ids = sorted(set(data.validated_data["flows"]))
        found = sorted(flow_list(tenant=request.tenant).filter(pk__in=ids).values_list("pk", flat=True))
        if found != ids:
            # not found, like any other id of another tenant's (or nobody's) flow
            raise NotFound(f"No such flows here: {', '.join(map(str, sorted(set(ids) - set(found))))}.")
        job = wizard_job_queue(tenant=request.tenant, kind=WizardJob.Kind.ESTIMATE, params={"flow_ids": ids})
        return Response(JobOutput(job, context={"request": request}).data, status=status.HTTP_202_ACCEPTED)


class WizardJobApi(TenantApiView):
    @extend_schema(
        operation_id="wizard_jobs_retrieve",
        responses={
            200: JobOutput,
            404: OpenApiResponse(ERROR, description="No such look-up here."),
            **COMMON,
        },
    )
    def get(self, request, job_id):
        job = get_object_or_404(WizardJob.objects.filter(tenant=request.tenant), pk=job_id)
        return Response(JobOutput(job, context={"request": request}).data)


urlpatterns = [
    path("flows/<int:flow_id>/preview/", FlowPreviewApi.as_view(), name="api-flow-preview"),
    path("estimate/", EstimateApi.as_view(), name="api-estimate"),
    path("wizard-jobs/<int:job_id>/", WizardJobApi.as_view(), name="api-wizard-job"),
]
