"""Deal won → SAP B1 order through every real part: enabling the flow registers the webhook, the
sandbox delivers to Django's live server (Basic auth), the receiver stores the event and a django-q2
task hands it to the write-back, which makes exactly one B1 order and writes its number on the deal;
the number's own change event comes back and makes nothing."""

from __future__ import annotations

import pytest
from django.db import connections

from syncs.models import Flow, WebhookEvent, WritebackLink
from syncs.services import flow_create
from tests.syncs.test_writeback import KIND, WritebackWorld

pytestmark = pytest.mark.django_db(transaction=True)  # the live server answers on its own thread


def test_a_deal_won_in_pipedrive_becomes_exactly_one_b1_order_through_the_receiver(
        sandbox, tenant, live_server, settings, monkeypatch, q_sync):
    monkeypatch.setitem(connections.settings["default"], "CONN_MAX_AGE", 0)
    settings.PUBLIC_BASE_URL = live_server.url
    wb = WritebackWorld.build(sandbox, tenant, webhooks=False)
    Flow.objects.filter(pk=wb.flow.pk).delete()  # built before PUBLIC_BASE_URL: register through a fresh one
    wb.flow = flow_create(tenant=tenant, source=wb.world.b1, target=wb.world.pipedrive, kind=KIND)
    [sub] = wb.world.pd("GET", "webhooks")["webhooks"]
    assert sub["subscription_url"] == f"{live_server.url}/hooks/pipedrive/{wb.world.pipedrive.uuid}/"

    deal_id, card_code, expected = wb.deal()
    wb.win(deal_id)
    sandbox.control("POST", "pipedrive/webhooks/drain", json={"timeout_s": 30})

    orders = wb.orders()
    assert len(orders) == 1, (list(WebhookEvent.objects.values("action", "status", "error", "entity_id")),
                              list(WritebackLink.objects.values()))
    assert orders[0]["CardCode"] == card_code and orders[0]["NumAtCard"] == f"PD-{deal_id}"
    assert [(ln["ItemCode"], ln["Quantity"], ln["Price"]) for ln in orders[0]["lines"]] == expected
    assert str(wb.deal_number(deal_id)) == str(orders[0]["DocNum"])
    link = WritebackLink.objects.get(flow=wb.flow, deal_id=str(deal_id))
    assert link.state == WritebackLink.State.DONE and link.document_id == str(orders[0]["DocEntry"])
    events = WebhookEvent.objects.filter(entity_id=str(deal_id))
    # the win, the deal products' recalculation and our own number write: all stored, all processed
    assert events.count() >= 2
    assert set(events.values_list("status", flat=True)) <= {WebhookEvent.Status.PROCESSED,
                                                          WebhookEvent.Status.IGNORED}
    # a poll afterwards finds the deal done: still one order
    assert wb.poll().status in ("succeeded", "partial")
    assert len(wb.orders()) == 1
