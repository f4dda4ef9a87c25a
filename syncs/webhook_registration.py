"""Keeping a Pipedrive webhook registered while a write-back flow is enabled: registered when one is
enabled, removed when none is, re-registered by a 10-minute check when Pipedrive deleted it (it does
after 3 days of failed deliveries). The receiver is in syncs/webhooks.py."""

from __future__ import annotations

import logging
import secrets
from typing import Any

from django.conf import settings
from django.db import transaction
from django_q.tasks import async_task

from connectors.base import ConnectorError
from connectors.models import Connection
from connectors.registry import connector_for
from syncs.kinds import flow_kind_get
from syncs.models import Flow
from syncs.webhooks import HMAC_KEY, PASSWORD_KEY, USER_KEY, receiver_forget, webhook_events_requeue_stale

log = logging.getLogger(__name__)

WEBHOOK_ID_OPTION = "webhook_id"  # Connection.options: the registered subscription's id
EVENT_OBJECT, EVENT_ACTION = "deal", "change"  # what a write-back needs: deals reaching won / a stage


def flow_is_writeback(*, flow: Flow) -> bool:
    try:
        return flow_kind_get(system=flow.source.system, name=flow.kind).direction == "to_erp"
    except LookupError:
        return False


def writeback_enabled(*, connection: Connection) -> bool:
    flows = Flow.objects.filter(target_id=connection.pk, enabled=True).select_related("source")
    return any(flow_is_writeback(flow=flow) for flow in flows)


def webhook_subscription_url(*, connection: Connection) -> str:
    base = str(settings.PUBLIC_BASE_URL or "").rstrip("/")
    if not base:
        raise ConnectorError("PUBLIC_BASE_URL is not set, so Pipedrive has no address to send deal changes to; "
                             "the scheduled poll still finds them.", permanent=True)
    return f"{base}/hooks/pipedrive/{connection.uuid}/"


def webhook_credentials_ensure(*, connection: Connection) -> tuple[str, str]:
    """The connection's Basic-auth pair for Pipedrive, generated once (encrypted with the credentials)."""
    with transaction.atomic():
        row = Connection.objects.select_for_update().get(pk=connection.pk)
        credentials = dict(row.credentials or {})
        if not credentials.get(USER_KEY) or not credentials.get(PASSWORD_KEY):
            credentials[USER_KEY] = "mlc-" + secrets.token_hex(6)
            credentials[PASSWORD_KEY] = secrets.token_urlsafe(32)
            row.credentials = credentials
            row.credentials_version += 1
            row.save(update_fields=["credentials", "credentials_version", "updated"])
    connection.credentials, connection.credentials_version = row.credentials, row.credentials_version
    receiver_forget(connection=row)
    return credentials[USER_KEY], credentials[PASSWORD_KEY]


def webhook_signing_secret_set(*, connection: Connection, secret: str | None = None) -> str:
    """Require `X-ML-Signature` from now on (a relay signs with the returned secret); "" turns it off."""
    secret = secrets.token_urlsafe(32) if secret is None else secret
    with transaction.atomic():
        row = Connection.objects.select_for_update().get(pk=connection.pk)
        credentials = {k: v for k, v in (row.credentials or {}).items() if k != HMAC_KEY}
        if secret:
            credentials[HMAC_KEY] = secret
        row.credentials = credentials
        row.credentials_version += 1
        row.save(update_fields=["credentials", "credentials_version", "updated"])
    connection.credentials = row.credentials
    receiver_forget(connection=row)
    return secret


def _webhook_id_store(connection: Connection, webhook_id: Any) -> None:
    with transaction.atomic():
        row = Connection.objects.select_for_update().only("id", "options").get(pk=connection.pk)
        options = {k: v for k, v in (row.options or {}).items() if k != WEBHOOK_ID_OPTION}
        if webhook_id is not None:
            options[WEBHOOK_ID_OPTION] = webhook_id
        Connection.objects.filter(pk=connection.pk).update(options=options)
    connection.options = options


