"""The sync engine end to end: Sage 300 customers → Pipedrive organizations over loopback HTTP."""

from __future__ import annotations

import pytest

from syncs.models import RecordLink, SyncRecord, SyncRun
from syncs.services import flow_run
from tests.syncs.world import World, scheduled_run

pytestmark = pytest.mark.django_db(transaction=True)


def run(world: World) -> SyncRun:
    result = flow_run(flow=world.flow)
    assert result is not None
    world.flow.refresh_from_db()
    return result


def test_first_run_creates_then_unchanged_costs_nothing_then_changes_update(sandbox, tenant):
    world = World.build(sandbox, tenant, customers=5000)
    first = run(world)
    assert first.status == "succeeded", first.error
    assert (first.read, first.created, first.failed) == (5000, 5000, 0)
    # 5,000 creates at 5 tokens, plus field set-up and one reconcile scan: what the sandbox counted
    assert first.pipedrive_calls == world.stats()["requests"]
    assert first.tokens_spent == world.stats()["tokens_used_total"]
    assert 5000 <= first.pipedrive_calls <= 5020
    counts = world.by_external_id()
    assert len(counts) == 5000 and set(counts.values()) == {1}

    before = world.stats()["requests"]
    second = run(world)
    assert second.status == "succeeded"
    assert world.stats()["requests"] == before  # not one Pipedrive call
    assert (second.created, second.updated, second.pipedrive_calls) == (0, 0, 0)

    changed = world.sage_ctl("POST", "mutate", json={"count": 50, "seed": 11, "today": "2026-11-21"})["changed"]
    world.pd("POST", "stats/reset")
    third = run(world)
    assert third.updated == 50 and third.created == 0 and third.failed == 0
    ops = world.stats()["calls_by_operation"]
    assert ops.get("updateOrganization") == 50 and not ops.get("addOrganization")
    assert set(SyncRecord.objects.filter(run=third, action="update").values_list("external_id", flat=True)) == set(changed)


@pytest.mark.parametrize("answer", ["404", "200"])
def test_organization_deleted_in_pipedrive_is_recreated_and_relinked(sandbox, tenant, answer):
    # A PATCH to a deleted organization gets either 404 or 200 with is_deleted: true; both mean "gone".
    world = World.build(sandbox, tenant, customers=30, pipedrive_settings={"deleted_patch": answer})
    run(world)
    link = RecordLink.objects.order_by("external_id").first()
    world.pd("DELETE", f"ui/organizations/{link.target_id}")
    world.sage_ctl("PATCH", f"customers/{link.external_id}", json={"PhoneNumber": "+1 555 0100"})
    result = run(world)
    assert result.created == 1 and result.failed == 0
    row = SyncRecord.objects.get(run=result, external_id=link.external_id)
    assert row.action == "recreate" and row.outcome == "ok" and row.target_id != str(link.target_id)
    link.refresh_from_db()
    assert str(link.target_id) == row.target_id  # audit rows hold target ids as text
    assert world.by_external_id()[link.external_id] == 1
    ops = world.stats()["calls_by_operation"]
    assert ops.get("updateOrganization") == 1 and ops.get("addOrganization", 0) == 31
    live = {o["id"]: o for o in world.organizations()}
    assert int(row.target_id) in live and link.target_id in live


