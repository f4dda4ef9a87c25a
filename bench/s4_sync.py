"""SAP S/4HANA business partners → Pipedrive (the issue's acceptance size): organizations typed customer /
supplier / both with their contact persons, then person partners; created exactly once, an unchanged
re-sync costs nothing, and 30 changed partners cost exactly 30 updates.

    python bench/s4_sync.py --partners 3000 [--contacts-max 5] [--database-url URL]

Everything is counted at the sandboxes: Pipedrive's records by external id and its calls by operation,
S/4HANA's requests and writes (which must stay 0).
"""

from __future__ import annotations

import argparse
import random
import time
from collections import Counter

from harness import Sandbox, django_setup, emit

ORGS = "business_partners_to_organizations_and_persons"
PERSONS = "person_partners_to_persons"
CLIENT_ID = "BENCH_COMM"
SECRET = "s4-bench-secret"


def wire_s4(sandbox: Sandbox, *, partners: int, contacts_max: int):
    from connectors.models import Connection
    from syncs.services import flow_create
    from tenants.models import Tenant

    info = sandbox.control("POST", "s4hana/systems", json={
        "client_id": CLIENT_ID, "client_secret": SECRET, "partners": partners, "contacts_max": contacts_max,
        "seed": 4, "today": "2026-11-20", "time": "08:00:00"})
    company = sandbox.control("POST", "pipedrive/companies", json={"name": "s4", "plan": "ultimate", "unlimited": True})
    tenant = Tenant.objects.create(name="Bench S4", slug=f"bench-s4-{int(time.time() * 1000)}")
    s4 = Connection.objects.create(tenant=tenant, system="s4hana", name="S/4HANA", base_url=sandbox.url,
                                   options={"client_id": CLIENT_ID}, credentials={"client_secret": SECRET})
    pipedrive = Connection.objects.create(tenant=tenant, system="pipedrive", name="Pipedrive", base_url=sandbox.url,
                                          options={"auth": "api_token", "plan": "ultimate", "seats": 1,
                                                   "company_id": company["company_id"]},
                                          credentials={"api_token": company["api_token"]})
    flows = {kind: flow_create(tenant=tenant, source=s4, target=pipedrive, kind=kind) for kind in (ORGS, PERSONS)}
    return flows, company, info


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--partners", type=int, default=3000)
    parser.add_argument("--contacts-max", type=int, default=5)
    parser.add_argument("--changed", type=int, default=30)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    django_setup(args.database_url)
    from django.db import connection

    from syncs.models import Flow
    from syncs.services import flow_run

    sandbox = Sandbox()
    try:
        flows, company, info = wire_s4(sandbox, partners=args.partners, contacts_max=args.contacts_max)
        base = f"pipedrive/companies/{company['company_id']}"
        counts = info["counts"]
        tags = {"partners": args.partners, "db": connection.vendor}

        def run_all() -> float:
            started = time.perf_counter()
            for kind in (ORGS, PERSONS):
                run = flow_run(flow=Flow.objects.select_related("source", "target").get(pk=flows[kind].pk))
                assert run.status == "succeeded" and run.failed == 0, (kind, run.status, run.failed, run.error)
            return time.perf_counter() - started

        def external(entity: str, field: str) -> Counter:
            key = next(f["field_code"] for f in sandbox.control("GET", f"{base}/fields/{entity}")["fields"]
                       if f["field_name"] == field)
            records = sandbox.control("GET", f"{base}/records/{entity}?include_deleted=0")["records"]
            return Counter((r.get("custom_fields") or {}).get(key) for r in records)

        elapsed = run_all()
        stats = sandbox.control("GET", f"{base}/stats")
        ops = stats["calls_by_operation"]
        orgs = external("organizations", "SAP S/4HANA business partner")
        contacts = external("persons", "SAP S/4HANA contact person")
        persons = external("persons", "SAP S/4HANA business partner")
        contacts.pop(None, None)
        persons.pop(None, None)
        duplicated = sum(n - 1 for c in (orgs, contacts, persons) for n in c.values() if n > 1)
        created = ops.get("addOrganization", 0) + ops.get("addPerson", 0)
        emit("s4_first_sync_created", created, organizations=len(orgs), expected_organizations=counts["organizations"],
             contact_persons=len(contacts), expected_contact_persons=counts["contact_persons"], persons=len(persons),
             expected_persons=counts["persons"], duplicated=duplicated, seconds=round(elapsed, 1), **tags)
        emit("s4_first_sync_pipedrive_calls_per_operation", stats["requests"] / created, calls=stats["requests"], **tags)

        sandbox.control("POST", f"{base}/stats/reset")
        elapsed = run_all()
        emit("s4_resync_unchanged_pipedrive_calls", sandbox.control("GET", f"{base}/stats")["requests"],
             seconds=round(elapsed, 1), **tags)

        partners = sorted(str(n) for n in range(1_000_000, 1_000_000 + args.partners))
        changed = sorted(random.Random(7).sample(partners, args.changed))
        sandbox.control("POST", f"s4hana/systems/{CLIENT_ID}/change", json={"partners": changed, "time": "09:00:00"})
        sandbox.control("POST", f"{base}/stats/reset")
        sandbox.control("DELETE", "s4hana/stats")
        elapsed = run_all()
        ops = sandbox.control("GET", f"{base}/stats")["calls_by_operation"]
        updates = ops.get("updateOrganization", 0) + ops.get("updatePerson", 0)
        writes = sum(n for op, n in ops.items() if op.startswith(("add", "update", "delete")))
        s4 = sandbox.control("GET", "s4hana/stats")
        emit("s4_changed_partners_updates", updates, changed=len(changed), other_writes=writes - updates,
             s4_requests=s4["requests"], s4_writes=s4["writes"], seconds=round(elapsed, 1), **tags)
    finally:
        sandbox.stop()


if __name__ == "__main__":
    main()
