"""SYSPRO acceptance under faults: 10 % of calls faulted on SYSPRO (HTTP 500/503, dropped connections,
`ERROR:` bodies) and on Pipedrive (5xx, 429, drops, timeouts, writes applied then unanswered). Scheduled
runs until clean; the end state is judged at both ends: every customer one organization, every order one
deal on it, every stocked line one deal product on that deal, links pointing at live records."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from types import SimpleNamespace

import pytest

from syncs.models import Flow, RecordLink, SyncRecord, SyncRun
from syncs.services import flow_run
from tests.processes import ROOT, child_env, stop, wait_for
from tests.syncs.test_sap_b1_reliability import FAULT_KINDS, FAULTS
from tests.syncs.test_syspro_flows import CUSTOMERS, ITEMS, ORDERS, SysproWorld
from tests.syncs.world import scheduled_run

pytestmark = pytest.mark.django_db(transaction=True)  # the engine's threads commit on their own connections


def link_audit(world: SysproWorld) -> dict[str, list]:
    """SYSPRO's customers, orders and lines against what Pipedrive holds and what the links say."""
    customer_key = world.key("organizations", "SYSPRO customer")
    order_key = world.key("deals", "SYSPRO sales order")
    orgs: dict[str, list[int]] = {}
    for org in world.records("organizations"):
        orgs.setdefault(str(org["custom_fields"].get(customer_key)), []).append(org["id"])
    deals: dict[str, list[dict]] = {}
    for deal in world.records("deals"):
        deals.setdefault(str(deal["custom_fields"].get(order_key)), []).append(deal)
    lines = world.records("deal_products")
    links = RecordLink.objects.filter(source_connection=world.syspro, target_connection=world.pipedrive)
    org_links = dict(links.filter(source_object="customers").values_list("external_id", "target_id"))
    deal_links = dict(links.filter(source_object="sales_orders").values_list("external_id", "target_id"))
    line_links = dict(
        links.filter(source_object="sales_orders.lines").values_list("external_id", "target_id")
    )
    orders = world.orders()
    customers = {o["header"]["Customer"] for o in orders} | set(orgs) - {"None"}
    lost, duplicated, orphans = [], [], []
    for code in customers:
        if len(orgs.get(code, [])) != 1 or org_links.get(code) not in orgs.get(code, []):
            lost.append(code)
    live_lines = {item["id"]: item for item in lines}
    for order in orders:
        number = order["header"]["SalesOrder"]
        mine = deals.get(number, [])
        if len(mine) != 1 or deal_links.get(number) != mine[0]["id"]:
            lost.append(number)
            continue
        if mine[0]["org_id"] != org_links.get(order["header"]["Customer"]):
            orphans.append(number)
        for line in order["lines"]:
            ext = f"{number}/{line['SalesOrderLine']}"
            item = live_lines.get(line_links.get(ext))
            if item is None or item["deal_id"] != mine[0]["id"]:
                lost.append(ext)
    duplicated += [ext for ext, ids in orgs.items() if len(ids) > 1]
    duplicated += [ext for ext, found in deals.items() if len(found) > 1]
    linked_lines = set(line_links.values())
    duplicated += [item["id"] for item in lines if item["id"] not in linked_lines]  # a twin nobody links
    orphans += [ext for ext, target in line_links.items() if target not in live_lines]
    return {"lost": sorted(map(str, lost)), "duplicated": sorted(map(str, duplicated)), "orphans": orphans}