def test_existing_organization_is_adopted_and_unrelated_is_untouched(sandbox, tenant):
    world = World.build(sandbox, tenant, customers=20)
    world.pd("POST", "fields/organizations", json={"field_name": "Sage 300 customer number", "field_type": "varchar"})
    key = world.external_key()
    target = world.customers()[3]
    mine = world.pd("POST", "ui/organizations", json={"name": "Entered by hand",
                                                      "custom_fields": {key: target["CustomerNumber"]}})
    stranger = world.pd("POST", "ui/organizations", json={"name": "Unrelated Prospect Ltd"})
    result = run(world)
    assert result.created == 19 and result.adopted == 1 and result.failed == 0
    orgs = {o["id"]: o for o in world.organizations()}
    assert len(orgs) == 21
    assert world.by_external_id()[target["CustomerNumber"]] == 1
    # additive-only: neither the adopted nor the unrelated organization was modified
    assert orgs[mine["id"]]["name"] == "Entered by hand"
    assert orgs[stranger["id"]]["name"] == "Unrelated Prospect Ltd"
    assert orgs[stranger["id"]]["update_time"] == stranger["update_time"]
    link = RecordLink.objects.get(external_id=target["CustomerNumber"])
    assert link.target_id == mine["id"] and not link.created_by_us
    assert result.skipped == 0  # adopted, counted once
    # re-reading it unchanged is free and leaves no new row; changing it in the ERP still does not touch it
    from syncs.services import flow_resync

    flow_resync(flow=world.flow)
    again = run(world)
    assert again.unchanged == 20 and again.skipped == 0
    assert SyncRecord.objects.filter(run=again).count() == 0
    world.sage_ctl("PATCH", f"customers/{target['CustomerNumber']}", json={"PhoneNumber": "+1 555 0199"})
    changed = run(world)
    assert changed.skipped == 1 and changed.updated == 0
    assert {o["id"]: o for o in world.organizations()}[mine["id"]]["name"] == "Entered by hand"


def test_bad_records_fail_alone_with_a_clear_error(sandbox, tenant):
    world = World.build(sandbox, tenant, customers=40)
    world.sage_ctl("POST", "malformed", json={"kinds": ["missing_name", "null_name"]})
    result = run(world)
    assert result.created == 40 and result.failed == 2 and result.status == "partial"
    failures = SyncRecord.objects.filter(run=result, outcome="failed")
    assert all(f.error_kind == "permanent" and "CustomerName" in f.error_message for f in failures)


FAULTS = {"error_5xx": 0.04, "rate_429": 0.01, "drop": 0.03, "timeout": 0.02, "timeout_seconds": 1.5}
FAULT_KINDS = {"5xx", "429", "drop", "timeout"}


def runs_until_clean(world: World, *, limit: int) -> list[SyncRun]:
    """Scheduled runs until one finishes with nothing failed and nothing left to retry."""
    from syncs.selectors import record_failures_outstanding

    runs = []
    for _ in range(limit):
        runs.append(scheduled_run(world))
        if runs[-1].status == "succeeded" and not record_failures_outstanding(flow=world.flow).exists():
            return runs
    raise AssertionError(f"not clean after {limit} scheduled runs: {[(r.status, r.failed, r.error) for r in runs]}")


def test_faults_on_both_sides_end_in_the_fault_free_state(sandbox, tenant, settings):
    settings.HTTP_READ_TIMEOUT_S = 0.75  # the injected timeouts hold a request 1.5 s
    settings.PIPEDRIVE_RETRY_BASE_S = 0.05
    settings.SYNC_LOST_CREATE_RECHECK_S = 2  # past the 1.5 s hold, so a late commit is still found
    world = World.build(sandbox, tenant, customers=600)
    # small Sage pages: enough reads (~200) for every kind of fault to hit them too
    sandbox.control("POST", "sage300/settings", json={"page_size": 5})
    sandbox.control("POST", "sage300/faults", json={**FAULTS, "error_5xx": 0.05, "rate_429": 0.04, "drop": 0.04,
                                                    "timeout": 0.04, "seed": 5})
    sandbox.control("POST", "pipedrive/faults", json={**FAULTS, "seed": 6})
    sandbox.control("POST", "pipedrive/commit_faults", json={"fraction": 0.05, "mode": "any", "seed": 3,
                                                             "timeout_seconds": 1.5})
    # creates under faults, then a day of ERP changes (updates, and a few new customers) under the same faults
    first = runs_until_clean(world, limit=10)
    changed = world.sage_ctl("POST", "mutate", json={"count": 240, "seed": 11, "create": 15,
                                                     "today": "2026-11-21"})
    then = runs_until_clean(world, limit=10)

    # the faults fired, counted by the sandbox, on both sides and for writes of both kinds
    sage = sandbox.control("GET", "sage300/faults")["counts"]
    pipedrive = sandbox.control("GET", "pipedrive/faults")
    committed = sandbox.control("GET", "pipedrive/commit_faults")["counts"]
    assert {kind for kind, n in sage.items() if n} == FAULT_KINDS, sage
    assert {kind for kind, n in pipedrive["counts"].items() if n} == FAULT_KINDS, pipedrive
    by_method = pipedrive["counts_by_method"]
    assert sum(by_method[kind].get("PATCH", 0) for kind in FAULT_KINDS) > 0, by_method
    assert sum(by_method[kind].get("POST", 0) for kind in FAULT_KINDS) > 0, by_method
    assert sum(committed.get("PATCH", {}).values()) > 0 and sum(committed.get("POST", {}).values()) > 0, committed
    assert {kind for kinds in committed.values() for kind, n in kinds.items() if n} == {"503", "drop", "timeout"}

    # the end state came from scheduled runs alone, the last of them clean
    runs = SyncRun.objects.filter(flow=world.flow)
    assert set(runs.values_list("trigger", flat=True)) == {"schedule"}
    assert first[-1].status == then[-1].status == "succeeded"
    updates = SyncRecord.objects.filter(flow=world.flow, action="update", outcome="ok", run__in=[r.pk for r in then])
    assert updates.count() > 100 and set(updates.values_list("external_id", flat=True)) <= set(changed["changed"])
    # and it is the fault-free state: 0 lost, 0 duplicated, 0 orphan links, every name as the ERP has it
    audit = world.link_audit()
    assert audit == {"lost": [], "duplicated": [], "orphan_links": [], "without_external_id": []}, audit
    customers = world.customers()
    assert len(customers) == 615 and len(world.organizations()) == 615
    key = world.external_key()
    names = {o["custom_fields"][key]: o["name"] for o in world.organizations()}
    assert names == {c["CustomerNumber"]: c["CustomerName"].strip()[:255] for c in customers}


