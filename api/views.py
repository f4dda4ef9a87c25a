"""Thin API views: serializers validate shapes, services write, selectors read (tenant-scoped)."""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.templatetags.static import static
from drf_spectacular.utils import OpenApiParameter, extend_schema
from drf_spectacular.views import SpectacularSwaggerView
from rest_framework import exceptions, status
from rest_framework.response import Response

from api.base import TenantApiView, TenantListApiView, query_choice
from api.errors import Conflict
from api.serializers import ConnectionCreateInput, ConnectionOutput, ConnectionUpdateInput, PingOutput
from connectors.models import Connection
from connectors.selectors import connection_get, connection_list
from connectors.services import connection_create, connection_delete, connection_ping_queue, connection_update


def _service_errors(exc: DjangoValidationError) -> exceptions.ValidationError:
    if hasattr(exc, "error_dict"):
        return exceptions.ValidationError(exc.message_dict)
    return exceptions.ValidationError({"non_field_errors": exc.messages})


class ConnectionListApi(TenantListApiView):
    """Your organisation's connections. Secrets are write-only: reads show `credentials_masked`."""

    @extend_schema(responses=ConnectionOutput(many=True), operation_id="connections_list", parameters=[
        OpenApiParameter("system", str, enum=[c for c, _ in Connection.System.choices], description="Only this system."),
        OpenApiParameter("status", str, enum=[c for c, _ in Connection.Status.choices], description="Only this status."),
    ])
    def get(self, request):
        connections = connection_list(tenant=request.tenant)
        for name, choices in (("system", Connection.System.choices), ("status", Connection.Status.choices)):
            if value := query_choice(request, name, choices):
                connections = connections.filter(**{name: value})
        return self.paginated(request, connections, ConnectionOutput)

    @extend_schema(request=ConnectionCreateInput, responses={201: ConnectionOutput}, operation_id="connections_create")
    def post(self, request):
        data = ConnectionCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            connection = connection_create(tenant=request.tenant, **data.validated_data)
        except DjangoValidationError as exc:
            raise _service_errors(exc) from None
        return Response(ConnectionOutput(connection).data, status=status.HTTP_201_CREATED)


class ConnectionDetailApi(TenantApiView):
    """One connection. PUT and PATCH both change only the fields sent; a blank or omitted secret
    keeps the stored one. Deleting is refused while flows use the connection."""

    @extend_schema(responses=ConnectionOutput, operation_id="connections_retrieve")
    def get(self, request, id):
        return Response(ConnectionOutput(connection_get(tenant=request.tenant, id=id)).data)

    @extend_schema(request=ConnectionUpdateInput, responses=ConnectionOutput, operation_id="connections_update")
    def put(self, request, id):
        return self._update(request, id)

    @extend_schema(request=ConnectionUpdateInput, responses=ConnectionOutput,
                   operation_id="connections_partial_update")
    def patch(self, request, id):
        return self._update(request, id)

    @extend_schema(responses={204: None, 409: None}, operation_id="connections_destroy")
    def delete(self, request, id):
        connection = connection_get(tenant=request.tenant, id=id)
        try:
            connection_delete(connection=connection)
        except DjangoValidationError as exc:  # flows still use it: a conflict with the current state
            raise Conflict(" ".join(exc.messages)) from None
        return Response(status=status.HTTP_204_NO_CONTENT)

    def _update(self, request, id):
        # PUT and PATCH both change only what is sent: secrets are write-only and never echoed back,
        # so a client could not resend them for a "full" replacement.
        connection = connection_get(tenant=request.tenant, id=id)
        data = ConnectionUpdateInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            connection = connection_update(connection=connection, **data.validated_data)
        except DjangoValidationError as exc:
            raise _service_errors(exc) from None
        return Response(ConnectionOutput(connection).data)


class ConnectionPingApi(TenantApiView):
    """POST queues a test of the connection on a worker and answers 202 at once; GET (the `status_url`)
    shows whether it is still pending and then its result (plain words, no secrets), also stored on
    the connection."""

    @extend_schema(request=None, responses={202: PingOutput}, operation_id="connections_ping")
    def post(self, request, id):
        connection = connection_ping_queue(connection=connection_get(tenant=request.tenant, id=id))
        return Response(PingOutput.for_connection(connection, status_url=request.build_absolute_uri()),
                        status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses=PingOutput, operation_id="connections_ping_status")
    def get(self, request, id):
        connection = connection_get(tenant=request.tenant, id=id)
        return Response(PingOutput.for_connection(connection, status_url=request.build_absolute_uri()))


class SwaggerUiView(SpectacularSwaggerView):
    """Swagger UI from the vendored static copy (static/vendor/swagger-ui), never a CDN."""

    @staticmethod
    def _swagger_ui_resource(filename):
        return static(f"vendor/swagger-ui/{filename}")

    @staticmethod
    def _swagger_ui_favicon():
        return static("vendor/swagger-ui/favicon-32x32.png")
