"""First sync, unchanged re-sync and 1 %-changed re-sync of N Sage 300 customers into Pipedrive, and the
first sync's use of a real plan's rate limit.

    python bench/sync_throughput.py --customers 100000 [--database-url URL] [--profile FILE]
    python bench/sync_throughput.py --limit-utilization 1500 [--plan growth]

Throughput runs go through the limiter exactly as under a real plan (one shared-state grant per call),
with the largest burst limit Pipedrive grants (Ultimate over OAuth, FAST_BURST per 2 s) and a daily
budget of FAST_DAILY, so the figure is mostly our own cost; the ceiling this puts on it is in each JSON
line. first_sync_cpu_ms_per_record is the figure a busy machine disturbs least.
"""

from __future__ import annotations

import argparse
import time

from harness import CpuClock, Sandbox, django_setup, emit, peak_rss_mb, wire_tenant

FAST_BURST = 480  # the largest real burst limit (Ultimate, OAuth): per-call grants, as under every plan
FAST_DAILY = 50_000_000


def sync_to_end(flow, progress=None):
    """Runs until the flow is done: each run yields after RUN_TIME_SLICE_S, as a worker's would."""
    from syncs.services import flow_run

    runs = []
    while True:
        flow.refresh_from_db()
        run = flow_run(flow=flow, progress=progress)
        runs.append(run)
        if not run.continues:
            return runs


def total(runs, field: str) -> int:
    return sum(getattr(r, field) for r in runs)


def mapped_payload_changes(flow, before: dict, after: dict) -> int:
    """Customers whose Pipedrive payload differs after the edit, by the flow's own mapping — counted
    here, apart from the engine's hashes and links, so an engine sending too much or too little shows."""
    from syncs.engine import FlowEngine
    from syncs.mapping import payload_hash
    from syncs.models import SyncRun

    engine = FlowEngine(flow=flow, run=SyncRun(tenant_id=flow.tenant_id, flow=flow))
    try:
        mapper = engine.mapper
        return sum(payload_hash(mapper.body(before[key], key)) != payload_hash(mapper.body(after[key], key))
                   for key in after)
    finally:
        engine.close()


