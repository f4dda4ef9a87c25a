"""Dispatcher ticks with 1,000 tenants × 3 flows and nothing due: the median of many (design target: well
under 1 s)."""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import timedelta

from harness import django_setup, emit


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--database-url")
    parser.add_argument("--ticks", type=int, default=51)
    args = parser.parse_args()
    django_setup(args.database_url)
    from django.db import connection
    from django.utils import timezone

    from connectors.models import Connection
    from syncs.models import Flow
    from syncs.scheduler import dispatcher_tick
    from tenants.models import Tenant

    stamp = int(time.time())
    tenants = Tenant.objects.bulk_create([Tenant(name=f"T{i}", slug=f"tick-{stamp}-{i}") for i in range(args.tenants)])
    conns = Connection.objects.bulk_create(
        [Connection(tenant=t, system=s, name=s, base_url="https://erp.example.com") for t in tenants
         for s in ("sage300", "pipedrive")])
    later = timezone.now() + timedelta(hours=1)
    Flow.objects.bulk_create([Flow(tenant=t, name=f"flow {k}", kind="customers_to_organizations",
                                   source=conns[2 * i], target=conns[2 * i + 1], next_run_at=later)
                              for i, t in enumerate(tenants) for k in range(3)])
    timings = []
    for _ in range(args.ticks):
        started = time.perf_counter()
        claimed = dispatcher_tick()
        timings.append(time.perf_counter() - started)
        assert claimed == [], claimed
    timings.sort()
    emit("dispatcher_tick_idle_ms", statistics.median(timings) * 1000, statistic="median", ticks=len(timings),
         flows=args.tenants * 3, min_ms=round(timings[0] * 1000, 2),
         p90_ms=round(timings[int(0.9 * (len(timings) - 1))] * 1000, 2), db=connection.vendor)

if __name__ == "__main__":
    main()
