"""SYSPRO 8 → Pipedrive over loopback HTTP against the SYSPRO and Pipedrive sandboxes: customers,
stock items, sales orders with their lines (bulk deal-product calls where cheaper) and the customers'
stock, counted at the sandboxes."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest
from django.db import connections

from connectors.models import Connection
from sandbox.pipedrive.costs import BUILTIN
from syncs.models import Flow, RecordLink, SyncRecord
from syncs.services import flow_create, flow_run

pytestmark = pytest.mark.django_db(transaction=True)  # the engine's threads commit on their own connections

CO = "SYS"
CUSTOMERS, ITEMS, ORDERS, STOCK = (
    "customers_to_organizations",
    "stock_items_to_products",
    "sales_orders_to_deals",
    "stock_to_organizations",
)
KINDS = (CUSTOMERS, ITEMS, ORDERS, STOCK)
ORDER_WRITES = ("addDeal", "addDealProduct", "addManyDealProducts")


@dataclass
class SysproWorld:
    sandbox: Any
    tenant: Any
    syspro: Connection
    pipedrive: Connection
    company_id: int
    flows: dict[str, Flow]

    @classmethod
    def build(
        cls,
        sandbox,
        tenant,
        *,
        customers=12,
        orders=30,
        lines_max=12,
        items=15,
        seed=4,
        api="enet",
        kinds: tuple[str, ...] = KINDS,
    ) -> SysproWorld:
        sandbox.control(
            "POST",
            "syspro/companies",
            json={
                "company_id": CO,
                "operator": "ADMIN",
                "password": "syspro-pw",
                "customers": customers,
                "orders": orders,
                "lines_max": lines_max,
                "items": items,
                "seed": seed,
                "today": "2026-11-20",
            },
        )
        company = sandbox.control(
            "POST", "pipedrive/companies", json={"name": "SYSPRO CRM", "plan": "ultimate", "unlimited": True}
        )
        base = sandbox.url if api == "enet" else f"{sandbox.url}/SysproOData"
        syspro = Connection.objects.create(
            tenant=tenant,
            system="syspro",
            name="SYSPRO",
            base_url=base,
            options={"operator": "ADMIN", "company_id": CO, "api": api},
            credentials={"password": "syspro-pw"},
        )
        pipedrive = Connection.objects.create(
            tenant=tenant,
            system="pipedrive",
            name="Pipedrive",
            base_url=sandbox.url,
            options={
                "auth": "api_token",
                "plan": "ultimate",
                "seats": 1,
                "company_id": company["company_id"],
            },
            credentials={"api_token": company["api_token"]},
        )
        flows = {
            kind: flow_create(tenant=tenant, source=syspro, target=pipedrive, kind=kind) for kind in kinds
        }
        return cls(sandbox, tenant, syspro, pipedrive, company["company_id"], flows)

    def run(self, kind: str):
        flow = Flow.objects.select_related("source", "target").get(pk=self.flows[kind].pk)
        return flow_run(flow=flow)

    def pd(self, method: str, path: str, **kwargs) -> Any:
        return self.sandbox.control(method, f"pipedrive/companies/{self.company_id}/{path}", **kwargs)

    def records(self, entity: str) -> list[dict]:
        return self.pd("GET", f"records/{entity}?include_deleted=0")["records"]

    def key(self, entity: str, name: str) -> str:
        return next(
            f["field_code"] for f in self.pd("GET", f"fields/{entity}")["fields"] if f["field_name"] == name
        )

    def by_external(self, entity: str, name: str) -> Counter:
        key = self.key(entity, name)
        return Counter((r.get("custom_fields") or {}).get(key) for r in self.records(entity))

    def calls(self) -> dict:
        return self.pd("GET", "stats")["calls_by_operation"]

    def ctl(self, method: str, path: str, **kwargs) -> Any:
        return self.sandbox.control(method, f"syspro/companies/{CO}/{path}".rstrip("/"), **kwargs)

    def orders(self) -> list[dict]:
        """Every order with its lines, as the SYSPRO sandbox holds them (control API: no sessions)."""
        numbers = [f"{n:06d}" for n in range(1, self.ctl("GET", "")["counts"]["SorMaster"] + 1)]
        return [self.ctl("GET", f"orders/{n}") for n in numbers]

    def syspro_stats(self) -> dict:
        return self.sandbox.control("GET", "syspro/stats")

    def base_flows(self) -> None:
        for kind in (CUSTOMERS, ITEMS):
            result = self.run(kind)
            assert result.status == "succeeded" and result.failed == 0, (kind, result.error)

    def deal_lines(self) -> dict[str, list[tuple[int, float, float]]]:
        """Per SYSPRO order: the (product, quantity, price) of the deal products Pipedrive holds."""
        order_key = self.key("deals", "SYSPRO sales order")
        deals = {d["id"]: d["custom_fields"][order_key] for d in self.records("deals")}
        lines: dict[str, list] = {}
        for item in self.records("deal_products"):
            lines.setdefault(deals[item["deal_id"]], []).append(
                (item["product_id"], float(item["quantity"]), float(item["item_price"]))
            )
        return {k: sorted(v) for k, v in lines.items()}

    def expected_lines(self) -> dict[str, list[tuple[int, float, float]]]:
        products = dict(
            RecordLink.objects.filter(source_connection=self.syspro, source_object="stock_items").values_list(
                "external_id", "target_id"
            )
        )
        expected = {}
        for order in self.orders():
            rows = [
                (products[line["MStockCode"]], float(line["MOrderQty"]), float(line["MPrice"]))
                for line in order["lines"]
                if line["LineType"] == "1"
            ]
            if rows:
                expected[order["header"]["SalesOrder"]] = sorted(rows)
        return expected


def minimum_tokens(lines: int) -> int:
    """The spec's cheapest way to add `lines` deal products: 25 per bulk call of up to 100, or 5 each."""
    full, rest = divmod(lines, 100)
    return full * 25 + min(25, rest * 5)


