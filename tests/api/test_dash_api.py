"""API parity for the dashboard's pages: webhook events (list, reprocess), replaying a selection or a
flow's failures, run list filters; every answer documented in the schema."""

from datetime import timedelta

import pytest
import yaml
from django.core.management import call_command
from django.utils import timezone
from django_q.models import OrmQ

from syncs.models import Flow, SyncRun, WebhookEvent
from tests.factories import ConnectionFactory, make_record, make_run

pytestmark = pytest.mark.django_db


def event(conn, n, **fields):
    return WebhookEvent.objects.create(
        connection=conn,
        delivery_id=f"d-{n}",
        version="2",
        body={"meta": {"id": n}},
        object=fields.pop("object", "deal"),
        action="change",
        entity_id=str(n),
        auth_result="basic",
        **fields,
    )


def test_webhook_events_list_is_paginated_filtered_and_tenant_scoped(
    owner_api, tenant, other_tenant, pipedrive
):
    for n in range(7):
        event(pipedrive, n, status="processed" if n % 2 else "failed", duplicates=1 if n == 3 else 0)
    event(pipedrive, 99, object="person", status="ignored")
    event(ConnectionFactory(tenant=other_tenant, system="pipedrive"), 1000)
    page = owner_api.get("/api/webhook-events/?limit=3&offset=0").json()
    assert page["count"] == 8 and len(page["results"]) == 3 and page["next"]
    assert {e["entity_id"] for e in page["results"]} == {
        "99",
        "6",
        "5",
    }  # newest first, never the other tenant's
    assert [
        e["entity_id"] for e in owner_api.get("/api/webhook-events/?duplicates=true").json()["results"]
    ] == ["3"]
    assert owner_api.get("/api/webhook-events/?status=failed&object=deal").json()["count"] == 4
    assert owner_api.get(f"/api/webhook-events/?connection={pipedrive.pk}&entity_id=5").json()["count"] == 1


@pytest.mark.parametrize(
    "query", ["offset=-1", "offset=x", "limit=0", "limit=501", "status=nope", "connection=abc"]
)
def test_webhook_events_list_refuses_bad_parameters(owner_api, query):
    resp = owner_api.get(f"/api/webhook-events/?{query}")
    assert resp.status_code == 400, query
    assert resp.json()["code"] == "invalid" and query.split("=")[0] in resp.json()["fields"]


