"""DRF endpoints for flows, runs and records: thin views over services and selectors."""

from django.shortcuts import get_object_or_404
from django.urls import path
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response

from api.base import TenantApiView, TenantListApiView, query_choice, query_text, query_typed_not_blank
from api.errors import Conflict
from api.pagination import WHOLE_NUMBER
from connectors.models import Connection
from connectors.registry import SYSTEMS, flow_kinds
from syncs.models import Flow, SyncRecord, SyncRun
from syncs.selectors import (
    RecordFilters,
    RunFilters,
    flow_list,
    record_failures_outstanding,
    record_list,
    run_list,
    run_search,
)
from syncs.services import (
    FlowBusy,
    flow_create,
    flow_pause,
    flow_resume,
    flow_stage_actions_set,
    replay_queue,
)
from tenants.selectors import tenant_scope

FLOW_KIND_NAMES = sorted({name for entry in SYSTEMS for name in flow_kinds(entry.key)})


class FlowOutput(serializers.ModelSerializer):
    mappings = serializers.SerializerMethodField()

    class Meta:
        model = Flow
        fields = ["id", "name", "kind", "source", "target", "interval_minutes", "enabled", "options", "next_run_at",
                  "paused_until", "pause_reason", "running_since", "mappings"]

    def get_mappings(self, obj) -> list[dict]:
        return [{"source": m.source, "target": m.target, "lookup": m.lookup, "required": m.required}
                for m in obj.mappings.all()]


class RunOutput(serializers.ModelSerializer):
    status_url = serializers.SerializerMethodField(help_text="GET it to follow a queued or running run.")

    class Meta:
        model = SyncRun
        fields = ["id", "flow", "trigger", "status", "reason", "started", "finished", "read", "created", "updated", "adopted",
                  "unchanged", "skipped", "failed", "pipedrive_calls", "tokens_spent", "error", "status_url"]

    def get_status_url(self, obj) -> str:
        from django.urls import reverse

        path = reverse("api-run", kwargs={"run_id": obj.pk})
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request else path


class RecordOutput(serializers.ModelSerializer):
    class Meta:
        model = SyncRecord
        fields = ["id", "run", "flow", "direction", "source_object", "external_id", "target_object", "target_id",
                  "action", "outcome", "payload", "response_status", "response_excerpt", "error_kind",
                  "error_message", "attempt", "replay_of", "created", "completed"]


class FlowListApi(TenantListApiView):
    """Your flows (paginated, filtered by `enabled` and `kind`); POST creates one with its kind's default mappings."""

    class Input(serializers.Serializer):
        source = serializers.IntegerField()
        target = serializers.IntegerField()
        kind = serializers.ChoiceField(choices=FLOW_KIND_NAMES, help_text="A flow kind of the source's system.")
        name = serializers.CharField(required=False, allow_blank=True)
        interval_minutes = serializers.IntegerField(min_value=1, max_value=1440, default=15)
        create_missing_fields = serializers.BooleanField(default=True)
        stage_actions = serializers.DictField(child=serializers.CharField(), required=False,
                                              help_text="Stage write-back flows: Pipedrive stage id → action.")

    @extend_schema(operation_id="flows_list", responses=FlowOutput(many=True), parameters=[
        OpenApiParameter("enabled", bool, description="Only enabled (true) or paused (false) flows."),
        OpenApiParameter("kind", str, description="Only flows of this kind."),
    ])
    def get(self, request):
        flows = flow_list(tenant=request.tenant).prefetch_related("mappings").order_by("name", "id")
        enabled = query_choice(request, "enabled", ["true", "false"])
        if enabled is not None:
            flows = flows.filter(enabled=enabled == "true")
        if kind := query_text(request, "kind"):
            flows = flows.filter(kind=kind)
        return self.paginated(request, flows, FlowOutput)

    @extend_schema(operation_id="flows_create", request=Input, responses={201: FlowOutput, 404: None})
    def post(self, request):
        tenant = request.tenant
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        conns = tenant_scope(Connection.objects.all(), tenant=tenant)
        source = get_object_or_404(conns, pk=data.validated_data["source"])
        target = get_object_or_404(conns, pk=data.validated_data["target"])
        try:
            flow = flow_create(tenant=tenant, source=source, target=target, kind=data.validated_data["kind"],
                               name=data.validated_data.get("name", ""),
                               interval_minutes=data.validated_data["interval_minutes"],
                               options={"create_missing_fields": data.validated_data["create_missing_fields"],
                                        **({"stage_actions": data.validated_data["stage_actions"]}
                                           if "stage_actions" in data.validated_data else {})})
        except (ValueError, LookupError) as exc:
            raise ValidationError({"detail": str(exc)}) from exc
        return Response(FlowOutput(flow).data, status=status.HTTP_201_CREATED)