@pytest.fixture
def world(sandbox, tenant):
    return SysproWorld.build(sandbox, tenant)


def test_customers_become_organizations_exactly_once_and_a_rerun_costs_nothing(world):
    result = world.run(CUSTOMERS)
    assert result.status == "succeeded", result.error
    orgs = world.by_external("organizations", "SYSPRO customer")
    assert set(orgs) == {f"C{n:05d}" for n in range(1, 13)} and set(orgs.values()) == {1}
    org = next(
        o
        for o in world.records("organizations")
        if o["custom_fields"][world.key("organizations", "SYSPRO customer")] == "C00001"
    )
    customer = world.ctl("POST", "customers/C00001", json={})  # no change but its stamp: the row
    assert org["name"] == customer["Name"] and customer["SoldToAddr1"] in org["address"]["value"]
    world.pd("POST", "stats/reset")
    again = world.run(CUSTOMERS)
    assert again.status == "succeeded" and again.pipedrive_calls == 0 and world.calls() == {}
    stats = world.syspro_stats()
    assert stats["writes"] == 0 and stats["sessions_active"] == 0 and stats["logons"] == stats["logoffs"]


def test_orders_become_deals_with_their_lines_in_the_cheapest_calls(world):
    world.base_flows()
    world.pd("POST", "stats/reset")
    result = world.run(ORDERS)
    assert result.status == "succeeded" and result.failed == 0, result.error
    deals = world.by_external("deals", "SYSPRO sales order")
    assert set(deals) == {f"{n:06d}" for n in range(1, 31)} and set(deals.values()) == {1}
    expected = world.expected_lines()
    assert world.deal_lines() == expected  # every stocked line once, on its own order's deal
    # deal on the customer's organization, value and status from SYSPRO
    org_ids = dict(
        RecordLink.objects.filter(source_object="customers").values_list("external_id", "target_id")
    )
    order_key = world.key("deals", "SYSPRO sales order")
    headers = {o["header"]["SalesOrder"]: o["header"] for o in world.orders()}
    for deal in world.records("deals"):
        header = headers[deal["custom_fields"][order_key]]
        assert deal["org_id"] == org_ids[header["Customer"]] and deal["currency"] == header["Currency"]
    # tokens actually charged by the sandbox = the spec's minimum (5 per deal + cheapest line adds)
    calls = world.calls()
    sizes = [len(v) for v in expected.values()]
    assert calls.get("addManyDealProducts", 0) == sum(1 for n in sizes if n >= 5)
    assert calls.get("addDealProduct", 0) == sum(n for n in sizes if n < 5)
    # (the run also read and created the deal fields once: their spec costs are taken out)
    cost = {op: price for op, price in BUILTIN.values()}
    set_up = sum(n * cost[op] for op, n in calls.items() if op not in ORDER_WRITES)
    charged = world.pd("GET", "stats")["tokens_used_total"] - set_up
    assert charged == 5 * 30 + sum(minimum_tokens(n) for n in sizes), calls

    world.pd("POST", "stats/reset")
    again = world.run(ORDERS)
    assert again.status == "succeeded" and again.pipedrive_calls == 0 and world.calls() == {}
    assert world.syspro_stats()["writes"] == 0


