"""/healthz: is the database answering, and can the task broker take work? Unauthenticated and cheap."""

from __future__ import annotations

import logging

from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from ops.broker import broker_name, broker_ping

log = logging.getLogger(__name__)


def check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


CHECKS = {
    "database": (check_database, "The database did not answer."),
    "broker": (broker_ping, "The task broker did not answer."),
}


def health_status() -> tuple[dict[str, str], bool]:
    """{"database": "ok" | plain words, "broker": ...} and whether everything is ok."""
    result: dict[str, str] = {}
    for name, (check, failure) in CHECKS.items():
        try:
            check()
            result[name] = "ok"
        except Exception as exc:  # any failure is "down"; the class name is logged, never the message (DSNs)
            if name == "broker" and broker_name() == "redis":
                failure = "Redis (the task broker) did not answer."
            result[name] = failure
            log.warning("health check %s failed: %s", name, type(exc).__name__)
    return result, all(value == "ok" for value in result.values())


@never_cache
@require_GET
def healthz(request):
    result, ok = health_status()
    return JsonResponse(result, status=200 if ok else 503)
