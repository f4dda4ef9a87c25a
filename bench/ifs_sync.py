"""IFS Cloud customers + customer orders → Pipedrive organizations + deals (issue 12's acceptance run):
every record created exactly once, short-lived tokens renewed mid-run without a failed record, an
unchanged re-sync costs no Pipedrive call; with --rate-limit, the IFS simulator answers 429 above that
many requests a minute and the run must still end with no failed record.

    python bench/ifs_sync.py --orders 5000 [--customers 500] [--expire-after 10] [--rate-limit 60 --page 50]

IFS IAM ends the realm's tokens after --expire-after projection requests (mid-run): the client must take
a new one on the 401 and carry on.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter

from harness import Sandbox, django_setup, emit

NS = "ifsbench"
SECRET = "ifs-bench-secret"
KINDS = ("customers_to_organizations", "sales_orders_to_deals")


def wire_ifs(sandbox: Sandbox, *, customers: int, orders: int):
    from connectors.models import Connection
    from syncs.services import flow_create
    from tenants.models import Tenant

    sandbox.control("POST", "ifs/environments", json={"namespace": NS, "client_id": "ml-connector",
                                                      "client_secret": SECRET, "customers": customers,
                                                      "orders": orders, "seed": 12})
    company = sandbox.control("POST", "pipedrive/companies", json={"name": "ifs", "plan": "ultimate", "unlimited": True})
    tenant = Tenant.objects.create(name="Bench IFS", slug=f"bench-ifs-{int(time.time() * 1000)}")
    ifs = Connection.objects.create(tenant=tenant, system="ifs", name="IFS", base_url=sandbox.url,
                                    options={"namespace": NS, "client_id": "ml-connector"},
                                    credentials={"client_secret": SECRET})
    pipedrive = Connection.objects.create(tenant=tenant, system="pipedrive", name="Pipedrive", base_url=sandbox.url,
                                          options={"auth": "api_token", "plan": "ultimate", "seats": 1,
                                                   "company_id": company["company_id"]},
                                          credentials={"api_token": company["api_token"]})
    return {kind: flow_create(tenant=tenant, source=ifs, target=pipedrive, kind=kind) for kind in KINDS}, company


def external_counts(sandbox: Sandbox, company_id: int, entity: str, name: str) -> Counter:
    base = f"pipedrive/companies/{company_id}"
    key = next(f["field_code"] for f in sandbox.control("GET", f"{base}/fields/{entity}")["fields"]
               if f["field_name"] == name)
    records = sandbox.control("GET", f"{base}/records/{entity}?include_deleted=0")["records"]
    return Counter((r.get("custom_fields") or {}).get(key) for r in records)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=500)
    parser.add_argument("--orders", type=int, default=5000)
    parser.add_argument("--expire-after", type=int, default=10, help="IFS requests before every token expires")
    parser.add_argument("--rate-limit", type=int, default=0, help="IFS requests per minute (0: the default 1,000)")
    parser.add_argument("--page", type=int, default=0, help="IFS server page size (0: the simulator's 500)")
    parser.add_argument("--database-url")
    args = parser.parse_args()
    django_setup(args.database_url)
    from django.db import connection

    from syncs.models import SyncRecord
    from syncs.services import flow_run

    sandbox = Sandbox()
    try:
        settings = {}
        if args.rate_limit:
            settings.update(rate_limit=args.rate_limit, rate_window_s=60)
        if args.page:
            settings["page_size"] = args.page
        sandbox.control("POST", "ifs/settings", json=settings)
        flows, company = wire_ifs(sandbox, customers=args.customers, orders=args.orders)
        sandbox.control("POST", "ifs/expire_tokens", json={"namespace": NS, "after_requests": args.expire_after})
        cid = company["company_id"]
        stats = f"pipedrive/companies/{cid}/stats"
        tags = {"customers": args.customers, "orders": args.orders, "expire_after": args.expire_after,
                "rate_limit_per_min": args.rate_limit or 1000, "db": connection.vendor}
        started = time.perf_counter()
        runs = [flow_run(flow=flows[kind]) for kind in KINDS]
        elapsed = time.perf_counter() - started
        failed = SyncRecord.objects.filter(outcome="failed").count()
        assert all(r.status == "succeeded" for r in runs), [(r.status, r.error) for r in runs]
        orgs = external_counts(sandbox, cid, "organizations", "IFS customer id")
        deals = external_counts(sandbox, cid, "deals", "IFS order number")
        calls = sandbox.control("GET", stats)
        ifs = sandbox.control("GET", f"ifs/environments/{NS}/stats")
        suffix = "_rate_limited" if args.rate_limit else ""
        emit(f"ifs_first_sync_records{suffix}", len(orgs) + len(deals), seconds=round(elapsed, 1),
             duplicated=sum(n - 1 for n in (*orgs.values(), *deals.values()) if n > 1),
             missing=args.customers + args.orders - len(orgs) - len(deals), failed_records=failed, **tags)
        emit(f"ifs_first_sync_pipedrive_calls_per_record{suffix}", calls["requests"] / (len(orgs) + len(deals)),
             calls=calls["requests"], **tags)
        emit(f"ifs_first_sync_ifs_requests{suffix}", ifs["requests"], tokens_issued=ifs["tokens_issued"],
             token_renewals_after_401=ifs["auth_rejections"], answered_429=ifs["rate_limited"],
             by_status=ifs["by_status"], **tags)
        before = calls["requests"]
        started = time.perf_counter()
        for kind in KINDS:
            flows[kind].refresh_from_db()
            run = flow_run(flow=flows[kind])
            assert run.status == "succeeded", run.error
        emit(f"ifs_resync_unchanged_pipedrive_calls{suffix}", sandbox.control("GET", stats)["requests"] - before,
             seconds=round(time.perf_counter() - started, 1), **tags)
    finally:
        sandbox.stop()


if __name__ == "__main__":
    main()
