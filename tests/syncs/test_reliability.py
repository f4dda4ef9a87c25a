"""Crash and concurrency guarantees with real processes: SIGKILL mid-run, two clusters, SQLite."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from django_q.models import Task
from django_q.tasks import async_task

from syncs.models import SyncRecord, SyncRun
from syncs.services import flow_run
from tests.processes import ROOT, child_env, start_cluster, stop, wait_for
from tests.syncs.world import World

pytestmark = pytest.mark.django_db(transaction=True)


def creates(world: World) -> int:
    return world.stats()["calls_by_operation"].get("addOrganization", 0)


def test_worker_killed_mid_run_then_restarted_reaches_the_same_state_without_duplicates(sandbox, tenant, settings):
    # Real Pipedrive search lags behind writes: the engine must not rely on it to find its own creates.
    world = World.build(sandbox, tenant, customers=1500, pipedrive_settings={"search_index_delay_s": 60})
    for threshold in (200, 700):
        proc = subprocess.Popen([sys.executable, "manage.py", "sync", str(world.flow.pk)], cwd=ROOT,
                                env=child_env(SYNC_CLAIM_STALE_SECONDS="0"), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True)
        try:
            wait_for(lambda threshold=threshold, proc=proc: creates(world) >= threshold or proc.poll() is not None,
                     timeout=120, interval=0.01, message=f"{threshold} creates")
        finally:
            output = stop(proc, kill=True)
        assert "Traceback" not in output, output
    assert creates(world) < 1500, "the worker finished before it could be killed"
    settings.SYNC_CLAIM_STALE_SECONDS = 0  # the killed worker's claim is abandoned
    result = flow_run(flow=world.flow)
    assert result is not None and result.failed == 0, result.error
    counts = world.by_external_id()
    assert len(counts) == 1500 and set(counts.values()) == {1}
    assert not SyncRecord.objects.filter(flow=world.flow, outcome="in_flight").exists()
    assert SyncRun.objects.filter(flow=world.flow, status="interrupted").exists()
    before = world.stats()["requests"]
    assert flow_run(flow=world.flow).status == "succeeded"
    assert world.stats()["requests"] == before


def test_two_clusters_never_run_one_flow_twice_at_once(sandbox, tenant):
    world = World.build(sandbox, tenant, customers=200)
    sandbox.control("POST", "sage300/settings", json={"page_size": 20, "latency_ms": 250})  # a slow flow
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
    assert runs
    for earlier, later in zip(runs, runs[1:], strict=False):
        assert earlier.finished <= later.started, "two runs of one flow overlapped"
    counts = world.by_external_id()
    assert len(counts) == 200 and set(counts.values()) == {1}


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
