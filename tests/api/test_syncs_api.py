"""The flows, runs and records API: what the portal does, for integrators, tenant-scoped and role-checked."""

import pytest
from django.utils import timezone
from django_q.models import OrmQ

from syncs.models import Flow, SyncRecord
from syncs.services import flow_create, flow_run
from tests.factories import make_record, make_run
from tests.syncs.world import World

pytestmark = pytest.mark.django_db


def test_create_list_and_retrieve_flows(owner_api, tenant, connection, pipedrive, other_flow):
    created = owner_api.post("/api/flows/", {"source": connection.pk, "target": pipedrive.pk,
                                             "kind": "customers_to_organizations", "interval_minutes": 30},
                             format="json")
    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["name"], body["interval_minutes"], body["enabled"]) == (
        "Sage 300 customers → Pipedrive organizations", 30, True)
    assert body["mappings"][0] == {"source": "CustomerName", "target": "name", "lookup": None, "required": True}
    assert Flow.objects.get(pk=body["id"]).tenant == tenant

    listed = owner_api.get("/api/flows/").json()["results"]
    assert [f["id"] for f in listed] == [body["id"]]  # never the other tenant's
    detail = owner_api.get(f"/api/flows/{body['id']}/").json()
    assert detail["kind"] == "customers_to_organizations" and len(detail["mappings"]) == 11
    assert "pd-SECRET" not in str(listed) + str(detail)


def test_create_rejects_bad_input(owner_api, connection, pipedrive, other_connection):
    base = {"source": connection.pk, "target": pipedrive.pk, "kind": "customers_to_organizations"}
    assert owner_api.post("/api/flows/", {**base, "kind": "orders_to_deals"}, format="json").status_code == 400
    assert owner_api.post("/api/flows/", {**base, "target": connection.pk}, format="json").status_code == 400
    assert owner_api.post("/api/flows/", {**base, "interval_minutes": 0}, format="json").status_code == 400
    assert owner_api.post("/api/flows/", {**base, "source": other_connection.pk}, format="json").status_code == 404
    assert not Flow.objects.exists()


def test_pause_resume_and_run(owner_api, flow):
    paused = owner_api.post(f"/api/flows/{flow.pk}/pause/")
    assert paused.status_code == 200 and paused.json()["enabled"] is False
    assert paused.json()["pause_reason"] == "Paused by a user"
    resumed = owner_api.post(f"/api/flows/{flow.pk}/resume/").json()
    assert resumed["enabled"] is True and resumed["pause_reason"] == ""

    queued = owner_api.post(f"/api/flows/{flow.pk}/run/")
    assert queued.status_code == 202 and queued.json() == {"queued": True, "flow": flow.pk}
    task = OrmQ.objects.get().task
    assert task["func"] == "syncs.tasks.flow_run_task" and tuple(task["args"]) == (flow.pk, "manual")
    assert owner_api.post(f"/api/flows/{flow.pk}/explode/").status_code == 404


def test_runs_list_and_per_flow(owner_api, tenant, connection, pipedrive, flow, other_flow):
    second = flow_create(tenant=tenant, source=connection, target=pipedrive, kind="customers_to_organizations",
                         name="Second")
    a = make_run(flow, status="succeeded", read=10, created=10, tokens_spent=100)
    b = make_run(second, status="failed", error="Sage 300 did not answer.")
    make_run(other_flow, status="succeeded")
    runs = owner_api.get("/api/runs/").json()["results"]
    assert {r["id"] for r in runs} == {a.pk, b.pk}
    assert next(r for r in runs if r["id"] == a.pk)["tokens_spent"] == 100
    assert [r["id"] for r in owner_api.get("/api/runs/", {"flow": second.pk}).json()["results"]] == [b.pk]


def test_records_list_with_filters(owner_api, flow, other_flow):
    run = make_run(flow, status="partial")
    make_record(run, "1100", action="create", target_id=5)
    make_record(run, "1200", action="update", target_id=6)
    make_record(run, "BAD0001", action="fail", outcome="failed", error_kind="permanent",
                error_message="CustomerName is empty but name is required.")
    make_record(make_run(other_flow), "GLX1")

    def ids(**params):
        return [r["external_id"] for r in owner_api.get("/api/records/", params).json()["results"]]

    assert ids() == ["BAD0001", "1200", "1100"]
    assert ids(outcome="failed") == ["BAD0001"]
    assert ids(action="update") == ["1200"]
    assert ids(error_kind="permanent") == ["BAD0001"]
    assert ids(external_id="11") == ["1100"]
    assert ids(run=run.pk, outcome="ok") == ["1200", "1100"]
    assert ids(flow=other_flow.pk) == []


def test_other_tenants_ids_are_404(owner_api, other_flow):
    run = make_run(other_flow, status="partial", failed=1)
    record = make_record(run, "GLX1", outcome="failed")
    assert owner_api.get(f"/api/flows/{other_flow.pk}/").status_code == 404
    for action in ("run", "pause", "resume"):
        assert owner_api.post(f"/api/flows/{other_flow.pk}/{action}/").status_code == 404
    assert owner_api.post(f"/api/runs/{run.pk}/replay/").status_code == 404
    assert owner_api.post(f"/api/records/{record.pk}/replay/").status_code == 404
    assert owner_api.get("/api/runs/", {"flow": other_flow.pk}).json()["results"] == []
    other_flow.refresh_from_db()
    assert other_flow.enabled and not OrmQ.objects.exists() and SyncRecord.objects.count() == 1