def test_faults_on_both_sides_lose_and_duplicate_nothing(sandbox, tenant, settings, monkeypatch):
    settings.HTTP_READ_TIMEOUT_S = 0.4  # the injected timeouts hold a request 0.8 s
    settings.PIPEDRIVE_RETRY_BASE_S = 0.05
    settings.SYNC_LOST_CREATE_RECHECK_S = 0.3
    from connectors.syspro import client as syspro_client

    monkeypatch.setattr(syspro_client, "PAGE_SIZE", 10)  # enough SYSPRO reads for its faults to hit them
    world = SysproWorld.build(
        sandbox,
        tenant,
        customers=20,
        orders=30,
        lines_max=12,
        items=20,
        seed=11,
        kinds=(CUSTOMERS, ITEMS, ORDERS),
    )
    sandbox.control(
        "POST",
        "syspro/transient_faults",
        json={
            "rate": 0.1,
            "kinds": ["500", "503", "drop", "error"],
            "operations": ["logon", "query", "logoff"],
            "seed": 4,
        },
    )
    sandbox.control("POST", "pipedrive/faults", json={**FAULTS, "timeout_seconds": 0.8, "seed": 6})
    sandbox.control(
        "POST",
        "pipedrive/commit_faults",
        json={"fraction": 0.05, "mode": "any", "seed": 3, "timeout_seconds": 0.8},
    )
    for kind in (CUSTOMERS, ITEMS, ORDERS):
        scheduled = SimpleNamespace(flow=world.flows[kind])
        Flow.objects.exclude(pk=scheduled.flow.pk).update(enabled=False)  # one flow due at a time
        Flow.objects.filter(pk=scheduled.flow.pk).update(enabled=True)
        runs = []
        for _ in range(10):  # bounded: scheduled runs until one is clean
            runs.append(scheduled_run(scheduled))
            if runs[-1].status == "succeeded" and runs[-1].failed == 0:
                break
        assert runs[-1].status == "succeeded" and runs[-1].failed == 0, [
            (r.status, r.failed, r.error) for r in runs
        ]

    syspro_faults = world.syspro_stats()["faults"]
    assert {k for k, n in syspro_faults.items() if n} == {"500", "503", "drop", "error"}, syspro_faults
    pipedrive = sandbox.control("GET", "pipedrive/faults")
    assert {kind for kind, n in pipedrive["counts"].items() if n} == FAULT_KINDS, pipedrive
    committed = sandbox.control("GET", "pipedrive/commit_faults")["counts"]
    assert sum(committed.get("POST", {}).values()) > 0, committed

    sandbox.control("POST", "syspro/transient_faults", json={"rate": 0.0})
    stats = world.syspro_stats()
    assert stats["writes"] == 0
    assert link_audit(world) == {"lost": [], "duplicated": [], "orphans": []}
    assert not SyncRecord.objects.filter(outcome="in_flight").exists()


def lines_added(world: SysproWorld) -> int:
    calls = world.calls()
    return calls.get("addManyDealProducts", 0) + calls.get("addDealProduct", 0)


def test_sync_killed_mid_orders_then_rerun_reaches_the_same_state(sandbox, tenant):
    """SIGKILL `manage.py sync` of the orders flow while deal products are being added (bulk calls in
    flight, plans cut between a deal and its lines): the next run finishes them without a duplicate, and
    the SYSPRO session the killed process held is the only one it leaves (until SYSPRO's idle timeout)."""
    world = SysproWorld.build(
        sandbox,
        tenant,
        customers=15,
        orders=100,
        lines_max=10,
        items=20,
        seed=13,
        kinds=(CUSTOMERS, ITEMS, ORDERS),
    )
    world.base_flows()
    flow = world.flows[ORDERS]
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "sync", str(flow.pk)],
        cwd=ROOT,
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        wait_for(
            lambda: lines_added(world) >= 20 or proc.poll() is not None,
            timeout=120,
            interval=0.01,
            message="20 deal-product adds",
        )
        killed = wait_for(
            lambda: SyncRun.objects.filter(flow=flow, status="running").first(),
            timeout=60,
            message="a running run",
        )
        assert proc.poll() is None, "manage.py sync finished before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        output = stop(proc, kill=True)
    assert "Traceback" not in output, output
    # plans cut mid-way: orders whose deal is linked but not all of their lines yet
    links = RecordLink.objects.filter(source_connection=world.syspro)
    deals_linked = set(links.filter(source_object="sales_orders").values_list("external_id", flat=True))
    with_lines = Counter(
        links.filter(source_object="sales_orders.lines").values_list("parent_external_id", flat=True)
    )
    cut = [
        o
        for o in world.orders()
        if o["header"]["SalesOrder"] in deals_linked
        and with_lines[o["header"]["SalesOrder"]] < len(o["lines"])
    ]
    assert cut, "the kill did not land in the middle of any plan"
    result = flow_run(flow=Flow.objects.select_related("source", "target").get(pk=flow.pk))
    assert result.status == "succeeded" and result.failed == 0, result.error
    assert SyncRun.objects.get(pk=killed.pk).status == "interrupted"
    assert link_audit(world) == {"lost": [], "duplicated": [], "orphans": []}
    assert not SyncRecord.objects.filter(flow=flow, outcome="in_flight").exists()
    world.pd("POST", "stats/reset")
    again = world.run(ORDERS)
    assert again.status == "succeeded" and again.pipedrive_calls == 0 and world.calls() == {}
    stats = world.syspro_stats()
    assert stats["writes"] == 0 and stats["sessions_active"] <= 1  # only the killed process's, idling out