def test_rejected_erp_credentials_break_the_connection_and_pause_the_flow(sandbox, tenant):
    world = World.build(sandbox, tenant, customers=5)
    world.sage.credentials = {"password": "wrong-password"}
    world.sage.save()
    result = run(world)
    assert result.status == "failed" and "rejected the credentials" in result.error
    assert "wrong-password" not in result.error and "WRONG-PASSWORD" not in result.error
    world.sage.refresh_from_db()
    assert world.sage.status == "broken" and "password" in world.sage.status_message
    assert not world.flow.enabled and "Sage 300" in world.flow.pause_reason
    assert world.organizations() == []


@pytest.mark.parametrize(("latency_s", "parallel"), [(0.0, False), (0.02, True)])
def test_calls_spread_over_threads_only_when_the_network_wait_dominates(sandbox, tenant, latency_s, parallel):
    from syncs.engine import FlowEngine

    world = World.build(sandbox, tenant, customers=60)
    if latency_s:
        sandbox.control("POST", "pipedrive/faults", json={"slow": 1.0, "slow_seconds": latency_s})
    run_row = SyncRun.objects.create(tenant=tenant, flow=world.flow, trigger="manual")
    engine = FlowEngine(flow=world.flow, run=run_row)
    try:
        result = engine.execute()
    finally:
        engine.close()
    assert result.created == 60
    if parallel:  # 20 ms a call: the wait dominates however busy this machine is
        assert engine.parallel is True
    else:  # on loopback a busy machine can make a call slow too: the rule, not the clock, is checked
        from syncs.engine import PARALLEL_ABOVE_MS

        assert engine.first_batch_call_ms is not None
        assert engine.parallel is (engine.first_batch_call_ms > PARALLEL_ABOVE_MS)


def test_resync_all_recreates_organizations_deleted_in_pipedrive(sandbox, tenant):
    from syncs.services import flow_resync

    world = World.build(sandbox, tenant, customers=30)
    run(world)
    gone = list(RecordLink.objects.order_by("external_id")[:2])
    for link in gone:
        world.pd("DELETE", f"ui/organizations/{link.target_id}")
    world.pd("POST", "stats/reset")
    flow_resync(flow=world.flow)
    result = run(world)
    assert (result.read, result.created, result.unchanged, result.failed) == (30, 2, 28, 0)
    assert {r.external_id for r in SyncRecord.objects.filter(run=result, action="recreate")} == {
        link.external_id for link in gone}
    counts = world.by_external_id()
    assert len(counts) == 30 and set(counts.values()) == {1}
    ops = world.stats()["calls_by_operation"]
    assert ops == {"getOrganizations": 1, "updateOrganization": 2, "addOrganization": 2}
    assert "verify_links" not in world.flow.cursor
