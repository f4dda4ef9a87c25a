"""Deal stage → IFS order status over loopback HTTP: moving a deal through mapped stages in the Pipedrive
sandbox runs the mapped bound actions on its IFS order, exactly once per stage change, counted at the IFS
sandbox (actions and transitions per order); stale ETags, refusals, duplicates, missed webhooks and our
own status echo."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import pytest
from django.db import connections

from connectors.registry import connector_for
from syncs.models import Flow, SyncRecord, SyncRun, WritebackAction
from syncs.services import flow_create, flow_run, record_replay
from syncs.writeback import deal_event_handle
from tests.syncs.ifs_world import CUSTOMERS, NS, ORDERS, STAGES, IfsWorld
from tests.syncs.test_writeback import Event, Hooks

pytestmark = pytest.mark.django_db(transaction=True)

TABLE = {"2": "Release", "3": "Reserve", "4": "Deliver"}


@dataclass
class StageWorld:
    world: IfsWorld
    flow: Flow
    hooks: Hooks | None

    @classmethod
    def build(cls, sandbox, tenant, *, webhooks: bool = True, table: dict | None = None) -> StageWorld:
        world = IfsWorld.build(sandbox, tenant, customers=6, orders=12)
        for kind in (CUSTOMERS, ORDERS):
            assert world.run(kind).status == "succeeded"
        flow = flow_create(tenant=tenant, source=world.ifs, target=world.pipedrive, kind=STAGES,
                           options={"stage_actions": TABLE if table is None else table})
        hooks = None
        if webhooks:
            hooks = Hooks()
            connector_for(world.pipedrive).webhook_create(
                subscription_url=hooks.start(), event_action="*", event_object="deal", http_auth_user="hook",
                http_auth_password="hook-secret-pw", name="deals")
        return cls(world, flow, hooks)

    def planned(self, n: int = 0) -> tuple[str, int]:
        """An order in Planned and its deal."""
        orders = sorted(o["OrderNo"] for o in self.world.ifs_all("sales_orders") if o["Objstate"] == "Planned")
        return orders[n], self.world.deal_of(orders[n])

    def move(self, deal_id: int, stage: int) -> dict:
        return self.world.pd("PATCH", f"ui/deals/{deal_id}", json={"stage_id": stage})

    def events(self, deal_id: int, *, start: int = 0) -> list[Event]:
        self.world.sandbox.control("POST", "pipedrive/webhooks/drain", json={"timeout_s": 10})
        return [Event.from_v2(self.world.pipedrive, p) for p in self.hooks.payloads[start:]
                if str(p["meta"]["entity_id"]) == str(deal_id)]

    def deliver(self, deal_id: int, *, start: int = 0) -> list[list[str]]:
        return [deal_event_handle(event=e) for e in self.events(deal_id, start=start)]

    def transitions(self, order_no: str) -> list[str]:
        return self.world.stats()["transitions_by_order"].get(order_no, [])

    def actions(self, order_no: str) -> dict:
        return self.world.stats()["actions_by_order"].get(order_no, {})

    def poll(self) -> SyncRun:
        return flow_run(flow=Flow.objects.select_related("source", "target").get(pk=self.flow.pk))

    def notes_on(self, deal_id: int) -> list[dict]:
        return [n for n in self.world.records("notes") if n.get("deal_id") == deal_id]

    def close(self) -> None:
        if self.hooks:
            self.hooks.stop()


@pytest.fixture
def sw(sandbox, tenant):
    world = StageWorld.build(sandbox, tenant)
    yield world
    world.close()


def test_moving_a_deal_through_mapped_stages_moves_the_order_through_the_statuses_once_each(sw):
    order_no, deal_id = sw.planned()
    for stage in (2, 3, 4):
        start = len(sw.hooks.payloads)
        sw.move(deal_id, stage)
        outcomes = sw.deliver(deal_id, start=start)
        assert ["done"] in outcomes
    assert sw.transitions(order_no) == ["Planned->Released", "Released->Reserved", "Reserved->Delivered"]
    assert sw.actions(order_no) == {"Release": 1, "Reserve": 1, "Deliver": 1}
    assert sw.world.order(order_no)["Objstate"] == "Delivered"
    assert WritebackAction.objects.filter(flow=sw.flow, deal_id=str(deal_id), state="done").count() == 3
    # an unmapped stage changes nothing
    start = len(sw.hooks.payloads)
    sw.move(deal_id, 5)
    assert sw.deliver(deal_id, start=start) == [["not triggered"]]

    # echo: the orders flow reads the new status back onto the deal; that update's webhook and the
    # poll run no action
    start = len(sw.hooks.payloads)
    sw.world.pd("POST", "stats/reset")
    assert sw.world.run(ORDERS).status == "succeeded"
    status_key = sw.world.key("deals", "Order status")
    deal = next(d for d in sw.world.records("deals") if d["id"] == deal_id)
    assert deal["custom_fields"][status_key] == "Delivered"
    assert sw.deliver(deal_id, start=start) == [["no stage change"]]
    assert sw.poll().status == "succeeded"
    assert sw.world.stats()["actions_called"] == 3


def test_duplicate_deliveries_change_nothing_more(sw):
    order_no, deal_id = sw.planned()
    start = len(sw.hooks.payloads)
    sw.move(deal_id, 2)
    [event] = [e for e in sw.events(deal_id, start=start) if (e.previous or {}).get("stage_id")]
    outcomes = []

    def handle() -> None:
        try:
            outcomes.append(deal_event_handle(event=event))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=handle) for _ in range(3)]  # delivered three times at once
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes).count(["done"]) >= 1 and len(outcomes) == 3
    assert all(o in (["done"], ["sending"]) for o in outcomes), outcomes
    assert deal_event_handle(event=event) == ["done"]  # and once more, later
    assert sw.actions(order_no) == {"Release": 1}
    assert sw.poll().status == "succeeded"
    assert sw.actions(order_no) == {"Release": 1}
    assert SyncRecord.objects.filter(flow=sw.flow, outcome="ok").count() == 1


def test_a_missed_webhook_is_caught_by_the_poll_and_the_late_delivery_changes_nothing(sw):
    order_no, deal_id = sw.planned()
    start = len(sw.hooks.payloads)
    sw.move(deal_id, 2)  # its webhook is not processed: the receiver was down
    run = sw.poll()
    assert run.status == "succeeded" and run.updated == 1, run.error
    assert sw.transitions(order_no) == ["Planned->Released"]
    assert sw.deliver(deal_id, start=start) == [["done"]]  # the late delivery
    assert sw.poll().status == "succeeded"
    assert sw.actions(order_no) == {"Release": 1}


def test_a_stale_etag_is_read_again_and_retried_once_then_reported(sw):
    order_no, deal_id = sw.planned(0)
    # someone edits the order in IFS right after our read, once: the retry after a re-read goes through
    sw.world.ifsctl("POST", f"environments/{NS}/orders/{order_no}/change", json={"on_read": 1})
    sw.move(deal_id, 2)
    run = sw.poll()
    assert run.status == "succeeded" and run.updated == 1, run.error
    assert sw.transitions(order_no) == ["Planned->Released"]
    assert sw.world.stats()["precondition_failed"] == 1

    other_no, other_deal = sw.planned(0)  # the next Planned order
    sw.world.ifsctl("POST", f"environments/{NS}/orders/{other_no}/change", json={"on_read": 2})
    sw.move(other_deal, 2)
    run = sw.poll()
    assert run.status == "partial" and run.failed == 1
    assert sw.transitions(other_no) == []
    assert sw.world.stats()["precondition_failed"] == 3
    [failed] = SyncRecord.objects.filter(flow=sw.flow, external_id=str(other_deal), outcome="failed")
    assert failed.error_kind == "transient" and "changed in IFS meanwhile" in failed.error_message
    assert failed.target_id == other_no and failed.response_status == 412
    # the next poll tries again (a fresh read) and now goes through
    run = sw.poll()
    assert run.status == "succeeded" and run.updated == 1, run.error
    assert sw.transitions(other_no) == ["Planned->Released"]


def test_an_invalid_transition_is_a_failed_record_and_a_note_on_the_deal(sw):
    order_no, deal_id = sw.planned()
    sw.move(deal_id, 4)  # Deliver while Planned: IFS refuses it
    run = sw.poll()
    assert run.status == "partial" and run.failed == 1
    stats = sw.world.stats()
    assert stats["invalid_transitions"] == 1 and sw.transitions(order_no) == []
    [failed] = SyncRecord.objects.filter(flow=sw.flow, outcome="failed")
    assert failed.error_kind == "permanent" and failed.direction == "to_erp"
    assert "Deliver is only allowed" in failed.error_message
    [note] = sw.notes_on(deal_id)
    assert "Deliver is only allowed" in note["content"] and order_no in note["content"]
    # the next poll leaves the refusal alone (no second call, no second note)
    assert sw.poll().failed == 0
    assert sw.world.stats()["invalid_transitions"] == 1 and len(sw.notes_on(deal_id)) == 1
    # fixed in IFS (released there), a replay runs the action once
    sw.world.ifsctl("POST", f"environments/{NS}/orders/{order_no}/change", json={"objstate": "Released"})
    run = record_replay(record=failed)
    assert run.status == "succeeded", run.error
    assert sw.actions(order_no) == {"Deliver": 2}  # the refused call and the replayed one
    assert sw.world.order(order_no)["Objstate"] == "Delivered"


def test_deals_the_inbound_flow_creates_or_updates_run_no_action(sandbox, tenant):
    world = IfsWorld.build(sandbox, tenant, customers=4, orders=6)
    # the default stage is mapped: a deal created in it has not moved, so it runs nothing
    flow = flow_create(tenant=tenant, source=world.ifs, target=world.pipedrive, kind=STAGES,
                       options={"stage_actions": {"1": "Release"}})
    hooks = Hooks()
    connector_for(world.pipedrive).webhook_create(
        subscription_url=hooks.start(), event_action="*", event_object="deal", http_auth_user="hook",
        http_auth_password="hook-secret-pw", name="deals")
    sw = StageWorld(world, flow, hooks)
    try:
        for kind in (CUSTOMERS, ORDERS):
            assert world.run(kind).status == "succeeded"
        order_no = world.ifs_all("sales_orders")[0]["OrderNo"]
        world.ifsctl("POST", f"environments/{NS}/orders/{order_no}/change", json={"objstate": "Cancelled"})
        assert world.run(ORDERS).updated == 1  # the status reaches the deal: an update event
        sandbox.control("POST", "pipedrive/webhooks/drain", json={"timeout_s": 10})
        outcomes = [deal_event_handle(event=Event.from_v2(world.pipedrive, p)) for p in hooks.payloads]
        assert len(outcomes) == 7 and set(map(tuple, outcomes)) == {("no stage change",)}
        assert sw.poll().status == "succeeded"
        assert world.stats()["actions_called"] == 0
        assert not WritebackAction.objects.exists()
    finally:
        sw.close()


def test_stage_changes_through_the_receiver_and_a_django_q2_task_move_the_order(
        sandbox, tenant, live_server, settings, monkeypatch, q_sync):
    from syncs.models import WebhookEvent

    monkeypatch.setitem(connections.settings["default"], "CONN_MAX_AGE", 0)
    settings.PUBLIC_BASE_URL = live_server.url
    sw = StageWorld.build(sandbox, tenant, webhooks=False)  # enabling the flow registered the webhook
    [sub] = sw.world.pd("GET", "webhooks")["webhooks"]
    assert sub["subscription_url"] == f"{live_server.url}/hooks/pipedrive/{sw.world.pipedrive.uuid}/"
    order_no, deal_id = sw.planned()
    for stage in (2, 3):
        sw.move(deal_id, stage)
        sandbox.control("POST", "pipedrive/webhooks/drain", json={"timeout_s": 30})
    assert sw.transitions(order_no) == ["Planned->Released", "Released->Reserved"], list(
        WebhookEvent.objects.values("action", "status", "error"))
    events = WebhookEvent.objects.filter(entity_id=str(deal_id))
    assert events.count() == 2 and set(events.values_list("status", flat=True)) == {"processed"}
    assert sw.poll().status == "succeeded"
    assert sw.actions(order_no) == {"Release": 1, "Reserve": 1}


@pytest.mark.parametrize("mode", ["502", "drop"])
def test_an_action_whose_answer_is_lost_is_not_run_twice(sw, mode):
    order_no, deal_id = sw.planned()
    sw.world.ifsctl("POST", "commit_faults", json={"fraction": 1.0, "mode": mode})
    sw.move(deal_id, 2)
    run = sw.poll()  # IFS releases the order, then the answer is lost
    assert run.failed == 1
    [failed] = SyncRecord.objects.filter(flow=sw.flow, outcome="failed")
    assert failed.error_kind == "transient"
    sw.world.ifsctl("POST", "commit_faults", json={"fraction": 0})
    run = sw.poll()  # the retry reads the order first: already Released, nothing sent
    assert run.status == "succeeded" and run.unchanged >= 1, run.error
    assert sw.actions(order_no) == {"Release": 1} and sw.transitions(order_no) == ["Planned->Released"]
    assert SyncRecord.objects.filter(flow=sw.flow, outcome="ok", replay_of=failed).exists()
