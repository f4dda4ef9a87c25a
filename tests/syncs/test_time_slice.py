"""Fair, bounded runs: a run yields its worker after RUN_TIME_SLICE_S, the flow is due again at once and
the next runs carry on; the dispatcher hands out due flows oldest-due first, within its claim limit."""

from datetime import timedelta

import pytest
from django.utils import timezone

from connectors.models import Connection
from syncs.models import Flow, SyncRun
from syncs.scheduler import dispatcher_tick
from syncs.services import flow_create, flows_claim_due
from syncs.tasks import flow_run_task
from tests.syncs.world import World

pytestmark = pytest.mark.django_db(transaction=True)


def scheduled_run(flow_id: int) -> SyncRun:
    """What a worker does with a flow the dispatcher handed it."""
    assert flows_claim_due() == [flow_id]  # due (again) at once
    flow_run_task(flow_id, "schedule")
    return SyncRun.objects.filter(flow_id=flow_id).order_by("-pk").first()


def test_a_run_yields_after_its_slice_and_the_next_runs_continue_where_it_stopped(sandbox, tenant, settings,
                                                                                  owner_client, owner_api):
    settings.RUN_TIME_SLICE_S = 0  # yield after every page (100 customers)
    world = World.build(sandbox, tenant, customers=250)

    first = scheduled_run(world.flow.pk)
    assert (first.status, first.reason) == ("partial", "continues"), first.error
    assert first.read == 100 and first.created == 100 and first.failed == 0
    flow = Flow.objects.get(pk=world.flow.pk)
    assert flow.cursor["erp"]["after"]  # the page's cursor is committed
    assert flow.running_since is None and flow.next_run_at <= timezone.now()
    assert len(world.organizations()) == 100  # what the sandbox holds, not what the engine says

    page = owner_client.get(f"/runs/{first.pk}/")
    assert "Partial — continues" in page.content.decode()
    api_run = next(r for r in owner_api.get("/api/runs/").json()["results"] if r["id"] == first.pk)
    assert (api_run["status"], api_run["reason"]) == ("partial", "continues")

    runs = [first]
    while runs[-1].continues:
        assert len(runs) < 5, [(r.status, r.read) for r in runs]
        runs.append(scheduled_run(world.flow.pk))
    assert [r.read for r in runs] == [100, 100, 50]  # each page read once: every run started where the last one stopped
    assert runs[-1].status == "succeeded" and runs[-1].reason == ""
    counts = world.by_external_id()
    assert len(counts) == 250 and set(counts.values()) == {1}  # every customer exactly once at the sandbox
    flow.refresh_from_db()
    assert flow.next_run_at > timezone.now() + timedelta(minutes=10)  # done: back to the flow's interval


def test_a_slow_source_makes_the_run_yield_at_a_page_boundary(sandbox, tenant, settings):
    # 9 page reads of ≥ 0.3 s each cannot fit in a 1-s slice, whatever the machine's speed
    settings.RUN_TIME_SLICE_S = 1
    sandbox.control("POST", "sage300/settings", json={"latency_ms": 300})
    world = World.build(sandbox, tenant, customers=900)
    run = scheduled_run(world.flow.pk)
    assert run.continues and 100 <= run.read < 900 and run.read % 100 == 0, run.read
    assert len(world.organizations()) == run.created == run.read
    sandbox.control("POST", "sage300/settings", json={"latency_ms": 0})


def make_flow(tenant, n: int, *, due_in_s: float) -> Flow:
    source = Connection.objects.create(tenant=tenant, system="sage300", name=f"Sage {n}",
                                       base_url="http://127.0.0.1:9/Sage300WebApi/v1.0")
    target = Connection.objects.create(tenant=tenant, system="pipedrive", name=f"Pipedrive {n}",
                                       base_url="http://127.0.0.1:9")
    flow = flow_create(tenant=tenant, source=source, target=target, kind="customers_to_organizations",
                       name=f"flow {n}")
    Flow.objects.filter(pk=flow.pk).update(next_run_at=timezone.now() + timedelta(seconds=due_in_s))
    return flow


def test_dispatcher_claims_the_oldest_due_flows_first_within_its_limit(tenant, settings):
    # created in an order unlike their due times, so neither id nor name order passes by luck
    flows = {due: make_flow(tenant, i, due_in_s=due) for i, due in enumerate([-60, -600, 30, -5, -3600, -120])}
    settings.SYNC_DISPATCH_LIMIT = 3
    assert flows_claim_due() == [flows[-3600].pk, flows[-600].pk, flows[-120].pk]
    assert flows_claim_due(limit=10) == [flows[-60].pk, flows[-5].pk]  # the rest; the claimed ones are taken
    assert flows_claim_due() == []  # the flow due in 30 s is not due yet


def test_the_dispatcher_tick_uses_the_claim_limit(tenant, settings, monkeypatch):
    queued = []
    monkeypatch.setattr("syncs.scheduler.async_task", lambda func, flow_id, *a, **k: queued.append(flow_id))
    flows = [make_flow(tenant, i, due_in_s=-10 * i) for i in range(5)]
    settings.SYNC_DISPATCH_LIMIT = 2
    assert dispatcher_tick() == queued == [flows[4].pk, flows[3].pk]


def test_manage_py_sync_carries_on_run_after_run_until_the_flow_is_done(sandbox, tenant, settings):
    from io import StringIO

    from django.core.management import call_command

    settings.RUN_TIME_SLICE_S = 0
    world = World.build(sandbox, tenant, customers=250)
    out = StringIO()
    call_command("sync", str(world.flow.pk), stdout=out)
    lines = [line for line in out.getvalue().splitlines() if line.startswith("Run ")]
    assert len(lines) == 3 and all("partial — continues" in line for line in lines[:2]), lines
    assert ": succeeded" in lines[2]
    counts = world.by_external_id()
    assert len(counts) == 250 and set(counts.values()) == {1}
