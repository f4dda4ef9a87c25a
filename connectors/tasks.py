"""django-q2 entry points: thin wrappers over services."""

from __future__ import annotations


def connection_ping_task(connection_id: int) -> str:
    """Test a connection queued by `connectors.services.connection_ping_queue`; the outcome is stored on it."""
    from connectors.models import Connection
    from connectors.services import connection_ping

    connection = Connection.objects.filter(pk=connection_id).first()
    if connection is None:  # deleted while queued
        return "gone"
    return "ok" if connection_ping(connection=connection).ok else "failed"