def test_ten_changed_statuses_update_exactly_those_ten_deals(world):
    world.base_flows()
    world.run(ORDERS)
    world.ctl("POST", "clock", json={"now": "2026-11-21T09:00:00"})
    changed = [f"{n:06d}" for n in range(3, 23, 2)]
    for number in changed:
        world.ctl("POST", f"orders/{number}/status", json={"order_status": "S", "shipment_status": "N"})
    world.pd("POST", "stats/reset")
    result = world.run(ORDERS)
    assert result.status == "succeeded", result.error
    assert world.calls() == {"updateDeal": 10}
    updates = SyncRecord.objects.filter(run=result, action="update", outcome="ok")
    assert sorted(r.external_id for r in updates) == changed
    status_key = world.key("deals", "SYSPRO sales order")
    suspended = [d for d in world.records("deals") if "Suspense" in str(d["custom_fields"].values())]
    assert sorted(d["custom_fields"][status_key] for d in suspended) == changed


def test_removed_changed_and_added_lines_touch_exactly_those_deal_products(world):
    world.base_flows()
    world.run(ORDERS)
    orders = {o["header"]["SalesOrder"]: o for o in world.orders()}
    many = next(n for n, o in orders.items() if len(o["lines"]) >= 3)
    line = orders[many]["lines"][1]["SalesOrderLine"]
    before = world.deal_lines()
    world.ctl("POST", "clock", json={"now": "2026-11-21T09:00:00"})
    world.ctl("DELETE", f"orders/{many}/lines/{line}")
    world.pd("POST", "stats/reset")
    result = world.run(ORDERS)
    assert result.status == "succeeded", result.error
    assert world.calls() == {"deleteDealProduct": 1, "updateDeal": 1}  # and the order's new value
    deleted = SyncRecord.objects.get(run=result, action="delete")
    assert deleted.external_id == f"{many}/{line}"
    after = world.deal_lines()
    assert {k: v for k, v in after.items() if k != many} == {k: v for k, v in before.items() if k != many}
    assert len(after[many]) == len(before[many]) - 1
    # a changed quantity and an added line on another order: one update, one add
    other = next(n for n in orders if n != many)
    first = orders[other]["lines"][0]
    world.ctl("POST", "clock", json={"now": "2026-11-21T10:00:00"})
    world.ctl("POST", f"orders/{other}/lines", json={"line": first["SalesOrderLine"], "quantity": 77})
    world.ctl("POST", f"orders/{other}/lines", json={"stock_code": first["MStockCode"], "quantity": 3})
    world.pd("POST", "stats/reset")
    again = world.run(ORDERS)
    assert again.status == "succeeded", again.error
    assert world.calls() == {"updateDealProduct": 1, "addDealProduct": 1, "updateDeal": 1}  # value moved
    assert world.deal_lines() == world.expected_lines()


def test_many_removed_lines_go_in_one_bulk_delete(sandbox, tenant):
    world = SysproWorld.build(sandbox, tenant, customers=3, orders=6, lines_max=20, items=30, seed=9)
    world.base_flows()
    world.run(ORDERS)
    orders = {o["header"]["SalesOrder"]: o for o in world.orders()}
    big = max(orders, key=lambda n: len(orders[n]["lines"]))
    assert len(orders[big]["lines"]) >= 7
    gone = [line["SalesOrderLine"] for line in orders[big]["lines"][:6]]
    world.ctl("POST", "clock", json={"now": "2026-11-21T09:00:00"})
    for number in gone:
        world.ctl("DELETE", f"orders/{big}/lines/{number}")
    world.pd("POST", "stats/reset")
    result = world.run(ORDERS)
    assert result.status == "succeeded", result.error
    assert world.calls() == {"deleteManyDealProducts": 1, "updateDeal": 1}
    deletes = SyncRecord.objects.filter(run=result, action="delete", outcome="ok")
    assert sorted(r.external_id for r in deletes) == sorted(f"{big}/{n}" for n in gone)
    assert world.deal_lines() == world.expected_lines()


