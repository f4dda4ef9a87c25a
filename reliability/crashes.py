"""crash_suite: SIGKILLs at random points across `manage.py sync` processes and django-q2 workers, a
restart after each, then lost 0 and duplicated 0 in the sandbox, every killed run "interrupted" and
nothing left in flight."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from reliability.base import Context, PipedriveCompany, lost_and_duplicated, sage_customer_numbers
from testkit.processes import ROOT, child_env, start_cluster, stop, wait_for

STALE_S = 2  # claim threshold for the suite: a killed worker's claim is free again after this long


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _cpu_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return -1


def _busiest_worker(cluster: subprocess.Popen) -> int | None:
    """The cluster process doing the sync: the descendant that spent the most CPU."""
    pids = _descendants(cluster.pid)
    return max(pids, key=_cpu_ticks) if pids else None


def run(ctx: Context) -> dict:
    from django.test.utils import override_settings
    from django_q.tasks import async_task

    from syncs.models import SyncRecord, SyncRun
    from syncs.services import flow_run
    from testkit.harness import wire_tenant

    n = ctx.pick(1500, 8000)
    kills = ctx.pick(3, 20)
    sage_company = ctx.name("K")
    flow, info = wire_tenant(ctx.sandbox, customers=n, slug=ctx.name("crash-", 16), seed=ctx.seed,
                             sage_company=sage_company)
    pd = PipedriveCompany(ctx.sandbox, info["company_id"])
    env = {"DATABASE_URL": ctx.database_url, "SYNC_CLAIM_STALE_SECONDS": str(STALE_S), "LOG_LEVEL": "WARNING"}

    def creates() -> int:
        return pd.stats()["calls_by_operation"].get("addOrganization", 0)

    thresholds = sorted(ctx.rng.sample(range(n // 20, n - n // 20), kills))
    by_process = {"manage.py sync": 0, "qcluster worker": 0}
    alive, missed, tracebacks = 0, 0, 0
    killed_runs: set[int] = set()  # runs in progress at a kill (none when a kill lands during start-up)
    for i, threshold in enumerate(thresholds):
        use_cluster = i % 2 == 1
        if use_cluster:
            proc = start_cluster(Q_WORKERS="1", **env)
            async_task("syncs.tasks.flow_run_task", flow.pk, "manual")
        else:
            proc = subprocess.Popen([sys.executable, "manage.py", "sync", str(flow.pk)], cwd=ROOT,
                                    env=child_env(**env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    text=True, start_new_session=True)
        try:
            wait_for(lambda t=threshold, p=proc: creates() >= t or p.poll() is not None, timeout=180,
                     interval=0.01, message=f"{threshold} creates")
            time.sleep(ctx.rng.uniform(0, 0.05))  # a random point, not always right after a page
            if proc.poll() is not None or creates() >= n:
                missed += 1
            else:
                alive += 1
                killed_runs.update(SyncRun.objects.filter(flow=flow, status=SyncRun.Status.RUNNING)
                                   .values_list("pk", flat=True))
                if use_cluster:
                    worker = _busiest_worker(proc)
                    os.kill(worker, signal.SIGKILL)
                else:
                    os.killpg(proc.pid, signal.SIGKILL)
                by_process["qcluster worker" if use_cluster else "manage.py sync"] += 1
        finally:
            output = stop(proc, kill=not use_cluster)
        tracebacks += output.count("Traceback")
        time.sleep(STALE_S + 0.5)  # the dead worker's heartbeat goes stale; the restart may claim it

    with override_settings(SYNC_CLAIM_STALE_SECONDS=STALE_S):
        for _ in range(3):
            flow.refresh_from_db()
            final = flow_run(flow=flow)
            if final is not None and final.status == "succeeded":
                break
            time.sleep(STALE_S + 0.5)
        before = pd.stats()["requests"]
        flow.refresh_from_db()
        again = flow_run(flow=flow)
    rerun_calls = pd.stats()["requests"] - before

    lost, duplicated, strangers = lost_and_duplicated(sage_customer_numbers(ctx.sandbox, sage_company),
                                                      pd.by_external_id())
    in_flight = SyncRecord.objects.filter(flow=flow, outcome=SyncRecord.Outcome.IN_FLIGHT).count()
    interrupted = SyncRun.objects.filter(flow=flow, status=SyncRun.Status.INTERRUPTED).count()
    not_interrupted = SyncRun.objects.filter(pk__in=killed_runs).exclude(status=SyncRun.Status.INTERRUPTED).count()
    running = SyncRun.objects.filter(flow=flow, status=SyncRun.Status.RUNNING).count()
    return {
        "ok": lost == 0 and duplicated == 0 and strangers == 0 and in_flight == 0 and running == 0
        and missed == 0 and not_interrupted == 0 and bool(killed_runs) and final is not None and final.status == "succeeded"
        and again is not None and rerun_calls == 0,
        "lost": lost, "duplicated": duplicated, "orphans": strangers, "kills": alive, "missed_kills": missed,
        "kills_by_process": by_process, "killed_runs": len(killed_runs),
        "killed_runs_not_interrupted": not_interrupted, "interrupted_runs": interrupted, "left_running": running,
        "left_in_flight": in_flight, "final_status": final.status if final else "busy",
        "rerun_pipedrive_calls": rerun_calls, "records": n, "tracebacks_in_output": tracebacks,
    }