def webhook_reconcile(*, connection: Connection) -> str:
    """Make Pipedrive hold exactly one deal-change subscription to our address while a write-back flow
    of this connection is enabled, and none otherwise. Idempotent: run on enable/disable and every 10
    minutes, it re-registers a subscription Pipedrive deleted (3 days of failed deliveries) and adopts
    one whose create answer was lost. Returns what it did: none | ok | registered | re-registered | removed."""
    connection = Connection.objects.get(pk=connection.pk)
    wanted = writeback_enabled(connection=connection)
    stored_id = (connection.options or {}).get(WEBHOOK_ID_OPTION)
    if not wanted and stored_id is None:
        return "none"
    if connection.status == Connection.Status.PAUSED:
        return "paused"  # support paused it: no calls until it is resumed
    url = webhook_subscription_url(connection=connection)
    client = connector_for(connection)
    try:
        hooks = client.webhook_list()
        ours = [h for h in hooks if h.get("subscription_url") == url]
        # Registered under an earlier PUBLIC_BASE_URL: ours by id only, and pointing at the wrong address.
        moved = [h for h in hooks if str(h.get("id")) == str(stored_id) and h not in ours]
        for hook in moved:
            client.webhook_delete(hook["id"])
        if not wanted:
            for hook in ours:
                client.webhook_delete(hook["id"])
            _webhook_id_store(connection, None)
            log.info("Pipedrive webhook of connection %s removed (no write-back flow enabled)", connection.pk)
            return "removed"
        keep = next((h for h in ours if str(h["id"]) == str(stored_id)), None) or (ours[0] if ours else None)
        for hook in ours:
            if hook is not keep:
                client.webhook_delete(hook["id"])
        if keep is not None:
            if str(keep["id"]) != str(stored_id):
                _webhook_id_store(connection, keep["id"])
            return "ok"
        user, password = webhook_credentials_ensure(connection=connection)
        created = client.webhook_create(subscription_url=url, event_action=EVENT_ACTION, event_object=EVENT_OBJECT,
                                        http_auth_user=user, http_auth_password=password, version="2.0",
                                        name=f"ml-connector write-back: {connection.name}"[:255])
        _webhook_id_store(connection, created.get("id"))
        if stored_id is not None and not moved:
            log.warning("Pipedrive webhook %s of connection %s was gone (Pipedrive deletes one after 3 days of "
                        "failed deliveries); registered again as %s", stored_id, connection.pk, created.get("id"))
            return "re-registered"
        log.info("Pipedrive webhook %s registered for connection %s", created.get("id"), connection.pk)
        return "registered"
    finally:
        client.session.close()


def webhook_reconcile_queue(*, connection_id: int) -> None:
    """After the current transaction commits, let a worker reconcile (never inside a web request)."""
    transaction.on_commit(lambda: async_task("syncs.tasks.webhook_reconcile_task", connection_id, group="webhooks"))


def webhooks_check() -> dict[str, int]:
    """The scheduled check: reconcile every Pipedrive connection that wants or holds a subscription,
    and queue events a broker failure left behind."""
    flows = Flow.objects.filter(enabled=True).select_related("source").only("id", "kind", "target_id", "source__system")
    targets = {flow.target_id for flow in flows if flow_is_writeback(flow=flow)}
    holders = set(Connection.objects.filter(system=Connection.System.PIPEDRIVE, options__has_key=WEBHOOK_ID_OPTION)
                  .values_list("id", flat=True))
    outcomes: dict[str, int] = {}
    for connection in Connection.objects.filter(pk__in=targets | holders, system=Connection.System.PIPEDRIVE):
        try:
            outcome = webhook_reconcile(connection=connection)
        except ConnectorError as exc:
            log.warning("Pipedrive webhook check for connection %s failed (%s): %s", connection.pk, exc.kind,
                        exc.message)
            outcome = f"failed_{exc.kind}"
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    outcomes["requeued"] = webhook_events_requeue_stale()
    return outcomes