def throughput(args, sandbox: Sandbox) -> None:
    from syncs.services import flow_resync

    flow, company = wire_tenant(sandbox, customers=args.customers, plan="ultimate", pipedrive_settings={
        "burst_limit": FAST_BURST, "daily_token_limit": FAST_DAILY})
    stats = f"pipedrive/companies/{company['company_id']}/stats"
    n = args.customers
    tags = {"customers": n, "limiter": f"per-call grants, burst {FAST_BURST}/2 s (Ultimate, OAuth)",
            "ceiling_records_per_s": FAST_BURST // 2}
    cpu = CpuClock()
    started = time.perf_counter()
    if args.profile:
        import cProfile

        ns = {"sync_to_end": sync_to_end, "flow": flow}
        cProfile.runctx("runs = sync_to_end(flow)", globals(), ns, args.profile)
        runs = ns["runs"]
    else:
        runs = sync_to_end(flow)
    elapsed, cpu_s = time.perf_counter() - started, cpu.elapsed()
    assert total(runs, "created") == n, [(r.status, r.created, r.failed, r.error) for r in runs]
    emit("first_sync_records_per_s", n / elapsed, seconds=round(elapsed, 1), runs=len(runs), **tags)
    emit("first_sync_cpu_ms_per_record", cpu_s * 1000 / n, cpu_s=round(cpu_s, 1),
         note="user+system CPU of the engine process", **tags)
    calls = sandbox.control("GET", stats)
    emit("first_sync_pipedrive_calls_per_record", calls["requests"] / n, tokens=calls["tokens_used_total"], **tags)
    emit(f"peak_rss_mb_{n // 1000}k", peak_rss_mb(), **tags)
    if args.first_only:
        return
    before = sandbox.control("GET", stats)["requests"]
    started = time.perf_counter()
    runs = sync_to_end(flow)
    elapsed = time.perf_counter() - started
    emit("resync_unchanged_pipedrive_calls", sandbox.control("GET", stats)["requests"] - before,
         seconds=round(elapsed, 1), records_per_s=round(n / elapsed), **tags)
    # Everything read again (the portal's "Resync all"): every record is hashed, nothing is sent.
    flow.refresh_from_db()
    flow_resync(flow=flow)
    before = sandbox.control("GET", stats)["requests"]
    started = time.perf_counter()
    runs = sync_to_end(flow)
    elapsed = time.perf_counter() - started
    emit("resync_full_unchanged_records_per_s", total(runs, "read") / elapsed, unchanged=total(runs, "unchanged"),
         pipedrive_calls=sandbox.control("GET", stats)["requests"] - before, **tags)
    if args.no_resync_1pct:
        return
    edits = sandbox.control("POST", "sage300/companies/SAMLTD/mutate",
                            json={"fraction": 0.01, "seed": 9, "today": "2026-11-21", "records": True})
    changed = mapped_payload_changes(flow, edits["before"], edits["after"])
    before = sandbox.control("GET", stats)["requests"]
    runs = sync_to_end(flow)
    calls = sandbox.control("GET", stats)["requests"] - before
    emit("resync_1pct_pipedrive_calls_per_changed_record", calls / max(changed, 1), pipedrive_calls=calls,
         mapped_payload_changed=changed, rows_edited=len(edits["changed"]), updated=total(runs, "updated"), **tags)
    # Edits the mapping does not read (fax numbers): the rows are re-read, and nothing is sent.
    edits = sandbox.control("POST", "sage300/companies/SAMLTD/mutate",
                            json={"fraction": 0.01, "seed": 10, "today": "2026-11-22", "fields": ["FaxNumber"],
                                  "records": True})
    changed = mapped_payload_changes(flow, edits["before"], edits["after"])
    before = sandbox.control("GET", stats)["requests"]
    runs = sync_to_end(flow)
    emit("resync_unmapped_edits_pipedrive_calls", sandbox.control("GET", stats)["requests"] - before,
         rows_edited=len(edits["changed"]), mapped_payload_changed=changed, read=total(runs, "read"), **tags)


def limit_utilization(args, sandbox: Sandbox) -> None:
    """A first sync against a plan's real limits (API token): record rate over the burst limit in the
    steady state (the first 2-s window, where an idle token may burst, is left out)."""
    from connectors.pipedrive.limiter import burst_limit_for

    flow, _company = wire_tenant(sandbox, customers=args.limit_utilization, plan=args.plan, seed=3)
    from connectors.pipedrive.client import PipedriveClient

    created_at: list[float] = []  # when each create's answer came back
    original = PipedriveClient.entity_create

    def timed_create(self, *a, **k):
        result = original(self, *a, **k)
        created_at.append(time.monotonic())
        return result

    PipedriveClient.entity_create = timed_create
    started = time.monotonic()
    try:
        runs = sync_to_end(flow)
    finally:
        PipedriveClient.entity_create = original
    elapsed = time.monotonic() - started
    n = args.limit_utilization
    assert total(runs, "created") == n, [(r.status, r.created, r.failed, r.error) for r in runs]
    limit_per_s = burst_limit_for(args.plan, oauth=False) / 2
    # whole 2-s windows after the first (an idle token may spend a window's worth at once), last partial one out
    start = created_at[0] + 2.0
    windows = int((created_at[-1] - start) // 2.0)
    end = start + 2.0 * windows
    rate = sum(1 for t in created_at if start <= t < end) / (end - start)
    emit("first_sync_limit_utilization", rate / limit_per_s, records_per_s=round(rate, 2),
         limit_calls_per_s=limit_per_s, plan=args.plan, auth="api_token", customers=n,
         seconds=round(elapsed, 1), steady_seconds=round(end - start, 1), runs=len(runs), target=0.9)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=10000)
    parser.add_argument("--database-url")
    parser.add_argument("--profile")
    parser.add_argument("--first-only", action="store_true")
    parser.add_argument("--no-resync-1pct", action="store_true")
    parser.add_argument("--limit-utilization", type=int, metavar="N",
                        help="instead: a first sync of N customers under the plan's real limits")
    parser.add_argument("--plan", default="growth")
    args = parser.parse_args()
    django_setup(args.database_url)
    sandbox = Sandbox()
    try:
        if args.limit_utilization:
            limit_utilization(args, sandbox)
        else:
            throughput(args, sandbox)
    finally:
        sandbox.stop()


if __name__ == "__main__":
    main()