def test_a_lost_bulk_add_answer_does_not_double_the_lines(sandbox, tenant, settings):
    settings.SYNC_LOST_CREATE_RECHECK_S = 0.2
    settings.PIPEDRIVE_RETRY_BASE_S = 0.01
    world = SysproWorld.build(sandbox, tenant, customers=3, orders=4, lines_max=20, items=30, seed=9)
    world.base_flows()
    world.run(ORDERS)  # deals exist
    orders = {o["header"]["SalesOrder"]: o for o in world.orders()}
    big = max(orders, key=lambda n: len(orders[n]["lines"]))
    for line in orders[big]["lines"]:
        world.ctl("DELETE", f"orders/{big}/lines/{line['SalesOrderLine']}")
    world.ctl("POST", "clock", json={"now": "2026-11-21T09:00:00"})
    world.run(ORDERS)  # that deal has no lines now
    world.ctl("POST", "clock", json={"now": "2026-11-21T10:00:00"})
    for n in range(8):
        world.ctl("POST", f"orders/{big}/lines", json={"stock_code": f"A{n + 1:05d}", "quantity": n + 1})
    # every write is applied by Pipedrive, then its answer is lost
    sandbox.control("POST", "pipedrive/commit_faults", json={"fraction": 1.0, "mode": "503", "seed": 1})
    world.pd("POST", "stats/reset")
    result = world.run(ORDERS)
    sandbox.control("POST", "pipedrive/commit_faults", json={"fraction": 0.0})
    calls = world.calls()
    assert calls.get("addManyDealProducts") == 1 and "addDealProduct" not in calls, calls
    failed = SyncRecord.objects.filter(run=result, outcome="failed")
    # only the deal's own update (its value moved; every PATCH answer is lost too) waits for the next run
    assert [(r.external_id, r.error_kind) for r in failed] == [(big, "transient")]
    assert world.deal_lines() == world.expected_lines()  # 8 lines, each once, all linked
    assert RecordLink.objects.filter(source_object="sales_orders.lines", parent_external_id=big).count() == 8
    world.pd("POST", "stats/reset")
    healed = world.run(ORDERS)
    assert healed.status == "succeeded" and world.calls() == {"updateDeal": 1}
    world.pd("POST", "stats/reset")
    assert world.run(ORDERS).pipedrive_calls == 0


def test_malformed_orders_fail_alone_with_clear_messages(world):
    world.base_flows()
    for number, kind in (("000004", "missing_customer"), ("000005", "bad_amount"), ("000006", "broken_xml")):
        world.ctl("POST", f"orders/{number}/malformed", json={"kind": kind})
    result = world.run(ORDERS)
    assert result.status == "partial"
    failed = {
        r.external_id: r.error_message
        for r in SyncRecord.objects.filter(run=result, outcome="failed")
        if "/" not in r.external_id
    }
    assert set(failed) == {"000004", "000005", "000006"}, failed
    assert "no Customer" in failed["000004"]
    assert "1O4.50" in failed["000005"] and "number" in failed["000005"]
    assert "could not read" in failed["000006"]
    deals = world.by_external("deals", "SYSPRO sales order")
    assert set(deals) == {f"{n:06d}" for n in range(1, 31)} - set(failed)
    assert world.syspro_stats()["writes"] == 0


def test_a_session_expiring_mid_run_is_renewed_once(sandbox, tenant):
    world = SysproWorld.build(sandbox, tenant, customers=410, orders=1, kinds=(CUSTOMERS,))
    from connectors.syspro import client as syspro_client

    original = syspro_client.SysproClient.changed_since
    expired = []

    def expiring(self, obj, cursor):
        for n, page in enumerate(original(self, obj, cursor)):
            if n == 1 and not expired:
                expired.append(sandbox.control("POST", "syspro/expire_sessions")["expired"])
            yield page

    syspro_client.SysproClient.changed_since = expiring
    try:
        sandbox.control("DELETE", "syspro/stats")
        result = world.run(CUSTOMERS)
    finally:
        syspro_client.SysproClient.changed_since = original
    assert expired == [1]
    assert result.status == "succeeded" and result.failed == 0, result.error
    stats = world.syspro_stats()
    assert (stats["logons"], stats["logoffs"], stats["sessions_active"]) == (2, 1, 0)
    assert len(world.by_external("organizations", "SYSPRO customer")) == 410