def test_viewer_reads_but_cannot_write(viewer_api, flow, connection, pipedrive):
    run = make_run(flow, status="partial", failed=1)
    record = make_record(run, "1100", outcome="failed")
    assert viewer_api.get("/api/flows/").status_code == 200
    assert viewer_api.get(f"/api/flows/{flow.pk}/").status_code == 200
    assert viewer_api.get("/api/runs/").status_code == 200
    assert viewer_api.get("/api/records/").status_code == 200
    writes = [("/api/flows/", {"source": connection.pk, "target": pipedrive.pk, "kind": "customers_to_organizations"})]
    writes += [(f"/api/flows/{flow.pk}/{action}/", {}) for action in ("run", "pause", "resume")]
    writes += [(f"/api/runs/{run.pk}/replay/", {}), (f"/api/records/{record.pk}/replay/", {})]
    for url, data in writes:
        assert viewer_api.post(url, data, format="json").status_code == 403, url
    flow.refresh_from_db()
    assert flow.enabled and Flow.objects.count() == 1 and not OrmQ.objects.exists()
    assert SyncRecord.objects.count() == 1


def test_replay_refuses_ok_records_and_busy_flows(owner_api, flow):
    run = make_run(flow, status="partial", failed=1)
    ok = make_record(run, "1100")
    failed = make_record(run, "BAD0001", outcome="failed")
    assert owner_api.post(f"/api/records/{ok.pk}/replay/").status_code == 409
    nothing = owner_api.post(f"/api/runs/{make_run(flow).pk}/replay/")
    assert nothing.status_code == 409 and nothing.json() == {
        "detail": "This run has no failed records left to replay.", "code": "conflict", "fields": {}}
    now = timezone.now()
    Flow.objects.filter(pk=flow.pk).update(running_since=now, heartbeat_at=now)
    busy = owner_api.post(f"/api/records/{failed.pk}/replay/")
    assert busy.status_code == 409 and "running right now" in busy.json()["detail"]
    assert owner_api.post(f"/api/runs/{run.pk}/replay/").status_code == 409
    assert SyncRecord.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_record_and_run_replay_against_the_sandbox(owner_api, sandbox, tenant, q_sync):
    world = World.build(sandbox, tenant, customers=4)
    bad = list(world.sage_ctl("POST", "malformed", json={"kinds": ["missing_name", "null_name"]})["created"])
    run = flow_run(flow=world.flow)
    assert (run.status, run.created, run.failed) == ("partial", 4, 2)
    failed = {r.external_id: r for r in SyncRecord.objects.filter(run=run, outcome="failed")}
    assert set(failed) == set(bad)

    # One record, fixed at the source, replayed alone.
    world.sage_ctl("PATCH", f"customers/{bad[0]}", json={"CustomerName": "Fixed Ltd"})
    one = owner_api.post(f"/api/records/{failed[bad[0]].pk}/replay/")
    assert one.status_code == 202, one.content  # queued; in sync mode the worker has already run it
    assert (one.json()["trigger"], one.json()["status"], one.json()["created"]) == ("replay", "succeeded", 1)
    new = SyncRecord.objects.get(replay_of=failed[bad[0]])
    assert new.outcome == "ok" and new.run_id == one.json()["id"]

    # The run's failures in bulk: only what nothing retried since — the fixed one is not sent again.
    bulk = owner_api.post(f"/api/runs/{run.pk}/replay/")
    assert bulk.status_code == 202, bulk.content
    [replay] = bulk.json()
    assert (replay["status"], replay["failed"]) == ("partial", 1)
    still = SyncRecord.objects.get(run_id=replay["id"], external_id=bad[1])
    assert still.outcome == "failed" and still.replay_of == failed[bad[1]] and "CustomerName" in still.error_message
    listed = owner_api.get("/api/records/", {"run": replay["id"]}).json()["results"]
    assert {r["external_id"] for r in listed} == {bad[1]}
    assert world.by_external_id()[bad[0]] == 1


def test_bad_numeric_filters_are_a_clear_400(owner_api):
    for url in ("/api/records/?flow=abc", "/api/records/?run=x", "/api/runs/?flow=abc"):
        resp = owner_api.get(url)
        assert resp.status_code == 400, url
        assert "is not a number" in str(resp.json())


@pytest.mark.parametrize("query", ["limit=0", "limit=-1", "limit=abc", "limit=501", "limit=5_0", "offset=-1",
                                   "offset=x", "offset=+1", "status=bogus", "outcome=bogus"])
def test_lists_refuse_invalid_paging_and_filters_with_the_one_error_body(owner_api, flow, query):
    for url in ("/api/flows/", "/api/runs/", "/api/records/", "/api/connections/", "/api/team/members/",
                "/api/alerts/"):
        name = query.split("=")[0]
        if name in ("status", "outcome") and url not in ("/api/runs/", "/api/records/"):
            continue
        if (name, url) in {("status", "/api/records/"), ("outcome", "/api/runs/")}:
            continue
        resp = owner_api.get(f"{url}?{query}")
        assert resp.status_code == 400, (url, query)
        body = resp.json()
        assert body["code"] == "invalid" and name in body["fields"], (url, body)


def test_lists_page_with_limit_and_offset(owner_api, flow):
    runs = [make_run(flow, status="succeeded") for _ in range(5)]
    first = owner_api.get("/api/runs/?limit=2").json()
    assert first["count"] == 5 and len(first["results"]) == 2 and "offset=2" in first["next"]
    last = owner_api.get("/api/runs/?limit=2&offset=4").json()
    assert [r["id"] for r in last["results"]] == [runs[0].pk] and last["next"] is None


def test_unrouted_api_paths_answer_with_the_error_body(owner_api):
    resp = owner_api.get("/api/flows/not-a-number/")
    assert resp.status_code == 404 and resp.json()["code"] == "not_found"
    assert resp["Content-Type"].startswith("application/json")
