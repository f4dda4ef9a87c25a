"""max_due_lag_s: how long a small flow waits from due to started while big first syncs share the workers.

A real django-q2 cluster (`manage.py qcluster`, Q_WORKERS workers, the ORM broker in this benchmark's own
database, so no other cluster on the machine takes its tasks) runs the every-minute dispatcher. Two
tenants start a big first sync under a plan's real limits (Pipedrive sandbox, API token) and 50 tenants
have a small flow due every minute. Scaled down so it takes minutes: Lite limits (10 calls/s), a 20-s
time slice and N customers per big tenant, so each big sync needs several slices — the same shape as a
100,000-record sync at Growth with 300-s slices, which needs about 17.

    python bench/due_lag.py [--big 1000] [--small 50] [--slice 20] [--plan lite] [--database-url URL]

A small flow's due time is when it was created (first run) or when its previous run released it plus its
interval; the lag is the run's start minus that. A due flow still waiting at the end counts with its wait
so far. Also reported: the longest run against the q2 timeout, and q2 tasks that failed.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import timedelta

from harness import ROOT, Sandbox, django_setup, emit, wire_tenant


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--big", type=int, default=1000, help="customers per big tenant")
    parser.add_argument("--small", type=int, default=50, help="tenants with a small flow due every minute")
    parser.add_argument("--slice", type=float, default=20, help="RUN_TIME_SLICE_S for the workers")
    parser.add_argument("--plan", default="lite")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--min-minutes", type=float, default=4, help="run at least this long")
    parser.add_argument("--max-minutes", type=float, default=20)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    q_timeout = int(2 * args.slice + 300)  # the smallest the settings accept: the slice scaled, so is the timeout
    os.environ.update(RUN_TIME_SLICE_S=str(args.slice), Q_WORKERS=str(args.workers), Q_TIMEOUT=str(q_timeout),
                      Q_RETRY=str(q_timeout + 60), LOG_LEVEL="WARNING")
    os.environ.pop("REDIS_URL", None)  # ORM broker: this database's queue, no other helper's cluster
    django_setup(args.database_url)
    from django.utils import timezone
    from django_q.models import Schedule, Task

    from syncs.models import Flow, SyncRun
    from syncs.scheduler import schedule_ensure

    sandbox = Sandbox()
    cluster = None
    log = tempfile.NamedTemporaryFile(prefix="due-lag-qcluster-", suffix=".log", delete=False)
    try:
        big = [wire_tenant(sandbox, customers=args.big, slug=f"big{i}", plan=args.plan, sage_company=f"BIG{i}",
                           seed=11 + i)[0] for i in range(2)]
        sandbox.control("POST", "sage300/companies", json={"company": "SMALL", "user": "ADMIN", "password": "ADMIN",
                                                            "customers": 5, "seed": 5, "today": "2026-11-20"})
        small = [wire_tenant(sandbox, customers=None, slug=f"small{i}", plan=args.plan, sage_company="SMALL",
                             interval_minutes=1)[0] for i in range(args.small)]
        now = timezone.now()
        # the big flows are the oldest due: they take both workers first, the worst case for the others
        Flow.objects.filter(pk__in=[f.pk for f in big]).update(next_run_at=now - timedelta(seconds=1))
        Flow.objects.filter(pk__in=[f.pk for f in small]).update(next_run_at=now)
        first_due = {f.pk: now for f in small}
        Schedule.objects.filter(pk=schedule_ensure().pk).update(next_run=now)
        env = {**os.environ, "DATABASE_URL": os.environ["DATABASE_URL"], "PYTHONUNBUFFERED": "1"}
        started = time.monotonic()
        cluster = subprocess.Popen([sys.executable, "manage.py", "qcluster"], cwd=ROOT, env=env, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)

        def big_done() -> bool:
            return all(SyncRun.objects.filter(flow=f).exclude(status="running").exclude(reason="continues").exists()
                       for f in big)

        while True:
            time.sleep(5)
            minutes = (time.monotonic() - started) / 60
            if cluster.poll() is not None:
                raise RuntimeError(f"qcluster exited ({cluster.returncode}); see {log.name}")
            if (big_done() and minutes >= args.min_minutes) or minutes >= args.max_minutes:
                break
        end = timezone.now()
    finally:
        if cluster is not None and cluster.poll() is None:
            os.killpg(cluster.pid, signal.SIGTERM)  # its own session: the cluster and its workers
            try:
                cluster.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(cluster.pid, signal.SIGKILL)
                cluster.wait()
        sandbox.stop()

    lags, open_waits = [], []
    for flow in small:
        due = first_due[flow.pk]
        for run in SyncRun.objects.filter(flow=flow).order_by("started"):
            lags.append((run.started - due).total_seconds())
            if run.finished is None:
                due = None
                break
            due = run.finished + timedelta(minutes=flow.interval_minutes)
        if due is not None and due < end:
            open_waits.append((end - due).total_seconds())
    runs = SyncRun.objects.filter(finished__isnull=False)
    longest = max((r.finished - r.started).total_seconds() for r in runs)
    big_runs = SyncRun.objects.filter(flow__in=big)
    emit("max_due_lag_s", max(lags + open_waits), small_runs=len(lags), still_waiting=len(open_waits),
         median_lag_s=round(sorted(lags)[len(lags) // 2], 1), target_s=120,
         big_tenants=2, big_customers=args.big, big_runs=big_runs.count(),
         big_created=sum(r.created for r in big_runs), big_finished=big_done(),
         small_tenants=args.small, workers=args.workers, plan=args.plan, slice_s=args.slice,
         q_timeout_s=q_timeout, longest_run_s=round(longest, 1),
         failed_q2_tasks=Task.objects.filter(success=False).count(),
         interrupted_runs=SyncRun.objects.filter(status="interrupted").count(),
         minutes=round((time.monotonic() - started) / 60, 1),
         scaling=f"{args.plan} limits, {args.slice:g}-s slices, {args.big} customers per big tenant "
                 f"(stands for Growth, 300-s slices, 100,000 customers)")


if __name__ == "__main__":
    main()
