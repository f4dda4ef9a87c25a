"""Write-back over loopback HTTP: a deal won in the Pipedrive sandbox becomes exactly one SAP Business
One sales order (sandbox control `orders` shows what POST Orders created), whatever happens to the
events and answers on the way; its number lands on the deal without causing another order."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from connectors.registry import connector_for
from syncs.models import Flow, RecordLink, SyncRecord, SyncRun, WritebackLink
from syncs.services import flow_create, flow_run, record_replay
from syncs.writeback import deal_event_handle
from tests.syncs.test_sap_b1_flows import B1World

pytestmark = pytest.mark.django_db(transaction=True)

KIND = "deal_won_to_sales_order"


@dataclass
class Event:
    """What the webhook receiver's task hands over: the v2 delivery, normalised."""

    connection: Any
    object: str
    action: str
    entity_id: str
    current: dict | None
    previous: dict | None
    delivery_id: str
    change_source: str = ""

    @classmethod
    def from_v2(cls, connection, payload: dict) -> Event:
        meta = payload["meta"]
        return cls(connection, meta["entity"], meta["action"], meta["entity_id"], payload.get("data"),
                   payload.get("previous"), meta["id"], meta.get("change_source", ""))


@dataclass
class Hooks:
    """A loopback endpoint the Pipedrive sandbox delivers deal webhooks to (the receiver is another
    module's; here the deliveries are only collected)."""

    payloads: list[dict] = field(default_factory=list)

    def start(self) -> str:
        hooks = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                hooks.payloads.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class WritebackWorld:
    world: B1World
    flow: Flow
    pipedrive: Any  # a Pipedrive client for set-up calls
    hooks: Hooks | None = None

    @classmethod
    def build(cls, sandbox, tenant, *, webhooks: bool = True) -> WritebackWorld:
        world = B1World.build(sandbox, tenant, partners=12, contacts_max=1, items=8, invoices=1, seed=5)
        for kind in ("business_partners_to_organizations_and_persons", "items_to_products"):
            assert world.run(kind).status == "succeeded"
        flow = flow_create(tenant=tenant, source=world.b1, target=world.pipedrive, kind=KIND)
        self = cls(world, flow, connector_for(world.pipedrive))
        if webhooks:
            self.hooks = Hooks()
            self.pipedrive.webhook_create(subscription_url=self.hooks.start(), event_action="*", event_object="deal",
                                          http_auth_user="hook", http_auth_password="hook-secret-pw", name="deals")
        return self

    def customer(self, n: int = 0) -> tuple[str, int]:
        partners = [p for p in self.world.b1_all("business_partners")
                    if p["CardType"] == "cCustomer" and p.get("Frozen") != "tYES"]
        card_code = sorted(p["CardCode"] for p in partners)[n]
        return card_code, RecordLink.objects.get(source_object="business_partners", external_id=card_code).target_id

    def products(self) -> list[tuple[str, int]]:
        return sorted(RecordLink.objects.filter(source_object="items").values_list("external_id", "target_id"))

    def deal(self, *, n: int = 0, lines: tuple[tuple[int, float, float], ...] = ((0, 3, 12.5), (2, 1, 99.0))):
        """A deal on a customer's organization with products (index into products, quantity, price)."""
        card_code, org_id = self.customer(n)
        deal = self.world.pd("POST", "ui/deals", json={"title": f"Deal for {card_code}", "org_id": org_id})
        products = self.products()
        expected = []
        for index, quantity, price in lines:
            item_code, product_id = products[index]
            self.pipedrive.deal_product_add(deal["id"], {"product_id": product_id, "quantity": quantity,
                                                         "item_price": price})
            expected.append((item_code, quantity, price))
        return deal["id"], card_code, expected

    def win(self, deal_id: int) -> dict:
        return self.world.pd("POST", f"ui/deals/{deal_id}/win")

    def events(self, deal_id: int, *, start: int = 0) -> list[Event]:
        self.world.sandbox.control("POST", "pipedrive/webhooks/drain", json={"timeout_s": 10})
        return [Event.from_v2(self.world.pipedrive, p) for p in self.hooks.payloads[start:]
                if str(p["meta"]["entity_id"]) == str(deal_id)]

    def won_event(self, deal_id: int) -> Event:
        return next(e for e in self.events(deal_id) if (e.previous or {}).get("status") == "open"
                    and e.current["status"] == "won")

    def orders(self) -> list[dict]:
        return self.world.b1ctl("GET", "orders")["orders"]

    def deal_number(self, deal_id: int) -> Any:
        key = self.world.key("deals", "SAP B1 order number")
        deal = next(d for d in self.world.records("deals") if d["id"] == deal_id)
        return (deal.get("custom_fields") or {}).get(key)

    def notes_on(self, deal_id: int) -> list[dict]:
        return [n for n in self.world.records("notes") if n.get("deal_id") == deal_id]

    def poll(self) -> SyncRun:
        return flow_run(flow=Flow.objects.select_related("source", "target").get(pk=self.flow.pk))

    def close(self) -> None:
        if self.hooks:
            self.hooks.stop()