class FlowDetailApi(TenantApiView):
    class Patch(serializers.Serializer):
        stage_actions = serializers.DictField(
            child=serializers.CharField(), required=False,
            help_text='Write-back flows that run ERP actions: Pipedrive stage id → action, e.g. '
                      '{"3": "Release", "5": "Reserve"}. Left out: nothing changes.')

    @extend_schema(operation_id="flows_retrieve", responses=FlowOutput)
    def get(self, request, flow_id):
        return Response(FlowOutput(get_object_or_404(flow_list(tenant=request.tenant), pk=flow_id)).data)

    @extend_schema(operation_id="flows_partial_update", request=Patch, responses=FlowOutput)
    def patch(self, request, flow_id):
        flow = get_object_or_404(flow_list(tenant=request.tenant), pk=flow_id)
        data = self.Patch(data=request.data)
        data.is_valid(raise_exception=True)
        if "stage_actions" not in data.validated_data:
            return Response(FlowOutput(flow).data)
        try:
            flow = flow_stage_actions_set(flow=flow, table=data.validated_data["stage_actions"])
        except ValueError as exc:
            raise ValidationError({"stage_actions": [str(exc)]}) from exc
        return Response(FlowOutput(flow).data)


class FlowActionApi(TenantApiView):
    """POST /api/flows/{id}/run/ (queues a run now), /pause/, /resume/."""

    @extend_schema(operation_id="flows_action", request=None, parameters=[
                       OpenApiParameter("action", str, OpenApiParameter.PATH, enum=["run", "pause", "resume"])],
                   responses={200: FlowOutput, 202: inline_serializer("FlowQueued", {
                       "queued": serializers.BooleanField(), "flow": serializers.IntegerField()})})
    def post(self, request, flow_id, action):
        flow = get_object_or_404(flow_list(tenant=request.tenant), pk=flow_id)
        if action == "pause":
            flow = flow_pause(flow=flow)
        elif action == "resume":
            flow = flow_resume(flow=flow)
        elif action == "run":
            from django_q.tasks import async_task

            async_task("syncs.tasks.flow_run_task", flow.pk, "manual", task_name=f"flow-{flow.pk}-manual")
            return Response({"queued": True, "flow": flow.pk}, status=status.HTTP_202_ACCEPTED)
        else:
            raise NotFound("Unknown action: use run, pause or resume.")
        return Response(FlowOutput(flow).data)


def _int_param(request, name: str) -> int | None:
    value = request.query_params.get(name)
    if value in (None, ""):
        return None
    if not WHOLE_NUMBER.fullmatch(value):  # int() would also take " 5", "+5" and "5_0"
        raise ValidationError({name: f"'{value}' is not a number."})
    return int(value)


class RunFilterInput(serializers.Serializer):
    flow = serializers.IntegerField(required=False, min_value=1)
    status = serializers.ChoiceField(choices=SyncRun.Status.choices, required=False)
    trigger = serializers.ChoiceField(choices=SyncRun.Trigger.choices, required=False)
    started_from = serializers.DateField(required=False, help_text="Started on or after this day (UTC).")
    started_to = serializers.DateField(required=False, help_text="Started on or before this day (UTC).")
    q = serializers.CharField(required=False, max_length=200,
                              help_text="Run number, words of its error, or an external id it touched.")


class RunListApi(TenantListApiView):
    """Runs, newest first (paginated; filtered by flow, status, trigger, start dates and a search)."""

    @extend_schema(operation_id="runs_list", parameters=[RunFilterInput], responses=RunOutput(many=True))
    def get(self, request):
        _int_param(request, "flow")  # strict: DRF's IntegerField would also take " 5"
        query_typed_not_blank(request, "flow", "status", "trigger", "started_from", "started_to")
        data = RunFilterInput(data=request.query_params)
        data.is_valid(raise_exception=True)
        f = data.validated_data
        runs = run_search(tenant=request.tenant, filters=RunFilters(
            flow_id=f.get("flow"), status=f.get("status"), trigger=f.get("trigger"),
            started_from=f.get("started_from"), started_to=f.get("started_to"), search=f.get("q")))
        return self.paginated(request, runs, RunOutput)


