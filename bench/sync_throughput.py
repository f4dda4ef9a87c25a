"""First sync, unchanged re-sync and 1 %-changed re-sync of N Sage 300 customers into Pipedrive.

    python bench/sync_throughput.py --customers 100000 [--database-url URL] [--profile FILE]
"""

from __future__ import annotations

import argparse
import time

from harness import Sandbox, django_setup, emit, peak_rss_mb, wire_tenant


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=10000)
    parser.add_argument("--database-url")
    parser.add_argument("--profile")
    parser.add_argument("--first-only", action="store_true")
    parser.add_argument("--no-resync-1pct", action="store_true")
    args = parser.parse_args()
    django_setup(args.database_url)
    from django.db import connection

    from syncs.services import flow_run

    sandbox = Sandbox()
    try:
        flow, company = wire_tenant(sandbox, customers=args.customers)
        stats = f"pipedrive/companies/{company['company_id']}/stats"
        n = args.customers
        tags = {"customers": n, "db": connection.vendor}
        started = time.perf_counter()
        if args.profile:
            import cProfile

            cProfile.runctx("run = flow_run(flow=flow)", globals(), ns := {"flow_run": flow_run, "flow": flow}, args.profile)
            run = ns["run"]
        else:
            run = flow_run(flow=flow)
        elapsed = time.perf_counter() - started
        assert run.created == n, (run.status, run.created, run.failed, run.error)
        emit("first_sync_records_per_s", n / elapsed, seconds=round(elapsed, 1), **tags)
        calls = sandbox.control("GET", stats)
        emit("first_sync_pipedrive_calls_per_record", calls["requests"] / n, tokens=calls["tokens_used_total"], **tags)
        emit(f"peak_rss_mb_{n // 1000}k", peak_rss_mb(), **tags)
        if args.first_only:
            return
        before = sandbox.control("GET", stats)["requests"]
        started = time.perf_counter()
        flow.refresh_from_db()
        run = flow_run(flow=flow)
        elapsed = time.perf_counter() - started
        emit("resync_unchanged_pipedrive_calls", sandbox.control("GET", stats)["requests"] - before,
             seconds=round(elapsed, 1), records_per_s=round(n / elapsed), **tags)
        # Everything read again (the portal's "Resync all"): every record is hashed, nothing is sent.
        from syncs.services import flow_resync

        flow.refresh_from_db()
        flow_resync(flow=flow)
        before = sandbox.control("GET", stats)["requests"]
        started = time.perf_counter()
        run = flow_run(flow=flow)
        elapsed = time.perf_counter() - started
        emit("resync_full_unchanged_records_per_s", run.read / elapsed, unchanged=run.unchanged,
             pipedrive_calls=sandbox.control("GET", stats)["requests"] - before, **tags)
        if args.no_resync_1pct:
            return
        changed = len(sandbox.control("POST", "sage300/companies/SAMLTD/mutate",
                                      json={"fraction": 0.01, "seed": 9, "today": "2026-11-21"})["changed"])
        before = sandbox.control("GET", stats)["requests"]
        flow.refresh_from_db()
        run = flow_run(flow=flow)
        calls = sandbox.control("GET", stats)["requests"] - before
        emit("resync_1pct_pipedrive_calls_per_changed_record", calls / max(changed, 1), changed=changed,
             updated=run.updated, **tags)
    finally:
        sandbox.stop()


if __name__ == "__main__":
    main()