@pytest.fixture
def wb(sandbox, tenant):
    world = WritebackWorld.build(sandbox, tenant)
    yield world
    world.close()


def assert_one_order(wb: WritebackWorld, deal_id: int, card_code: str, expected: list) -> dict:
    orders = wb.orders()
    assert len(orders) == 1, orders
    order = orders[0]
    assert order["CardCode"] == card_code and order["NumAtCard"] == f"PD-{deal_id}"
    assert [(ln["ItemCode"], ln["Quantity"], ln["Price"]) for ln in order["lines"]] == expected
    return order


def test_a_won_deal_becomes_one_order_even_when_its_event_is_handled_four_times(wb):
    deal_id, card_code, expected = wb.deal()
    wb.win(deal_id)
    event = wb.won_event(deal_id)
    seen = len(wb.hooks.payloads)  # (the won event is drained: what comes next is ours)
    outcomes = [deal_event_handle(event=event) for _ in range(4)]
    assert outcomes == [["done"], ["done"], ["done"], ["done"]]
    order = assert_one_order(wb, deal_id, card_code, expected)
    assert str(wb.deal_number(deal_id)) == str(order["DocNum"])
    rows = SyncRecord.objects.filter(flow=wb.flow)
    assert [(r.direction, r.source_object, r.external_id, r.target_object, r.target_id, r.action, r.outcome)
            for r in rows] == [("to_erp", "deals", str(deal_id), "orders", str(order["DocEntry"]), "create", "ok")]
    link = WritebackLink.objects.get(flow=wb.flow, deal_id=str(deal_id))
    assert (link.state, link.document_id, link.document_number) == ("done", str(order["DocEntry"]),
                                                                   str(order["DocNum"]))
    runs = SyncRun.objects.filter(flow=wb.flow)
    assert [(r.trigger, r.status, r.created) for r in runs] == [("webhook", "succeeded", 1)]

    # Our number on the deal comes back as a change event made through the API: no second order.
    own = wb.events(deal_id, start=seen)
    assert own and all(e.change_source == "api" for e in own)
    for e in own:
        assert deal_event_handle(event=e) in (["done"], ["own change"])
    assert len(wb.orders()) == 1
    # and the poll sees the deal changed, but it is done
    poll = wb.poll()
    assert poll.status == "succeeded" and poll.created == 0 and len(wb.orders()) == 1


def test_our_own_number_change_is_recognised_before_anything_is_sent(wb):
    """Loop safety that does not lean on the link alone: the change event of our own write is known
    by what changed (only our field, through the API)."""
    deal_id, _, _ = wb.deal()
    wb.win(deal_id)
    event = wb.won_event(deal_id)
    seen = len(wb.hooks.payloads)
    deal_event_handle(event=event)
    key = wb.world.key("deals", "SAP B1 order number")
    own = [e for e in wb.events(deal_id, start=seen) if set((e.previous or {}).get("custom_fields") or {}) == {key}]
    assert own
    WritebackLink.objects.filter(flow=wb.flow).delete()  # forget the link: only the event itself tells
    assert deal_event_handle(event=own[0]) == ["own change"]
    assert len(wb.orders()) == 1


