"""The webhook events page: deliveries received through the real receiver (authenticated, refused,
repeated), processed by the task, reprocessed one at a time."""

import base64
import json

import pytest
from django.urls import reverse
from django_q.models import OrmQ

from syncs.models import WebhookEvent, WebhookRejection
from syncs.webhooks import receiver_forget, webhook_event_process
from tests.factories import ConnectionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def hooked(tenant):
    conn = ConnectionFactory(
        tenant=tenant,
        system="pipedrive",
        name="Acme Pipedrive",
        credentials={"api_token": "pd-token", "webhook_user": "hook", "webhook_password": "pw-1"},
        options={"auth": "api_token"},
    )
    receiver_forget(connection=conn)
    return conn


def deliver(client, conn, body, *, password="pw-1"):
    auth = base64.b64encode(f"hook:{password}".encode()).decode()
    return client.post(
        reverse("pipedrive_webhook", kwargs={"connection_uuid": conn.uuid}),
        json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Basic {auth}",
    )


def v2(event_id: str, obj: str = "person", entity: int = 7) -> dict:
    return {
        "meta": {
            "id": event_id,
            "action": "change",
            "entity": obj,
            "entity_id": str(entity),
            "version": "2.0",
        },
        "data": {"id": entity},
        "previous": {},
    }


def test_received_refused_processed_and_repeated_deliveries_show(owner_client, client, hooked):
    assert deliver(client, hooked, v2("ev-1")).status_code == 200
    assert deliver(client, hooked, v2("ev-1")).status_code == 200  # Pipedrive's retry of the same delivery
    assert deliver(client, hooked, v2("ev-1")).status_code == 200
    assert deliver(client, hooked, v2("ev-2", entity=8), password="wrong").status_code == 401
    event = WebhookEvent.objects.get()
    assert (event.duplicates, WebhookRejection.objects.count()) == (2, 1)
    webhook_event_process(event_id=event.pk)  # what the queued task does: a person event is ignored
    assert (
        "hx-select" not in owner_client.get(reverse("webhook_event_list")).content.decode()
    )  # nothing waits

    page = owner_client.get(reverse("webhook_event_list"))
    body = page.content.decode()
    assert "person.change" in body and "Ignored (not a deal event)" in body
    assert ">2<" in body.replace('<div class="help">', "<")  # repeats
    assert "wrong credentials" in body and "HTTP 401" in body
    assert "pw-1" not in body and "Basic" in body  # how it was authenticated, never the credentials

    only_repeated = owner_client.get(reverse("webhook_event_list"), {"duplicates": "on", "status": "ignored"})
    assert [e.pk for e in only_repeated.context["page"].object_list] == [event.pk]
    none = owner_client.get(reverse("webhook_event_list"), {"status": "failed"})
    assert list(none.context["page"].object_list) == [] and "No webhook events match" in none.content.decode()


def test_reprocess_one_queues_a_task(owner_client, client, hooked):
    deliver(client, hooked, v2("ev-9", obj="deal", entity=9))
    event = WebhookEvent.objects.get()
    OrmQ.objects.all().delete()  # the receiver's own queueing
    WebhookEvent.objects.filter(pk=event.pk).update(status="failed", error="transient: SAP B1 did not answer")
    response = owner_client.post(reverse("webhook_event_reprocess", kwargs={"id": event.pk}), follow=True)
    event.refresh_from_db()
    assert event.status == "stored" and event.error == "" and event.processed_at is None
    task = OrmQ.objects.get().task
    assert task["func"] == "syncs.tasks.webhook_event_process_task" and tuple(task["args"]) == (event.pk,)
    body = response.content.decode()
    assert f"Delivery #{event.pk} (deal 9) queued" in body and "Stored (waiting for a worker)" in body
    assert 'hx-select="#webhook-events"' in body  # the list refreshes itself until a worker has handled it
    owner_client.post(reverse("webhook_event_reprocess", kwargs={"id": event.pk}))
    assert OrmQ.objects.count() == 1  # already waiting for a worker: not queued twice


def test_events_page_is_paginated(owner_client, hooked):
    WebhookEvent.objects.bulk_create(
        [
            WebhookEvent(
                connection=hooked,
                delivery_id=f"d-{n}",
                version="2",
                body={},
                object="deal",
                action="change",
                entity_id=str(n),
                auth_result="basic",
            )
            for n in range(55)
        ]
    )
    first = owner_client.get(reverse("webhook_event_list")).context["page"]
    second = owner_client.get(reverse("webhook_event_list"), {"page": 2}).context["page"]
    assert (len(first.object_list), len(second.object_list), first.paginator.count) == (50, 5, 55)


def test_other_tenants_events_stay_hidden(owner_client, other_tenant, hooked):
    theirs = ConnectionFactory(tenant=other_tenant, system="pipedrive", name="Globex Pipedrive")
    event = WebhookEvent.objects.create(
        connection=theirs,
        delivery_id="globex-1",
        version="2",
        body={},
        object="deal",
        action="change",
        entity_id="31337",
        auth_result="basic",
    )
    WebhookRejection.objects.create(connection=theirs, status=401, reason="globex wrong credentials")
    body = owner_client.get(reverse("webhook_event_list")).content.decode()
    assert "31337" not in body and "globex" not in body.lower()
    assert owner_client.post(reverse("webhook_event_reprocess", kwargs={"id": event.pk})).status_code == 404
    assert not OrmQ.objects.exists()


def test_viewers_cannot_reprocess(viewer_client, hooked):
    event = WebhookEvent.objects.create(
        connection=hooked,
        delivery_id="x",
        version="2",
        body={},
        object="deal",
        action="change",
        entity_id="1",
        auth_result="basic",
        status="failed",
    )
    assert "Reprocess" not in viewer_client.get(reverse("webhook_event_list")).content.decode()
    assert viewer_client.post(reverse("webhook_event_reprocess", kwargs={"id": event.pk})).status_code == 403
    event.refresh_from_db()
    assert event.status == "failed"
