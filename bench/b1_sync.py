"""SAP Business One partners → Pipedrive organizations + persons: what a first sync costs in Pipedrive
calls per operation, and that an unchanged re-sync costs none.

    python bench/b1_sync.py --partners 2000 [--database-url URL]

Operations are the organizations and persons the sandbox saw created; calls are every request it
counted (custom-field set-up and the look-before-create list scans included).
"""

from __future__ import annotations

import argparse
import time

from harness import Sandbox, django_setup, emit

FLOW = "business_partners_to_organizations_and_persons"
DB = "SBODEMOUS"


def wire_b1(sandbox: Sandbox, *, partners: int, contacts_max: int):
    from connectors.models import Connection
    from syncs.services import flow_create
    from tenants.models import Tenant

    sandbox.control("POST", "sap_b1/companies", json={
        "company_db": DB, "user": "manager", "password": "b1-bench", "partners": partners,
        "contacts_max": contacts_max, "items": 1, "invoices": 1, "seed": 3, "today": "2026-11-20"})
    company = sandbox.control("POST", "pipedrive/companies", json={"name": "b1", "plan": "ultimate", "unlimited": True})
    tenant = Tenant.objects.create(name="Bench B1", slug=f"bench-b1-{int(time.time() * 1000)}")
    b1 = Connection.objects.create(tenant=tenant, system="sap_b1", name="SAP B1", base_url=f"{sandbox.url}/b1s/v1",
                                   options={"company_db": DB, "user": "manager"}, credentials={"password": "b1-bench"})
    pipedrive = Connection.objects.create(tenant=tenant, system="pipedrive", name="Pipedrive", base_url=sandbox.url,
                                          options={"auth": "api_token", "plan": "ultimate", "seats": 1,
                                                   "company_id": company["company_id"]},
                                          credentials={"api_token": company["api_token"]})
    return flow_create(tenant=tenant, source=b1, target=pipedrive, kind=FLOW), company


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--partners", type=int, default=2000)
    parser.add_argument("--contacts-max", type=int, default=5)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    django_setup(args.database_url)
    from django.db import connection

    from syncs.services import flow_run

    sandbox = Sandbox()
    try:
        flow, company = wire_b1(sandbox, partners=args.partners, contacts_max=args.contacts_max)
        stats = f"pipedrive/companies/{company['company_id']}/stats"
        tags = {"partners": args.partners, "db": connection.vendor}
        started = time.perf_counter()
        run = flow_run(flow=flow)
        elapsed = time.perf_counter() - started
        assert run.status == "succeeded" and run.failed == 0, (run.status, run.failed, run.error)
        calls = sandbox.control("GET", stats)
        ops = calls["calls_by_operation"]
        operations = ops.get("addOrganization", 0) + ops.get("addPerson", 0)
        emit("b1_first_sync_pipedrive_calls_per_operation", calls["requests"] / operations,
             calls=calls["requests"], organizations=ops.get("addOrganization", 0), persons=ops.get("addPerson", 0),
             seconds=round(elapsed, 1), **tags)
        before = calls["requests"]
        flow.refresh_from_db()
        started = time.perf_counter()
        run = flow_run(flow=flow)
        elapsed = time.perf_counter() - started
        assert run.status == "succeeded", run.error
        emit("b1_resync_unchanged_pipedrive_calls", sandbox.control("GET", stats)["requests"] - before,
             seconds=round(elapsed, 1), **tags)
    finally:
        sandbox.stop()


if __name__ == "__main__":
    main()
