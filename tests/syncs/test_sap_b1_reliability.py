"""SAP Business One acceptance over the sandboxes: faults on both sides, a SIGKILL mid-plan, the issue's
inbound sizes. The end state is judged at both ends: every partner one organization, every active
contact one person on its partner's organization, links pointing at live records."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections import Counter
from types import SimpleNamespace

import pytest

from syncs.models import Flow, RecordLink, SyncRecord, SyncRun
from syncs.services import flow_run
from tests.processes import ROOT, child_env, stop, wait_for
from tests.syncs.test_sap_b1_flows import B1World, expected_contacts
from tests.syncs.world import scheduled_run

pytestmark = pytest.mark.django_db(transaction=True)  # the engine's threads commit on their own connections

PARTNERS = "business_partners_to_organizations_and_persons"
FAULTS = {"error_5xx": 0.04, "rate_429": 0.01, "drop": 0.03, "timeout": 0.02, "timeout_seconds": 1.5}  # 10 %
FAULT_KINDS = {"5xx", "429", "drop", "timeout"}


def plan_audit(world: B1World) -> dict[str, list]:
    """Partners and contacts as B1 holds them against what Pipedrive holds and the links say."""
    partners = world.b1_all("business_partners")
    org_key = world.key("organizations", "SAP B1 card code")
    person_key = world.key("persons", "SAP B1 contact id")
    orgs, persons = world.records("organizations"), world.records("persons")
    org_ids: dict[str, list[int]] = {}
    for org in orgs:
        org_ids.setdefault(str((org.get("custom_fields") or {}).get(org_key)), []).append(org["id"])
    person_ids: dict[str, list[int]] = {}
    for person in persons:
        person_ids.setdefault(str((person.get("custom_fields") or {}).get(person_key)), []).append(person["id"])
    links = RecordLink.objects.filter(source_connection=world.b1, target_connection=world.pipedrive)
    org_links = dict(links.filter(source_object="business_partners").values_list("external_id", "target_id"))
    person_links = dict(links.filter(source_object="business_partners.contacts")
                        .values_list("external_id", "target_id"))
    cards = {p["CardCode"] for p in partners}
    contacts = expected_contacts(partners)
    live_persons = {p["id"]: p for p in persons}
    lost = sorted(ext for ext, ids, linked in (
        *((c, org_ids.get(c, []), org_links.get(c)) for c in cards),
        *((c, person_ids.get(c, []), person_links.get(c)) for c in contacts)) if len(ids) != 1 or linked not in ids)
    duplicated = sorted(ext for ext, ids in (*org_ids.items(), *person_ids.items()) if len(ids) > 1)
    # a person not on our organization of its partner, or a person link whose person is gone
    orphans = sorted(ext for ext, ids in person_ids.items() for pid in ids
                     if live_persons[pid].get("org_id") != org_links.get(ext.split("/")[0]))
    orphans += sorted(ext for ext, target in person_links.items() if target not in live_persons)
    extra = sorted(set(person_ids) - contacts) + sorted(set(org_ids) - cards)  # removed/inactive ones, or no id
    return {"lost": lost, "duplicated": duplicated, "orphan_children": orphans, "extra": extra}


CLEAN = {"lost": [], "duplicated": [], "orphan_children": [], "extra": []}


def test_faults_on_both_sides_end_in_the_fault_free_state(sandbox, tenant, settings, monkeypatch):
    settings.HTTP_READ_TIMEOUT_S = 0.75  # the injected timeouts hold a request 1.5 s
    settings.PIPEDRIVE_RETRY_BASE_S = 0.05
    settings.SYNC_LOST_CREATE_RECHECK_S = 2  # past the 1.5 s hold, so a late commit is still found
    from connectors.sap_b1 import client as b1_client

    monkeypatch.setattr(b1_client, "PAGE_SIZE", 4)  # enough B1 reads (~75 a run) for its faults to hit them
    world = B1World.build(sandbox, tenant, partners=300, contacts_max=5, items=1, invoices=1, kinds=(PARTNERS,))
    sandbox.control("POST", "sap_b1/faults", json={**FAULTS, "seed": 5})
    sandbox.control("POST", "pipedrive/faults", json={**FAULTS, "seed": 6})
    sandbox.control("POST", "pipedrive/commit_faults", json={"fraction": 0.05, "mode": "any", "seed": 3,
                                                             "timeout_seconds": 1.5})
    scheduled = SimpleNamespace(flow=world.flows[PARTNERS])
    runs = []
    for _ in range(12):  # bounded: scheduled runs until one is clean
        runs.append(scheduled_run(scheduled))
        if runs[-1].status == "succeeded" and runs[-1].failed == 0:
            break
    assert runs[-1].status == "succeeded" and runs[-1].failed == 0, [(r.status, r.failed, r.error) for r in runs]

    # the faults fired, counted by the sandboxes, on both sides (Pipedrive: for creates too, and lost answers)
    b1 = sandbox.control("GET", "sap_b1/faults")["counts"]
    pipedrive = sandbox.control("GET", "pipedrive/faults")
    committed = sandbox.control("GET", "pipedrive/commit_faults")["counts"]
    assert {kind for kind, n in b1.items() if n} == FAULT_KINDS, b1
    assert {kind for kind, n in pipedrive["counts"].items() if n} == FAULT_KINDS, pipedrive
    assert sum(pipedrive["counts_by_method"][kind].get("POST", 0) for kind in FAULT_KINDS) > 0
    assert sum(committed.get("POST", {}).values()) > 0, committed
    assert set(SyncRun.objects.filter(flow=world.flows[PARTNERS]).values_list("trigger", flat=True)) == {"schedule"}

    audit = plan_audit(world)
    assert audit == CLEAN, audit
    assert not SyncRecord.objects.filter(flow=world.flows[PARTNERS], outcome="in_flight").exists()


def persons_created(world: B1World) -> int:
    return world.calls().get("addPerson", 0)


def test_sync_killed_mid_plan_then_rerun_reaches_the_same_state(sandbox, tenant):
    """SIGKILL `manage.py sync` while persons are being created: plans cut between an organization and
    its persons, creates whose answer never came. The next run finishes them without a duplicate."""
    world = B1World.build(sandbox, tenant, partners=600, contacts_max=5, items=1, invoices=1, kinds=(PARTNERS,))
    flow = world.flows[PARTNERS]
    proc = subprocess.Popen([sys.executable, "manage.py", "sync", str(flow.pk)], cwd=ROOT, env=child_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        wait_for(lambda: persons_created(world) >= 300 or proc.poll() is not None, timeout=120, interval=0.01,
                 message="300 persons created")
        killed = wait_for(lambda: SyncRun.objects.filter(flow=flow, status="running").first(), timeout=60,
                          message="a running run")
        assert proc.poll() is None, "manage.py sync finished before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        output = stop(proc, kill=True)
    assert "Traceback" not in output, output
    at_kill = world.calls()
    assert 0 < at_kill.get("addPerson", 0) and at_kill.get("addOrganization", 0) < 600, at_kill
    # plans cut mid-way: partners whose organization is linked but not all of their persons yet
    partners = world.b1_all("business_partners")
    links = RecordLink.objects.filter(source_connection=world.b1)
    orgs_linked = set(links.filter(source_object="business_partners").values_list("external_id", flat=True))
    persons_linked = set(links.filter(source_object="business_partners.contacts").values_list("external_id", flat=True))
    cut = [p["CardCode"] for p in partners if p["CardCode"] in orgs_linked
           and not expected_contacts([p]) <= persons_linked]
    assert cut, "the kill did not land in the middle of any plan"

    result = flow_run(flow=Flow.objects.select_related("source", "target").get(pk=flow.pk))
    assert result is not None and result.status == "succeeded" and result.failed == 0, result.error
    assert SyncRun.objects.get(pk=killed.pk).status == "interrupted"
    audit = plan_audit(world)
    assert audit == CLEAN, audit
    assert not SyncRecord.objects.filter(flow=flow, outcome="in_flight").exists()
    world.pd("POST", "stats/reset")
    again = world.run(PARTNERS)
    assert again.status == "succeeded" and again.pipedrive_calls == 0 and world.calls() == {}


@pytest.mark.slow
def test_issue_sizes_are_created_exactly_once_and_a_rerun_costs_nothing(sandbox, tenant):
    """2,000 partners with 0–5 contacts, 1,000 items, 5,000 invoices (the issue's inbound acceptance)."""
    kinds = (PARTNERS, "items_to_products", "invoices_to_notes")
    world = B1World.build(sandbox, tenant, partners=2000, contacts_max=5, items=1000, invoices=5000, kinds=kinds)
    for kind in kinds:
        result = world.run(kind)
        assert result.status == "succeeded" and result.failed == 0, (kind, result.error)
    assert plan_audit(world) == CLEAN
    products = world.by_external("products", "SAP B1 item code")
    assert set(products) == {i["ItemCode"] for i in world.b1_all("items")} and set(products.values()) == {1}
    invoices = world.b1_all("invoices")
    notes = [n["content"] for n in world.records("notes")]
    assert len(invoices) == len(notes) == 5000
    noted = Counter(int(m.group(1)) for m in (re.search(r"ml-connector: invoices (\d+)<", c) for c in notes) if m)
    assert noted == Counter(inv["DocEntry"] for inv in invoices)  # one note per invoice

    world.pd("POST", "stats/reset")
    for kind in kinds:
        again = world.run(kind)
        assert again.status == "succeeded" and again.pipedrive_calls == 0, kind
    assert world.calls() == {}
