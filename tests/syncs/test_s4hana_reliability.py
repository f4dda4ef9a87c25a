"""SAP S/4HANA acceptance over the sandboxes: 10 % faults on both sides, then a SIGKILL mid-plan. The end
state is judged at both ends: every organization once, every contact person once on its organization,
every other person partner once, links pointing at live records."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.utils import timezone

from connectors.http import RetryPolicy
from connectors.s4hana import client as s4_client
from syncs.models import Flow, RecordLink, SyncRecord, SyncRun
from syncs.services import flow_run
from tests.processes import ROOT, child_env, stop, wait_for
from tests.syncs.test_s4hana_flows import BP_FIELD, CONTACT_FIELD, ORGS, PERSONS, S4World
from tests.syncs.world import scheduled_run

pytestmark = pytest.mark.django_db(transaction=True)  # the engine's threads commit on their own connections

FAULTS = {"error_5xx": 0.04, "rate_429": 0.01, "drop": 0.03, "timeout": 0.02, "timeout_seconds": 1.5}  # 10 %
FAULT_KINDS = {"5xx", "429", "drop", "timeout"}


def plan_audit(world: S4World) -> dict[str, list]:
    """Partners as S/4HANA holds them against what Pipedrive holds and what the links say."""
    partners, people = world.partners(), world.partners("person_partners")
    expected_orgs = {p["BusinessPartner"] for p in partners}
    expected_contacts = {
        f"{p['BusinessPartner']}/{c['BusinessPartnerPerson']}" for p in partners for c in p["ContactPersons"]
    }
    expected_persons = {p["BusinessPartner"] for p in people if not p["ContactPersonOf"]}
    org_key, contact_key = world.key("organizations", BP_FIELD), world.key("persons", CONTACT_FIELD)
    person_key = world.key("persons", BP_FIELD) if expected_persons else None
    orgs, persons = world.records("organizations"), world.records("persons")
    held: dict[str, dict[str, list[int]]] = {"org": {}, "contact": {}, "person": {}}
    for org in orgs:
        held["org"].setdefault(str(org["custom_fields"].get(org_key)), []).append(org["id"])
    for person in persons:
        fields = person.get("custom_fields") or {}
        kind, ext = (
            ("contact", fields.get(contact_key))
            if fields.get(contact_key)
            else ("person", fields.get(person_key))
        )
        held[kind].setdefault(str(ext), []).append(person["id"])
    links = RecordLink.objects.filter(source_connection=world.s4, target_connection=world.pipedrive)
    linked = {
        kind: dict(links.filter(source_object=obj).values_list("external_id", "target_id"))
        for kind, obj in (
            ("org", "business_partners"),
            ("contact", "business_partners.contacts"),
            ("person", "person_partners"),
        )
    }
    lost = sorted(
        ext
        for kind, wanted in (
            ("org", expected_orgs),
            ("contact", expected_contacts),
            ("person", expected_persons),
        )
        for ext in wanted
        if len(held[kind].get(ext, [])) != 1 or linked[kind].get(ext) not in held[kind][ext]
    )
    duplicated = sorted(ext for ids_by in held.values() for ext, ids in ids_by.items() if len(ids) > 1)
    by_id = {p["id"]: p for p in persons}
    orphans = sorted(
        ext
        for ext, ids in held["contact"].items()
        for pid in ids
        if by_id[pid].get("org_id") != linked["org"].get(ext.split("/")[0])
    )
    live = {o["id"] for o in orgs} | set(by_id)
    orphans += sorted(ext for kind in linked for ext, target in linked[kind].items() if target not in live)
    extra = sorted(
        (set(held["org"]) - expected_orgs)
        | (set(held["contact"]) - expected_contacts)
        | (set(held["person"]) - expected_persons)
    )
    return {"lost": lost, "duplicated": duplicated, "orphans": orphans, "extra": extra}


CLEAN = {"lost": [], "duplicated": [], "orphans": [], "extra": []}


def test_faults_on_both_sides_lose_and_duplicate_nothing(sandbox, tenant, settings, monkeypatch):
    settings.HTTP_READ_TIMEOUT_S = 0.75  # the injected timeouts hold a request 1.5 s
    settings.PIPEDRIVE_RETRY_BASE_S = 0.05
    settings.SYNC_LOST_CREATE_RECHECK_S = 0.2
    monkeypatch.setattr(
        s4_client, "DEFAULT_POLICY", RetryPolicy(base_s=0.05, cap_s=0.5)
    )  # same loop, short waits
    world = S4World.build(sandbox, tenant, partners=60, contacts_max=3, seed=11)
    sandbox.control(
        "POST", "s4hana/settings", json={"page_size": 3, "token_ttl_s": 40, "error_500": 0.02, "seed": 4}
    )  # many reads, tokens
    sandbox.control("POST", "s4hana/faults", json={**FAULTS, "error_5xx": 0.02, "seed": 5})  # + 2 % of 500s
    sandbox.control("POST", "pipedrive/faults", json={**FAULTS, "seed": 6})
    sandbox.control(
        "POST",
        "pipedrive/commit_faults",
        json={"fraction": 0.05, "mode": "any", "seed": 3, "timeout_seconds": 1.5},
    )
    for kind in (ORGS, PERSONS):  # one flow due at a time, as the scheduler would take them in turn
        Flow.objects.exclude(pk=world.flows[kind].pk).update(next_run_at=timezone.now() + timedelta(days=1))
        Flow.objects.filter(pk=world.flows[kind].pk).update(next_run_at=timezone.now())
        scheduled = SimpleNamespace(flow=world.flows[kind])
        runs = []
        for _ in range(12):  # bounded: scheduled runs until one is clean
            runs.append(scheduled_run(scheduled))
            if runs[-1].status == "succeeded" and runs[-1].failed == 0:
                break
        assert runs[-1].status == "succeeded" and runs[-1].failed == 0, [
            (r.status, r.failed, r.error) for r in runs
        ]

    s4 = sandbox.control("GET", "s4hana/faults")["counts"]
    pipedrive = sandbox.control("GET", "pipedrive/faults")["counts"]
    assert {kind for kind, n in s4.items() if n} == FAULT_KINDS, s4
    assert sandbox.control("GET", "s4hana/stats")["errors_500"] > 0
    assert {kind for kind, n in pipedrive.items() if n} == FAULT_KINDS, pipedrive
    sandbox.control("POST", "s4hana/faults", json={key: 0 for key in FAULTS})
    sandbox.control("POST", "s4hana/settings", json={"error_500": 0})
    audit = plan_audit(world)
    assert audit == CLEAN, audit
    assert not SyncRecord.objects.filter(flow__in=world.flows.values(), outcome="in_flight").exists()
    assert sandbox.control("GET", "s4hana/stats")["writes"] == 0


def test_sync_killed_mid_plan_then_rerun_reaches_the_same_state(sandbox, tenant):
    """SIGKILL `manage.py sync` while contact persons are being created; the next run finishes the plans
    it cut without a duplicate, and the run after costs nothing."""
    world = S4World.build(sandbox, tenant, partners=300, contacts_max=5, seed=12)
    flow = world.flows[ORGS]
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "sync", str(flow.pk)],
        cwd=ROOT,
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        wait_for(
            lambda: world.calls().get("addPerson", 0) >= 100 or proc.poll() is not None,
            timeout=120,
            interval=0.01,
            message="100 persons created",
        )
        killed = wait_for(
            lambda: SyncRun.objects.filter(flow=flow, status="running").first(),
            timeout=60,
            message="a running run",
        )
        assert proc.poll() is None, "manage.py sync finished before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        output = stop(proc, kill=True)
    assert "Traceback" not in output, output
    at_kill = world.calls()
    assert (
        at_kill.get("addPerson", 0)
        and at_kill.get("addOrganization", 0) < world.info["counts"]["organizations"]
    )

    result = flow_run(flow=Flow.objects.select_related("source", "target").get(pk=flow.pk))
    assert result is not None and result.status == "succeeded" and result.failed == 0, result.error
    assert SyncRun.objects.get(pk=killed.pk).status == "interrupted"
    assert world.run(PERSONS).status == "succeeded"
    audit = plan_audit(world)
    assert audit == CLEAN, audit
    world.pd("POST", "stats/reset")
    assert world.run(ORGS).pipedrive_calls == 0 and world.calls() == {}
