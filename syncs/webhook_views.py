"""The Pipedrive webhook endpoint: no login, no CSRF (Pipedrive authenticates with Basic auth);
everything else is in syncs/webhooks.py."""

from __future__ import annotations

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from syncs.webhooks import delivery_receive


@csrf_exempt
@require_POST
def pipedrive_webhook(request, connection_uuid):
    receipt = delivery_receive(connection_uuid=connection_uuid, meta=request.META, read=request.read)
    response = JsonResponse({"status": receipt.message}, status=receipt.status)
    if receipt.status == 401:
        response["WWW-Authenticate"] = 'Basic realm="ml-connector webhooks"'
    return response