class RunDetailApi(TenantApiView):
    @extend_schema(operation_id="runs_retrieve", responses=RunOutput)
    def get(self, request, run_id):
        run = get_object_or_404(run_list(tenant=request.tenant), pk=run_id)
        return Response(RunOutput(run, context={"request": request}).data)


class RecordFilterInput(serializers.Serializer):
    flow = serializers.IntegerField(required=False, min_value=1)
    run = serializers.IntegerField(required=False, min_value=1)
    outcome = serializers.ChoiceField(choices=SyncRecord.Outcome.choices, required=False)
    action = serializers.ChoiceField(choices=SyncRecord.Action.choices, required=False)
    error_kind = serializers.ChoiceField(choices=["permanent", "transient", "auth"], required=False)
    external_id = serializers.CharField(required=False, max_length=200, help_text="Part of the ERP record's id.")


class RecordListApi(TenantListApiView):
    """Audit rows, newest first (paginated; filtered by flow, run, outcome, action, error kind, external id)."""

    @extend_schema(operation_id="records_list", parameters=[RecordFilterInput], responses=RecordOutput(many=True))
    def get(self, request):
        for name in ("flow", "run"):
            _int_param(request, name)  # strict: DRF's IntegerField would also take " 5"
        query_typed_not_blank(request, "flow", "run", "outcome", "action", "error_kind")
        data = RecordFilterInput(data=request.query_params)
        data.is_valid(raise_exception=True)
        f = data.validated_data
        filters = RecordFilters(flow_id=f.get("flow"), run_id=f.get("run"), outcome=f.get("outcome"),
                                action=f.get("action"), external_id=f.get("external_id"),
                                error_kind=f.get("error_kind"))
        return self.paginated(request, record_list(tenant=request.tenant, filters=filters).order_by("-id"),
                              RecordOutput)


class RecordReplayApi(TenantApiView):
    """Queues the replay on a worker: 202 with the replay run ("queued"); follow its `status_url`."""

    @extend_schema(operation_id="records_replay", request=None, responses={202: RunOutput, 409: None})
    def post(self, request, record_id):
        record = get_object_or_404(record_list(tenant=request.tenant), pk=record_id)
        if record.outcome != SyncRecord.Outcome.FAILED:
            raise Conflict("Only failed records can be replayed.")
        try:
            runs = replay_queue(records=[record], actor=request.user)
        except FlowBusy as exc:
            raise Conflict(str(exc)) from None
        return Response(_runs_now(runs[0], request), status=status.HTTP_202_ACCEPTED)


class RunReplayApi(TenantApiView):
    """Queues the replay of the run's failures: 202 with the replay runs; follow their `status_url`."""

    @extend_schema(operation_id="runs_replay_failures", request=None,
                   responses={202: RunOutput(many=True), 409: None})
    def post(self, request, run_id):
        run = get_object_or_404(run_list(tenant=request.tenant), pk=run_id)
        failed = list(record_failures_outstanding(flow=run.flow).filter(run=run))
        if not failed:
            raise Conflict("This run has no failed records left to replay.")
        try:
            runs = replay_queue(records=failed, actor=request.user)
        except FlowBusy as exc:
            raise Conflict(str(exc)) from None
        return Response([_runs_now(r, request) for r in runs], status=status.HTTP_202_ACCEPTED)


def _runs_now(run: SyncRun, request) -> dict:
    run.refresh_from_db()  # a fast worker may already have moved it on
    return RunOutput(run, context={"request": request}).data


urlpatterns = [
    path("flows/", FlowListApi.as_view(), name="api-flows"),
    path("flows/<int:flow_id>/", FlowDetailApi.as_view(), name="api-flow"),
    path("flows/<int:flow_id>/<str:action>/", FlowActionApi.as_view(), name="api-flow-action"),
    path("runs/", RunListApi.as_view(), name="api-runs"),
    path("runs/<int:run_id>/", RunDetailApi.as_view(), name="api-run"),
    path("runs/<int:run_id>/replay/", RunReplayApi.as_view(), name="api-run-replay"),
    path("records/", RecordListApi.as_view(), name="api-records"),
    path("records/<int:record_id>/replay/", RecordReplayApi.as_view(), name="api-record-replay"),
]
