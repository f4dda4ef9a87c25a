"""fault_suite: 10 % faults on every side (Sage and Pipedrive: 5xx, 429, timeouts, dropped connections,
writes committed then failed), scheduled runs alone until done, then the sandbox's organizations are
compared with a fault-free run of the same data: lost 0, duplicated 0, same end state."""

from __future__ import annotations

from reliability.base import (
    Context,
    PipedriveCompany,
    faults_off,
    lost_and_duplicated,
    mapped_targets,
    read_timeout,
    sage_customer_numbers,
)

# 10 % of requests on each side draw a fault; on Pipedrive another 4 % of committed writes fail after
# the commit (answered 503 or dropped), the hardest case for "no duplicates".
FAULTS = {"error_5xx": 0.03, "rate_429": 0.03, "drop": 0.02, "slow": 0.02, "slow_seconds": 2.5}
COMMIT_FAULTS = {"fraction": 0.04, "mode": "mixed"}
TIMEOUT_S = 1.0  # the clients' read timeout during the suite: a 'slow' answer (2.5 s) times out


def _converge(flow, cap: int) -> tuple[int, str]:
    """Scheduled runs until one succeeds with nothing outstanding (or `cap` runs)."""
    from syncs.models import SyncRun
    from syncs.selectors import record_failures_outstanding
    from syncs.services import flow_run

    status = ""
    for n in range(1, cap + 1):
        flow.refresh_from_db()
        run = flow_run(flow=flow, trigger=SyncRun.Trigger.SCHEDULE)
        status = run.status if run else "busy"
        if status == "succeeded" and not record_failures_outstanding(flow=flow).exists():
            return n, status
    return cap, status


def run(ctx: Context) -> dict:
    from testkit.harness import wire_tenant

    sandbox = ctx.sandbox
    n = ctx.pick(500, 10_000)
    cap = ctx.pick(12, 20)
    faults_off(sandbox)
    flows = {}
    for name in ("reference", "faulty"):
        company = ctx.name("F")
        flow, info = wire_tenant(sandbox, customers=n, slug=ctx.name("fault-", 16), seed=ctx.seed, sage_company=company)
        flows[name] = (flow, PipedriveCompany(sandbox, info["company_id"]), company)

    # The reference: the same data, no faults, one first sync and one update round.
    ref_flow, ref_pd, ref_company = flows["reference"]
    flow, pd, company = flows["faulty"]
    mutate = {"fraction": 0.1, "seed": ctx.seed + 1, "today": "2026-11-21"}
    ref_runs = _converge(ref_flow, cap)[0]
    sandbox.control("POST", f"sage300/companies/{ref_company}/mutate", json=mutate)
    ref_runs += _converge(ref_flow, cap)[0]

    seed = ctx.seed
    # Small pages, so Sage sees enough requests for its faults to fire too.
    page_size = sandbox.control("GET", "sage300/settings")["page_size"]
    sandbox.control("POST", "sage300/settings", json={"page_size": 10})
    sandbox.control("POST", "sage300/faults", json={**FAULTS, "seed": seed})
    sandbox.control("POST", "pipedrive/faults", json={**FAULTS, "seed": seed + 1})
    sandbox.control("POST", "pipedrive/commit_faults", json={**COMMIT_FAULTS, "seed": seed + 2})
    try:
        with read_timeout(TIMEOUT_S):
            first_runs, first_status = _converge(flow, cap)
            # updates under the same faults: PATCHes committed then failed, too
            changed = len(sandbox.control("POST", f"sage300/companies/{company}/mutate", json=mutate)["changed"])
            update_runs, update_status = _converge(flow, cap)
    finally:
        fired = {s: sandbox.control("GET", f"{s}/faults")["counts"] for s in ("sage300", "pipedrive")}
        faults_off(sandbox)
        sandbox.control("POST", "sage300/settings", json={"page_size": page_size})
    fired["pipedrive"]["after_commit"] = pd.stats()["after_commit_faults"]

    expected = sage_customer_numbers(sandbox, company)
    lost, duplicated, strangers = lost_and_duplicated(expected, pd.by_external_id())
    mapped = mapped_targets(flow)
    state, ref_state = pd.state(mapped), ref_pd.state(mapped)
    differing = len(state ^ ref_state)
    counts = pd.by_external_id()
    samples = {"duplicated": sorted(k for k, v in counts.items() if v > 1)[:5],
               "differing": sorted(str(k) for k, _ in state ^ ref_state)[:5],
               "duplicate_fields": pd.duplicate_fields()}
    converged = first_status == "succeeded" and update_status == "succeeded"
    return {
        "ok": lost == 0 and duplicated == 0 and strangers == 0 and differing == 0 and converged
        and sum(fired["sage300"].values()) > 0
        and all(fired["pipedrive"].get(k) for k in ("5xx", "429", "drop", "slow", "after_commit")),
        "lost": lost, "duplicated": duplicated, "orphans": strangers, "differing_from_fault_free": differing,
        "records": n, "updated_in_erp": changed, "runs": first_runs + update_runs, "run_cap": cap,
        "converged": converged, "fault_free_runs": ref_runs, "faults_fired": fired,
        **({"samples": samples} if differing or duplicated else {}),
    }
