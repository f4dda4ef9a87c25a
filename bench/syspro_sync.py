"""SYSPRO customers, stock items and sales orders (1–20 lines each) → Pipedrive: the issue-11 acceptance
size created exactly once, an unchanged re-run costing no call, and the tokens each order cost.

    python bench/syspro_sync.py --customers 2000 --orders 5000 [--database-url URL]

`syspro_tokens_over_minimum`: per order, the tokens the Pipedrive sandbox charged for calls on its deal
(addDeal, deal-product adds) divided by the least the spec's x-token-cost allows (addDeal 5, then lines
added at 5 each or 25 per addManyDealProducts of up to 100, whichever is less); median over orders.
Everything is counted at the sandboxes.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import Counter

from harness import Sandbox, django_setup, emit

KINDS = ("customers_to_organizations", "stock_items_to_products", "sales_orders_to_deals")
CO = "SYS"


def minimum_tokens(lines: int) -> int:
    full, rest = divmod(lines, 100)
    return 5 + full * 25 + min(25, rest * 5)


def wire(sandbox: Sandbox, *, customers: int, orders: int, items: int):
    from connectors.models import Connection
    from syncs.services import flow_create
    from tenants.models import Tenant

    sandbox.control(
        "POST",
        "syspro/companies",
        json={
            "company_id": CO,
            "operator": "ADMIN",
            "password": "syspro-bench",
            "customers": customers,
            "orders": orders,
            "lines_max": 20,
            "items": items,
            "seed": 7,
            "today": "2026-11-20",
        },
    )
    company = sandbox.control(
        "POST", "pipedrive/companies", json={"name": "syspro", "plan": "ultimate", "unlimited": True}
    )
    tenant = Tenant.objects.create(name="Bench SYSPRO", slug=f"bench-syspro-{int(time.time() * 1000)}")
    syspro = Connection.objects.create(
        tenant=tenant,
        system="syspro",
        name="SYSPRO",
        base_url=sandbox.url,
        options={"operator": "ADMIN", "company_id": CO},
        credentials={"password": "syspro-bench"},
    )
    pipedrive = Connection.objects.create(
        tenant=tenant,
        system="pipedrive",
        name="Pipedrive",
        base_url=sandbox.url,
        options={"auth": "api_token", "plan": "ultimate", "seats": 1, "company_id": company["company_id"]},
        credentials={"api_token": company["api_token"]},
    )
    flows = {kind: flow_create(tenant=tenant, source=syspro, target=pipedrive, kind=kind) for kind in KINDS}
    return flows, company


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--orders", type=int, default=5000)
    parser.add_argument("--items", type=int, default=500)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    django_setup(args.database_url)
    from django.db import connection

    from syncs.models import Flow
    from syncs.services import flow_run

    sandbox = Sandbox()
    try:
        flows, company = wire(sandbox, customers=args.customers, orders=args.orders, items=args.items)
        pd = f"pipedrive/companies/{company['company_id']}"
        tags = {"customers": args.customers, "orders": args.orders, "db": connection.vendor}
        seconds = {}
        for kind in KINDS:
            started = time.perf_counter()
            run = flow_run(flow=Flow.objects.select_related("source", "target").get(pk=flows[kind].pk))
            seconds[kind] = round(time.perf_counter() - started, 1)
            assert run.status == "succeeded" and run.failed == 0, (kind, run.status, run.failed, run.error)
        stats = sandbox.control("GET", f"{pd}/stats")
        calls = stats["calls_by_operation"]
        lines = sandbox.control("GET", f"{pd}/records/deal_products?include_deleted=0")["records"]
        deals = sandbox.control("GET", f"{pd}/records/deals?include_deleted=0")["records"]
        orgs = sandbox.control("GET", f"{pd}/records/organizations?include_deleted=0")["records"]
        counts = sandbox.control("GET", f"syspro/companies/{CO}")["counts"]
        per_deal = Counter(item["deal_id"] for item in lines)
        ratios = [
            stats["tokens_by_deal"].get(str(d["id"]), 0) / minimum_tokens(per_deal[d["id"]]) for d in deals
        ]
        created_once = (
            len(orgs) == counts["ArCustomer"]
            and len(deals) == counts["SorMaster"]
            and len(lines) == counts["SorDetail"]
        )
        emit(
            "syspro_tokens_over_minimum",
            round(statistics.median(ratios), 4),
            max=round(max(ratios), 4),
            mean=round(statistics.fmean(ratios), 4),
            deals=len(deals),
            target="<= 1.05",
            **tags,
        )
        emit(
            "syspro_first_sync_created_once",
            created_once,
            organizations=len(orgs),
            deals=len(deals),
            deal_products=len(lines),
            syspro_rows=counts,
            add_many=calls.get("addManyDealProducts", 0),
            add_single=calls.get("addDealProduct", 0),
            seconds=seconds,
            **tags,
        )
        before = stats["requests"]
        started = time.perf_counter()
        for kind in KINDS:
            run = flow_run(flow=Flow.objects.select_related("source", "target").get(pk=flows[kind].pk))
            assert run.status == "succeeded", (kind, run.error)
        syspro = sandbox.control("GET", "syspro/stats")
        emit(
            "syspro_resync_unchanged_pipedrive_calls",
            sandbox.control("GET", f"{pd}/stats")["requests"] - before,
            seconds=round(time.perf_counter() - started, 1),
            syspro_writes=syspro["writes"],
            syspro_sessions_left=syspro["sessions_active"],
            **tags,
        )
    finally:
        sandbox.stop()


if __name__ == "__main__":
    main()
