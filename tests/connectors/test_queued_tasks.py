"""Ping and replay are queued as django-q2 tasks (issue 8 §6): the web request answers at once without
contacting the servers, and the result shows when a worker has done the work."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.urls import reverse

from connectors.models import Connection
from syncs.models import SyncRecord, SyncRun
from tests.factories import ConnectionFactory, make_record, make_run
from tests.processes import start_cluster, stop, wait_for


class CountingServer:
    """A loopback HTTP server that counts the requests it gets (and refuses them all with 401)."""

    def __init__(self):
        hits = self.hits = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                hits.append(self.path)
                self.send_response(401)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_POST = do_GET  # noqa: N815

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def counting():
    server = CountingServer()
    yield server
    server.close()


@pytest.fixture
def watched(tenant, counting):
    return ConnectionFactory(tenant=tenant, name="Watched Sage", base_url=f"{counting.url}/Sage300WebApi/v1.0")


@pytest.mark.django_db
def test_portal_ping_answers_pending_without_contacting_the_server(owner_client, watched, counting):
    fragment = owner_client.post(reverse("connection_ping", kwargs={"id": watched.pk}), HTTP_HX_REQUEST="true")
    html = fragment.content.decode()
    assert fragment.status_code == 200 and "Testing…" in html
    assert reverse("connection_ping_status", kwargs={"id": watched.pk}) in html  # htmx polls for the result
    assert counting.hits == []
    watched.refresh_from_db()
    assert watched.ping_pending and watched.last_ping_at is None
    polled = owner_client.get(reverse("connection_ping_status", kwargs={"id": watched.pk})).content.decode()
    assert "Testing…" in polled


@pytest.mark.django_db
def test_api_ping_answers_202_pending_without_contacting_the_server(owner_api, watched, counting):
    response = owner_api.post(f"/api/connections/{watched.pk}/ping/")
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "pending" and body["ok"] is None
    assert body["status_url"].endswith(f"/api/connections/{watched.pk}/ping/")
    assert owner_api.get(body["status_url"]).json()["status"] == "pending"
    assert counting.hits == []


@pytest.mark.django_db
def test_ping_result_appears_when_the_task_has_run(owner_client, owner_api, watched, counting, q_sync):
    response = owner_api.post(f"/api/connections/{watched.pk}/ping/")
    assert counting.hits  # the (in-process) worker contacted the server
    status = owner_api.get(response.json()["status_url"]).json()
    assert status["status"] == "done" and status["ok"] is False and status["message"]
    polled = owner_client.get(reverse("connection_ping_status", kwargs={"id": watched.pk})).content.decode()
    assert "Not working" in polled and "Testing…" not in polled and "hx-trigger" not in polled


@pytest.mark.django_db(transaction=True)
def test_a_real_cluster_runs_the_queued_ping(owner_api, sandbox, tenant):
    sandbox.control("POST", "sage300/companies", json={"company": "SAMLTD", "user": "ADMIN", "password": "ADMIN",
                                                       "customers": 3})
    sage = Connection.objects.create(tenant=tenant, system="sage300", name="Sage", options={"company": "SAMLTD",
                                     "user": "ADMIN"}, credentials={"password": "ADMIN"},
                                     base_url=f"{sandbox.url}/Sage300WebApi/v1.0")
    queued = owner_api.post(f"/api/connections/{sage.pk}/ping/")
    assert queued.status_code == 202 and queued.json()["status"] == "pending"
    cluster = start_cluster()
    try:
        done = wait_for(lambda: (lambda b: b if b["status"] == "done" else None)(
            owner_api.get(queued.json()["status_url"]).json()), timeout=90, message="ping result")
    except AssertionError:
        done = None
    finally:
        output = stop(cluster)
    assert done is not None, output
    assert done["ok"] is True and done["connection"]["status"] == "ok", done


@pytest.mark.django_db
def test_portal_and_api_replay_answer_queued_without_contacting_the_servers(owner_client, owner_api, tenant,
                                                                             counting):
    from syncs.services import flow_create

    source = ConnectionFactory(tenant=tenant, base_url=f"{counting.url}/Sage300WebApi/v1.0")
    target = ConnectionFactory(tenant=tenant, system="pipedrive", base_url=counting.url,
                               credentials={"api_token": "pd-token-1234"}, options={"auth": "api_token"})
    flow = flow_create(tenant=tenant, source=source, target=target, kind="customers_to_organizations")
    failed = make_record(make_run(flow), "C1", outcome="failed", error_kind="permanent", error_message="No name")

    page = owner_client.post(reverse("record_replay", kwargs={"id": failed.pk}), follow=True)
    replay = SyncRun.objects.get(trigger="replay")
    assert page.redirect_chain[-1][0] == reverse("run_detail", kwargs={"id": replay.pk})
    html = page.content.decode()
    assert "Queued" in html and reverse("run_progress", kwargs={"id": replay.pk}) in html  # polls until done
    assert replay.status == "queued" and replay.requested_by == failed.run.flow.tenant.memberships.get().user

    api = owner_api.post(f"/api/records/{failed.pk}/replay/")
    assert api.status_code == 202 and api.json()["status"] == "queued"
    assert owner_api.get(api.json()["status_url"]).json()["status"] == "queued"
    assert counting.hits == [] and SyncRecord.objects.filter(replay_of=failed).count() == 0