def test_a_lost_answer_is_found_by_our_reference_not_created_again(wb):
    deal_id, card_code, expected = wb.deal()
    wb.win(deal_id)
    event = wb.won_event(deal_id)
    wb.world.sandbox.control("POST", "sap_b1/commit_faults", json={"fraction": 1.0, "mode": "502"})
    try:
        assert deal_event_handle(event=event) == ["done"]
    finally:
        wb.world.sandbox.control("POST", "sap_b1/commit_faults", json={"fraction": 0})
    assert wb.world.sandbox.control("GET", "sap_b1/stats")["after_commit_faults"] == 1  # the fault fired
    order = assert_one_order(wb, deal_id, card_code, expected)
    row = SyncRecord.objects.get(flow=wb.flow)
    assert (row.action, row.outcome, row.target_id) == ("adopt", "ok", str(order["DocEntry"]))
    assert str(wb.deal_number(deal_id)) == str(order["DocNum"])
    assert deal_event_handle(event=event) == ["done"] and len(wb.orders()) == 1


def test_without_any_webhook_the_poll_finds_the_won_deal(sandbox, tenant):
    wb = WritebackWorld.build(sandbox, tenant, webhooks=False)
    deal_id, card_code, expected = wb.deal()
    other_id, _, _ = wb.deal(n=1)  # open, not won: left alone
    wb.win(deal_id)
    run = wb.poll()
    assert run.status == "succeeded", run.error
    assert (run.trigger, run.created, run.failed) == ("manual", 1, 0)
    order = assert_one_order(wb, deal_id, card_code, expected)
    assert str(wb.deal_number(deal_id)) == str(order["DocNum"])
    assert not WritebackLink.objects.filter(deal_id=str(other_id)).exists()
    again = wb.poll()  # the number write moved the deal's update_time: seen again, already done
    assert again.status == "succeeded" and again.created == 0 and len(wb.orders()) == 1
    assert Flow.objects.get(pk=wb.flow.pk).cursor.get("deals_since")


def test_a_rejection_leaves_a_failed_row_and_one_note_and_a_replay_after_the_fix_creates_one_order(wb):
    deal_id, card_code, expected = wb.deal()
    wb.world.b1ctl("PATCH", f"records/BusinessPartners/{card_code}", json={"Frozen": "tYES"})
    wb.win(deal_id)
    event = wb.won_event(deal_id)
    assert deal_event_handle(event=event) == ["failed"]
    for _ in range(3):  # repeated deliveries and polls do not hammer B1 or pile notes up
        assert deal_event_handle(event=event) == ["failed"]
    assert wb.poll().created == 0
    assert wb.orders() == [] and wb.world.b1ctl("GET", "orders")["rejected"] == 1
    failed = SyncRecord.objects.get(flow=wb.flow, outcome="failed")
    assert failed.error_kind == "permanent" and failed.direction == "to_erp"
    assert f"Business partner {card_code} is inactive" in failed.error_message
    assert "[ORDR" not in failed.error_message  # B1's field prefix turned into plain words
    notes = wb.notes_on(deal_id)
    assert len(notes) == 1 and f"Business partner {card_code} is inactive" in notes[0]["content"]

    wb.world.b1ctl("PATCH", f"records/BusinessPartners/{card_code}", json={"Frozen": "tNO"})
    replay = record_replay(record=failed)
    assert replay.status == "succeeded", replay.error
    assert replay.created == 1
    order = assert_one_order(wb, deal_id, card_code, expected)
    assert str(wb.deal_number(deal_id)) == str(order["DocNum"])
    retried = SyncRecord.objects.get(replay_of=failed)
    assert (retried.outcome, retried.attempt, retried.target_id) == ("ok", 2, str(order["DocEntry"]))
    # a second replay of the same row finds the deal done
    record_replay(record=failed)
    assert len(wb.orders()) == 1 and len(wb.notes_on(deal_id)) == 1