def test_licence_limit_one_and_two_flows_due_both_complete(world, sandbox):
    world.run(CUSTOMERS)
    sandbox.control("POST", "syspro/settings", json={"licence_limit": 1, "latency_ms": 20})
    sandbox.control("DELETE", "syspro/stats")
    results: dict[str, Any] = {}

    def run(kind: str) -> None:
        try:
            results[kind] = world.run(kind)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(kind,)) for kind in (ITEMS, STOCK)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert {k: (r.status, r.failed) for k, r in results.items()} == {
        ITEMS: ("succeeded", 0),
        STOCK: ("succeeded", 0),
    }
    stats = world.syspro_stats()
    assert stats["sessions_peak"] == 1 and stats["sessions_active"] == 0 and stats["licence_refusals"] >= 1
    assert stats["logons"] == stats["logoffs"] == 2


def test_stock_notes_are_refreshed_each_poll_and_free_when_unchanged(world):
    world.run(CUSTOMERS)
    result = world.run(STOCK)
    assert result.status == "succeeded" and result.failed == 0, result.error
    notes = world.records("notes")
    buyers = {o["header"]["Customer"] for o in world.orders()}
    assert len(notes) == len(buyers) and result.skipped == 12 - len(buyers)
    order = world.orders()[0]
    code, customer = order["lines"][0]["MStockCode"], order["header"]["Customer"]
    world.pd("POST", "stats/reset")
    assert world.run(STOCK).pipedrive_calls == 0
    world.ctl("POST", f"stock/{code}/FG", json={"on_hand": 12345, "allocated": 0})
    again = world.run(STOCK)
    buying = {
        o["header"]["Customer"] for o in world.orders() if any(li["MStockCode"] == code for li in o["lines"])
    }
    assert world.calls() == {"updateNote": len(buying)} and customer in buying
    assert again.updated == len(buying)
    org_ids = dict(
        RecordLink.objects.filter(source_object="customers").values_list("external_id", "target_id")
    )
    note = next(n for n in world.records("notes") if n["org_id"] == org_ids[customer])
    assert code in note["content"] and "FG 12345" in note["content"].replace(",", "")


def test_odata_connection_runs_the_same_flows(sandbox, tenant):
    world = SysproWorld.build(sandbox, tenant, customers=6, orders=8, lines_max=6, items=10, api="odata")
    world.base_flows()
    result = world.run(ORDERS)
    assert result.status == "succeeded" and result.failed == 0, result.error
    assert world.deal_lines() == world.expected_lines()
    stats = world.syspro_stats()
    assert stats["logons"] == 0 and stats["writes"] == 0


def test_a_bulk_add_refused_for_one_line_sends_the_lines_one_by_one_so_that_line_fails_alone(sandbox, tenant):
    world = SysproWorld.build(sandbox, tenant, customers=2, orders=1, lines_max=20, items=30, seed=9)
    world.base_flows()
    order = world.orders()[0]
    lines = [line for line in order["lines"] if line["LineType"] == "1"]
    assert len(lines) >= 6  # a bulk add is the cheapest way for this order
    gone_code = lines[0]["MStockCode"]
    gone = RecordLink.objects.get(source_object="stock_items", external_id=gone_code).target_id
    world.pd("DELETE", f"ui/products/{gone}")  # deleted in Pipedrive by someone: its lines are refused
    world.pd("POST", "stats/reset")
    result = world.run(ORDERS)
    calls = world.calls()
    assert calls["addManyDealProducts"] == 1 and calls["addDealProduct"] == len(lines), calls
    failed = SyncRecord.objects.filter(run=result, outcome="failed")
    bad = {
        f"{order['header']['SalesOrder']}/{line['SalesOrderLine']}"
        for line in lines
        if line["MStockCode"] == gone_code
    }
    assert {r.external_id for r in failed} == bad and {r.error_kind for r in failed} == {"permanent"}
    assert len(world.records("deal_products")) == len(lines) - len(bad)
