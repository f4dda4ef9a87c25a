"""Portal pages at a big tenant's size: the dashboard with 200 flows (each with runs and failures) and 3
Pipedrive connections (budget gauges), and the records and runs pages over 100,000 audit rows, searched
by external id. Median server time of several requests through Django's test client (no network)."""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import timedelta

from harness import django_setup, emit


def timed(client, url: str, repeat: int) -> tuple[float, int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    timings, queries = [], 0
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = client.get(url, secure=True)  # production settings redirect plain HTTP
            timings.append(time.perf_counter() - started)
        assert response.status_code == 200, (url, response.status_code)
        queries = len(captured)
    return statistics.median(timings) * 1000, queries


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--flows", type=int, default=200)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    django_setup(args.database_url, debug=True)  # templates need the static files manifest otherwise
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.test.utils import override_settings
    from django.utils import timezone

    from connectors.models import Connection
    from syncs.models import Flow, SyncRecord, SyncRun
    from tenants.models import Membership, Tenant

    stamp = int(time.time())
    tenant = Tenant.objects.create(name="Big Ltd", slug=f"big-{stamp}")
    user = get_user_model().objects.create_user(
        username=f"big-{stamp}@example.com", email=f"big-{stamp}@example.com"
    )
    Membership.objects.create(user=user, tenant=tenant, role=Membership.Role.OWNER)
    erp = Connection.objects.create(
        tenant=tenant, system="sage300", name="Sage", base_url="https://erp.example.com"
    )
    targets = [
        Connection.objects.create(
            tenant=tenant,
            system="pipedrive",
            name=f"Pipedrive {n}",
            base_url="https://api.pipedrive.com",
            options={"auth": "api_token"},
            credentials={"api_token": f"bench-token-{n}"},
        )
        for n in range(3)
    ]
    now = timezone.now()
    flows = Flow.objects.bulk_create(
        [
            Flow(
                tenant=tenant,
                name=f"Flow {n:03d}",
                kind="customers_to_organizations",
                source=erp,
                target=targets[n % 3],
                next_run_at=now + timedelta(minutes=n % 60),
            )
            for n in range(args.flows)
        ]
    )
    runs = SyncRun.objects.bulk_create(
        [
            SyncRun(
                tenant=tenant,
                flow=flow,
                trigger="schedule",
                status="partial" if k % 3 == 0 else "succeeded",
                read=500,
                created=10,
                failed=2 if k % 3 == 0 else 0,
                tokens_spent=100,
                finished=now,
            )
            for flow in flows
            for k in range(10)
        ]
    )
    per_run = max(1, args.records // len(runs))
    for start in range(0, len(runs), 100):
        SyncRecord.objects.bulk_create(
            [
                SyncRecord(
                    tenant=tenant,
                    run=run,
                    flow_id=run.flow_id,
                    source_object="customers",
                    external_id=f"C{run.pk:06d}-{i:03d}",
                    target_object="organizations",
                    action="create",
                    outcome="failed" if i % 20 == 0 else "ok",
                    error_message="name is required" if i % 20 == 0 else "",
                    payload={"name": f"Customer {i}"},
                )
                for run in runs[start : start + 100]
                for i in range(per_run)
            ],
            batch_size=5000,
        )
    from django.db import connection

    if connection.vendor == "postgresql":  # fresh statistics, as autovacuum keeps them on a live database
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    total = SyncRecord.objects.filter(tenant=tenant).count()
    needle = SyncRecord.objects.filter(tenant=tenant).order_by("id")[total // 2].external_id

    client = Client()
    client.force_login(user)
    with override_settings(ALLOWED_HOSTS=["*"]):
        for name, url, size in (
            ("portal_dashboard_ms", "/dashboard/", {"flows": args.flows, "pipedrive_connections": 3}),
            ("portal_records_search_ms", f"/records/?external_id={needle}", {"audit_rows": total}),
            ("portal_records_list_ms", "/records/", {"audit_rows": total}),
            ("portal_runs_search_ms", f"/runs/?q={needle}", {"runs": len(runs), "audit_rows": total}),
            ("portal_run_page_ms", f"/runs/{runs[len(runs) // 2].pk}/", {"records_in_run": per_run}),
        ):
            median_ms, queries = timed(client, url, args.repeat)
            emit(name, median_ms, statistic="median", requests=args.repeat, queries=queries, **size)


if __name__ == "__main__":
    main()
