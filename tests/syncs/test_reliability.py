"""Crash and concurrency guarantees with real processes: SIGKILL mid-run, two clusters, SQLite."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
from django_q.models import Task
from django_q.tasks import async_task

from syncs.models import Flow, SyncRecord, SyncRun
from syncs.services import flow_run
from tests.processes import ROOT, child_env, start_cluster, stop, wait_for
from tests.syncs.world import World

pytestmark = pytest.mark.django_db(transaction=True)


def creates(world: World) -> int:
    return world.stats()["calls_by_operation"].get("addOrganization", 0)


def running_run(world: World) -> SyncRun:
    return wait_for(lambda: SyncRun.objects.filter(flow=world.flow, status="running").first(), timeout=60,
                    message="a running run")


def process_alive(pid: int) -> bool:
    """Alive and not a zombie (a killed process its parent has not reaped yet is dead)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[-1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


def test_workers_killed_mid_run_then_restarted_reach_the_same_state_without_duplicates(sandbox, tenant, settings):
    """SIGKILL a `manage.py sync` and then a django-q2 worker in the middle of a first sync, with the
    real claim settings (heartbeat 15 s, stale after 60 s): each killed run ends "interrupted", and the
    next run resumes at once, because a dead holder on this host is seen by its pid, not its silence."""
    assert settings.SYNC_HEARTBEAT_SECONDS == 15 and settings.SYNC_CLAIM_STALE_SECONDS == 60
    # Real Pipedrive search lags behind writes: the engine must not rely on it to find its own creates.
    world = World.build(sandbox, tenant, customers=1500, pipedrive_settings={"search_index_delay_s": 60})
    killed: list[int] = []

    # 1. `manage.py sync`, killed after 200 creates
    proc = subprocess.Popen([sys.executable, "manage.py", "sync", str(world.flow.pk)], cwd=ROOT, env=child_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        wait_for(lambda: creates(world) >= 200 or proc.poll() is not None, timeout=120, interval=0.01,
                 message="200 creates")
        run = running_run(world)
        assert proc.poll() is None, "manage.py sync finished before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)
        killed.append(run.pk)
    finally:
        output = stop(proc, kill=True)
    assert "Traceback" not in output, output

    # 2. a qcluster worker running the flow's task, killed after 700 creates (the cluster lives on)
    cluster = start_cluster(Q_WORKERS="1")
    try:
        async_task("syncs.tasks.flow_run_task", world.flow.pk, "manual")
        second = wait_for(lambda: SyncRun.objects.filter(flow=world.flow, status="running").exclude(
            pk__in=killed).first(), timeout=120, message="the worker's run")
        assert SyncRun.objects.get(pk=killed[0]).status == "interrupted"  # seen dead at once, not after 60 s
        wait_for(lambda: creates(world) >= 700, timeout=120, interval=0.01, message="700 creates")
        owner = Flow.objects.get(pk=world.flow.pk).claimed_by
        pid = int(owner.split(":")[1])
        assert pid != cluster.pid and os.getsid(pid) == cluster.pid, "not a worker of this cluster"
        assert process_alive(pid) and SyncRun.objects.get(pk=second.pk).status == "running"
        os.kill(pid, signal.SIGKILL)
        killed.append(second.pk)
        wait_for(lambda: not process_alive(pid), timeout=30, message="the worker to die")
    finally:
        output = stop(cluster)
    assert creates(world) < 1500, "the worker finished before it could be killed"

    # 3. the next run (real settings: no waiting out a stale threshold) finishes the job
    result = flow_run(flow=world.flow)
    assert result is not None and result.status == "succeeded" and result.failed == 0, result.error
    assert set(SyncRun.objects.filter(pk__in=killed).values_list("status", flat=True)) == {"interrupted"}
    audit = world.link_audit()
    assert audit == {"lost": [], "duplicated": [], "orphan_links": [], "without_external_id": []}, audit
    assert len(world.organizations()) == 1500
    assert not SyncRecord.objects.filter(flow=world.flow, outcome="in_flight").exists()
    before = world.stats()["requests"]
    assert flow_run(flow=world.flow).status == "succeeded"
    assert world.stats()["requests"] == before


def test_two_clusters_never_run_one_flow_twice_at_once(sandbox, tenant):
    world = World.build(sandbox, tenant, customers=200)
    # A slow flow; the server itself counts any read that arrives while another is being served.
    sandbox.control("POST", "sage300/settings", json={"page_size": 20, "latency_ms": 250, "max_concurrent": 1})
    sandbox.control("DELETE", "sage300/stats")
    clusters = [start_cluster(Q_WORKERS="2"), start_cluster(Q_WORKERS="2")]
    try:
        ids = [async_task("syncs.tasks.flow_run_task", world.flow.pk, "manual") for _ in range(6)]
        for _ in range(2):  # and the dispatcher ticking in both clusters at once
            async_task("syncs.tasks.dispatcher_tick_task")
        wait_for(lambda: Task.objects.filter(id__in=ids).count() == 6, timeout=180, message="six tasks")
        wait_for(lambda: not SyncRun.objects.filter(flow=world.flow, status="running").exists(), timeout=120,
                 message="runs to finish")
    finally:
        outputs = [stop(c) for c in clusters]
    results = list(Task.objects.filter(id__in=ids).values_list("result", flat=True))
    assert "busy" in results, (results, outputs)
    runs = list(SyncRun.objects.filter(flow=world.flow).order_by("started"))
    assert runs and all(r.status == "succeeded" for r in runs), [(r.status, r.error) for r in runs]
    sage = sandbox.control("GET", "sage300/stats")
    assert sage["requests"] >= 10  # 200 customers in pages of 20 were read
    assert sage["over_limit"] == 0 and sage["max_in_flight"] == 1, "two reads overlapped at the Sage server"
    assert sage["by_status"].get("429", 0) == 0
    counts = world.by_external_id()
    assert len(counts) == 200 and set(counts.values()) == {1}


def test_sage_server_counts_reads_that_overlap(sandbox):
    """The proof above can fail: two reads at once are counted by the server."""
    import threading

    import requests

    sandbox.control("POST", "sage300/companies", json={"company": "SAMLTD", "user": "ADMIN", "password": "ADMIN",
                                                        "customers": 5, "seed": 1})
    sandbox.control("POST", "sage300/settings", json={"latency_ms": 400, "max_concurrent": 1})
    url = f"{sandbox.url}/Sage300WebApi/v1.0/-/SAMLTD/AR/ARCustomers"
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def read() -> None:
        barrier.wait(timeout=10)
        statuses.append(requests.get(url, auth=("ADMIN", "ADMIN"), timeout=30,
                                     headers={"Content-Type": "application/json"}).status_code)

    threads = [threading.Thread(target=read) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    sage = sandbox.control("GET", "sage300/stats")
    assert sorted(statuses) == [200, 429]
    assert sage["over_limit"] == 1 and sage["max_in_flight"] == 2


@pytest.mark.slow
def test_first_run_and_rerun_on_sqlite(tmp_path):
    db = tmp_path / "engine.sqlite3"
    out = subprocess.run([sys.executable, "bench/sync_throughput.py", "--customers", "5000", "--database-url",
                          f"sqlite:///{db}", "--no-resync-1pct"], cwd=ROOT, capture_output=True, text=True,
                         timeout=600, env=child_env())
    assert out.returncode == 0, out.stdout + out.stderr
    figures = {row["bench"]: row for row in map(json.loads, filter(None, out.stdout.splitlines()))}
    assert figures["first_sync_records_per_s"]["database"] == "sqlite"
    assert figures["resync_unchanged_pipedrive_calls"]["value"] == 0