def test_reprocess_an_event(owner_api, viewer_api, pipedrive, other_tenant):
    mine = event(pipedrive, 1, status="failed", error="transient: B1 did not answer")
    assert viewer_api.post(f"/api/webhook-events/{mine.pk}/reprocess/").status_code == 403
    assert not OrmQ.objects.exists()
    resp = owner_api.post(f"/api/webhook-events/{mine.pk}/reprocess/")
    assert resp.status_code == 202 and resp.json()["status"] == "stored" and resp.json()["error"] == ""
    assert tuple(OrmQ.objects.get().task["args"]) == (mine.pk,)
    theirs = event(ConnectionFactory(tenant=other_tenant, system="pipedrive"), 2, status="failed")
    assert owner_api.post(f"/api/webhook-events/{theirs.pk}/reprocess/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == "failed" and OrmQ.objects.count() == 1


def test_replay_selection_queues_exactly_the_chosen_records(owner_api, flow, other_flow):
    run = make_run(flow, status="partial")
    a, b, c = (make_record(run, key, outcome="failed") for key in "ABC")
    ok = make_record(run, "D")
    foreign = make_record(make_run(other_flow), "G", outcome="failed")
    resp = owner_api.post("/api/records/replay/", {"records": [c.pk, a.pk, ok.pk, foreign.pk]}, format="json")
    assert resp.status_code == 202
    (replay,) = resp.json()
    assert (
        replay["trigger"] == "replay"
        and replay["status"] == "queued"
        and replay["status_url"].endswith(f"/api/runs/{replay['id']}/")
    )
    assert [tuple(q.task["args"]) for q in OrmQ.objects.all()] == [(replay["id"], [a.pk, c.pk])]
    assert b.pk not in OrmQ.objects.get().task["args"][1]


def test_replay_all_failures_of_a_flow_and_the_errors(owner_api, viewer_api, flow, other_flow):
    run = make_run(flow, status="partial")
    a = make_record(run, "A", outcome="failed")
    assert viewer_api.post("/api/records/replay/", {"flow": flow.pk}, format="json").status_code == 403
    assert owner_api.post("/api/records/replay/", {"flow": other_flow.pk}, format="json").status_code == 404
    for body in ({}, {"records": []}, {"records": [a.pk], "flow": flow.pk}, {"records": ["x"]}):
        assert owner_api.post("/api/records/replay/", body, format="json").status_code == 400, body
    assert not OrmQ.objects.exists()
    now = timezone.now()
    Flow.objects.filter(pk=flow.pk).update(running_since=now, heartbeat_at=now)
    busy = owner_api.post("/api/records/replay/", {"flow": flow.pk}, format="json")
    assert busy.status_code == 409 and "running right now" in busy.json()["detail"]
    Flow.objects.filter(pk=flow.pk).update(running_since=None, heartbeat_at=None)
    resp = owner_api.post("/api/records/replay/", {"flow": flow.pk}, format="json")
    assert resp.status_code == 202 and tuple(OrmQ.objects.get().task["args"]) == (
        resp.json()[0]["id"],
        [a.pk],
    )
    nothing = owner_api.post("/api/records/replay/", {"records": [make_record(run, "Z").pk]}, format="json")
    assert nothing.status_code == 400 and "nothing to replay" in nothing.json()["detail"]


def test_runs_list_filters(owner_api, flow):
    old = make_run(flow, status="succeeded")
    SyncRun.objects.filter(pk=old.pk).update(started=timezone.now() - timedelta(days=3))
    failed = make_run(flow, status="failed", trigger="manual", error="Sage 300 refused the password")
    replay = make_run(flow, status="partial", trigger="replay")
    make_record(replay, "CUST-42")

    def ids(query: str) -> set[int]:
        resp = owner_api.get(f"/api/runs/?{query}")
        assert resp.status_code == 200, resp.content
        return {r["id"] for r in resp.json()["results"]}

    today = timezone.now().date()
    assert ids("status=failed") == {failed.pk}
    assert ids("trigger=replay") == {replay.pk}
    assert ids(f"started_to={today - timedelta(days=1)}") == {old.pk}
    assert ids(f"started_from={today}&q=password") == {failed.pk}
    assert ids("q=CUST-42") == {replay.pk}
    assert owner_api.get("/api/runs/?started_from=yesterday").status_code == 400
    assert owner_api.get("/api/runs/?status=bogus").status_code == 400


def test_schema_documents_every_answer_of_the_new_operations(tmp_path):
    out = tmp_path / "schema.yml"
    call_command("spectacular", "--file", str(out), "--validate")
    paths = yaml.safe_load(out.read_text())["paths"]
    expect = {
        ("/api/webhook-events/", "get"): {"200", "400", "401", "403"},
        ("/api/webhook-events/{id}/reprocess/", "post"): {"202", "400", "401", "403", "404"},
        ("/api/records/replay/", "post"): {"202", "400", "401", "403", "404", "409"},
    }
    for (route, method), codes in expect.items():
        assert set(paths[route][method]["responses"]) == codes, route
    params = {p["name"] for p in paths["/api/runs/"]["get"]["parameters"]}
    assert {"flow", "status", "trigger", "started_from", "started_to", "q"} <= params
    params = {p["name"] for p in paths["/api/records/"]["get"]["parameters"]}
    assert {"flow", "run", "outcome", "action", "error_kind", "external_id"} <= params


def test_records_list_filters_are_checked(owner_api, flow):
    make_record(make_run(flow), "1100", outcome="failed", error_kind="permanent")
    assert [
        r["external_id"] for r in owner_api.get("/api/records/?external_id=110&outcome=failed").json()["results"]
    ] == ["1100"]
    for query in ("outcome=bogus", "error_kind=nope", "run=0"):
        assert owner_api.get(f"/api/records/?{query}").status_code == 400, query
