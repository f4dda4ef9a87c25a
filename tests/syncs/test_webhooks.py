"""The Pipedrive webhook receiver over real HTTP: the sandbox delivers deal changes to Django's live
server (Basic auth, v1 and v2 bodies), each stored once and processed once by a django-q2 task (sync
mode); forged and bad deliveries are refused and logged; enabling a write-back flow registers the
webhook, disabling removes it, and the scheduled check re-registers one Pipedrive deleted."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from django.db import connections
from django_q.models import Schedule

from connectors.base import ConnectorError, FlowKind
from connectors.models import Connection
from connectors.pipedrive.client import PipedriveClient
from connectors.sap_b1 import flows as b1_flows
from syncs import writeback
from syncs.models import Flow, WebhookEvent, WebhookRejection
from syncs.services import flow_create, flow_pause, flow_resume
from syncs.webhook_registration import (
    WEBHOOK_ID_OPTION,
    webhook_credentials_ensure,
    webhook_signing_secret_set,
    webhooks_check,
)
from syncs.webhooks import PASSWORD_KEY, USER_KEY, receiver_forget

pytestmark = pytest.mark.django_db(transaction=True)  # the live server answers on its own thread and connection

WRITEBACK_KIND = FlowKind(
    name="test_deal_won_to_order", system="sap_b1", label="Deal won → order (test)", source_object="deals",
    key_field="id", target_entity="deals", external_id_field="", mappings=(), direction="to_erp")


@dataclass
class HookWorld:
    sandbox: Any
    pipedrive: Connection
    company_id: int
    flow: Flow | None
    url: str

    def pd(self, method: str, path: str, **kwargs) -> Any:
        return self.sandbox.control(method, f"pipedrive/companies/{self.company_id}/{path}", **kwargs)

    def subscriptions(self) -> list[dict]:
        return self.pd("GET", "webhooks")["webhooks"]

    def drain(self) -> None:
        assert self.sandbox.control("POST", "pipedrive/webhooks/drain", json={"timeout_s": 30})["pending"] == 0

    def deal_won(self, deal_id: int) -> None:
        self.pd("PATCH", f"ui/deals/{deal_id}", json={"status": "won"})
        self.drain()

    def client(self) -> PipedriveClient:
        return PipedriveClient.from_connection(Connection.objects.get(pk=self.pipedrive.pk))

    def auth(self) -> tuple[str, str]:
        creds = Connection.objects.get(pk=self.pipedrive.pk).credentials
        return creds[USER_KEY], creds[PASSWORD_KEY]


@pytest.fixture
def handled(monkeypatch):
    """A spy in place of the write-back: which events it was handed."""
    calls: list[int] = []

    def spy(*, event):
        calls.append(event.pk)

    monkeypatch.setattr(writeback, "deal_event_handle", spy)
    return calls


@pytest.fixture
def hooks(sandbox, tenant, live_server, settings, monkeypatch, q_sync) -> HookWorld:
    monkeypatch.setitem(b1_flows.FLOW_KINDS, WRITEBACK_KIND.name, WRITEBACK_KIND)
    # The sandbox keeps its delivery connections alive; the live server's request threads must not keep
    # a database session each past the request (it would block dropping the test database at the end).
    monkeypatch.setitem(connections.settings["default"], "CONN_MAX_AGE", 0)
    settings.PUBLIC_BASE_URL = live_server.url
    company = sandbox.control("POST", "pipedrive/companies", json={"name": "Hooks CRM", "plan": "ultimate",
                                                                  "unlimited": True})
    pipedrive = Connection.objects.create(
        tenant=tenant, system="pipedrive", name="Pipedrive", base_url=sandbox.url,
        options={"auth": "api_token", "plan": "ultimate", "seats": 1, "company_id": company["company_id"]},
        credentials={"api_token": company["api_token"]})
    b1 = Connection.objects.create(tenant=tenant, system="sap_b1", name="SAP B1", base_url=f"{sandbox.url}/b1s/v1",
                                   options={"company_db": "SBODEMOUS", "user": "manager"},
                                   credentials={"password": "b1-secret-pw"})
    world = HookWorld(sandbox, pipedrive, company["company_id"], None,
                      f"{live_server.url}/hooks/pipedrive/{pipedrive.uuid}/")
    world.flow = flow_create(tenant=tenant, source=b1, target=pipedrive, kind=WRITEBACK_KIND.name)
    return world


def a_deal(world: HookWorld) -> int:
    return world.pd("POST", "ui/deals", json={"title": "Big order", "value": 1200})["id"]


def test_enabling_a_writeback_flow_registers_the_webhook_and_a_won_deal_is_stored_and_processed_once(
        hooks, handled):
    [sub] = hooks.subscriptions()
    user, password = hooks.auth()
    assert (sub["subscription_url"], sub["event_object"], sub["event_action"]) == (hooks.url, "deal", "change")
    assert (sub["http_auth_user"], sub["http_auth_password"], sub["version"]) == (user, password, "2.0")
    assert Connection.objects.get(pk=hooks.pipedrive.pk).options[WEBHOOK_ID_OPTION] == sub["id"]
    deal_id = a_deal(hooks)

    hooks.deal_won(deal_id)

    [event] = WebhookEvent.objects.all()
    assert (event.version, event.object, event.action, event.entity_id) == ("2", "deal", "change", str(deal_id))
    assert event.body["data"]["status"] == "won" and event.body["previous"]["status"] == "open"
    assert event.auth_result == "basic" and event.status == WebhookEvent.Status.PROCESSED and event.processed_at
    assert "HTTP_AUTHORIZATION" not in event.headers and event.headers["HTTP_USER_AGENT"] == "Pipedrive-Webhook"
    assert handled == [event.pk]
    [delivery] = hooks.pd("GET", "webhooks/deliveries")["deliveries"]
    assert (delivery["status"], delivery["outcome"]) == (200, "delivered")

    # Pipedrive's retries of the same event (meta.id unchanged, meta.attempt 2..4) are acknowledged, not redone.
    for attempt in (2, 3, 4):
        body = {**event.body, "meta": {**event.body["meta"], "attempt": attempt}}
        again = requests.post(hooks.url, json=body, auth=(user, password), timeout=10)
        assert again.status_code == 200 and again.json() == {"status": "duplicate"}
    assert WebhookEvent.objects.count() == 1 and handled == [event.pk]


def test_v1_deliveries_are_normalised_and_their_retries_deduplicated(hooks, handled):
    user, password = hooks.auth()
    hooks.client().webhook_create(subscription_url=hooks.url, event_action="updated", event_object="deal",
                                  http_auth_user=user, http_auth_password=password, name="v1", version="1.0")
    deal_id = a_deal(hooks)

    hooks.deal_won(deal_id)

    events = {e.version: e for e in WebhookEvent.objects.all()}
    assert set(events) == {"1", "2"}  # the registered v2 subscription and this v1 one both delivered
    v1 = events["1"]
    assert (v1.object, v1.action, v1.entity_id) == ("deal", "change", str(deal_id))
    assert v1.body["current"]["status"] == "won" and v1.delivery_id.startswith("v1:")
    assert v1.status == WebhookEvent.Status.PROCESSED and sorted(handled) == sorted(e.pk for e in events.values())
    for retry in (1, 2, 3):  # v1 retries carry the same meta and a growing `retry`
        again = requests.post(hooks.url, json={**v1.body, "retry": retry}, auth=(user, password), timeout=10)
        assert again.json() == {"status": "duplicate"}
    assert WebhookEvent.objects.filter(version="1").count() == 1 and len(handled) == 2


def test_events_other_than_deals_are_ignored_and_a_failing_writeback_marks_the_event_failed(
        hooks, handled, monkeypatch):
    user, password = hooks.auth()
    person = {"meta": {"action": "change", "entity": "person", "entity_id": "7", "id": "p-1", "version": "2.0"},
              "data": {"id": 7}, "previous": {"name": "Old"}}
    assert requests.post(hooks.url, json=person, auth=(user, password), timeout=10).status_code == 200
    assert WebhookEvent.objects.get(delivery_id="p-1").status == WebhookEvent.Status.IGNORED and handled == []

    def refuse(*, event):
        raise ConnectorError("SAP Business One refused the order: customer C1 is inactive", permanent=True)

    monkeypatch.setattr(writeback, "deal_event_handle", refuse)
    deal = {**person, "meta": {**person["meta"], "entity": "deal", "id": "d-1"}}
    assert requests.post(hooks.url, json=deal, auth=(user, password), timeout=10).status_code == 200
    failed = WebhookEvent.objects.get(delivery_id="d-1")
    assert failed.status == WebhookEvent.Status.FAILED
    assert failed.error == "permanent: SAP Business One refused the order: customer C1 is inactive"


def _signed(secret: str, raw: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


def test_a_thousand_forged_or_bad_deliveries_are_refused_logged_and_never_processed(hooks, handled, caplog):
    secret = webhook_signing_secret_set(connection=hooks.pipedrive)
    user, password = hooks.auth()
    good = json.dumps({"meta": {"action": "change", "entity": "deal", "entity_id": "5", "id": "evt-good",
                                "version": "2.0"}, "data": {"id": 5, "status": "won"}, "previous": {"status": "open"}})
    good_raw = good.encode()
    replayed = good.replace("evt-good", "evt-replayed").encode()
    not_pipedrive = b'{"hello": "world"}'
    huge = b'{"meta": {}, "data": "' + b"x" * (10 * 1024 * 1024) + b'"}'
    ok_auth = (user, password)
    huge_at = set(range(6, 1000, 7)[:3])  # three 10 MB bodies; the other kind-6 slots are unknown users

    def bad(i: int) -> tuple[int, dict]:
        kind = i % 7
        if kind == 0:
            return 401, {"data": good_raw, "headers": {"X-ML-Signature": _signed(secret, good_raw)}}
        if kind == 1:
            return 401, {"data": good_raw, "auth": (user, password + "x"),
                         "headers": {"X-ML-Signature": _signed(secret, good_raw)}}
        if kind == 2:
            return 401, {"data": good_raw, "auth": ok_auth, "headers": {"X-ML-Signature": _signed("guess", good_raw)}}
        if kind == 3:  # a captured delivery replayed under a new id, with the signature it came with
            return 401, {"data": replayed, "auth": ok_auth, "headers": {"X-ML-Signature": _signed(secret, good_raw)}}
        if kind == 4:
            raw = good_raw[:-7]
            return 400, {"data": raw, "auth": ok_auth, "headers": {"X-ML-Signature": _signed(secret, raw)}}
        if kind == 5:
            return 400, {"data": not_pipedrive, "auth": ok_auth,
                         "headers": {"X-ML-Signature": _signed(secret, not_pipedrive)}}
        if i in huge_at:  # a 10 MB body, signed and authenticated
            return 413, {"data": huge, "auth": ok_auth, "headers": {"X-ML-Signature": _signed(secret, huge)}}
        return 401, {"data": good_raw, "auth": ("intruder", "letmein")}

    caplog.set_level(logging.WARNING, logger="syncs.webhooks")
    expected: dict[int, int] = {}
    for i in range(1000):
        status, kwargs = bad(i)
        kwargs.setdefault("headers", {})["Content-Type"] = "application/json"
        # A connection per delivery (keep-alive with the test server meets delayed ACKs: 40 ms a request)
        answer = requests.post(hooks.url, timeout=30, **kwargs)
        assert answer.status_code == status, (i, answer.status_code, answer.text)
        expected[status] = expected.get(status, 0) + 1

    assert WebhookEvent.objects.count() == 0 and handled == []
    rejections = WebhookRejection.objects.filter(connection=hooks.pipedrive)
    assert rejections.count() == 1000
    assert {s: rejections.filter(status=s).count() for s in expected} == expected
    assert rejections.filter(status=413, size__gt=10 * 1024 * 1024).count() == expected[413] == 3
    assert rejections.filter(reason="bad signature").count() == sum(1 for i in range(1000) if i % 7 in (2, 3))
    refused = [r for r in caplog.records if "refused with" in r.getMessage()]
    assert len(refused) == 1000
    assert not any(password in r.getMessage() or secret in r.getMessage() for r in caplog.records)

    # The same delivery, properly signed, is accepted: the refusals above were about what was wrong.
    accepted = requests.post(hooks.url, data=good_raw, auth=ok_auth, timeout=10,
                             headers={"X-ML-Signature": _signed(secret, good_raw), "Content-Type": "application/json"})
    assert accepted.status_code == 200
    assert WebhookEvent.objects.get().auth_result == "basic+hmac" and len(handled) == 1


def test_only_post_and_only_known_connections(hooks, live_server):
    assert requests.get(hooks.url, timeout=10).status_code == 405
    unknown = f"{live_server.url}/hooks/pipedrive/00000000-0000-4000-8000-000000000000/"
    assert requests.post(unknown, json={}, auth=hooks.auth(), timeout=10).status_code == 404
    assert WebhookRejection.objects.count() == 0


def test_disabling_removes_the_webhook_and_the_check_reregisters_one_pipedrive_deleted(hooks, handled):
    first_id = hooks.subscriptions()[0]["id"]

    flow_pause(flow=hooks.flow)
    assert hooks.subscriptions() == []
    assert WEBHOOK_ID_OPTION not in Connection.objects.get(pk=hooks.pipedrive.pk).options

    flow_resume(flow=hooks.flow)
    [sub] = hooks.subscriptions()
    assert sub["id"] != first_id

    # Deliveries start failing (our stored password no longer matches the subscription's), and three days
    # on by Pipedrive's clock the next failure makes Pipedrive delete the webhook.
    connection = Connection.objects.get(pk=hooks.pipedrive.pk)
    connection.credentials = {**connection.credentials, PASSWORD_KEY: "rotated-" + "p" * 40}
    connection.save()
    receiver_forget(connection=connection)
    hooks.pd("POST", "settings", json={"webhook_time_factor": 0.001})
    hooks.pd("POST", "clock", json={"advance_s": 3 * 86_400 + 1})
    hooks.deal_won(a_deal(hooks))
    outcomes_seen = [d["outcome"] for d in hooks.pd("GET", "webhooks/deliveries")["deliveries"]]
    assert outcomes_seen[-1] == "deleted" and hooks.subscriptions() == []
    assert WebhookEvent.objects.count() == 0 and WebhookRejection.objects.filter(status=401).exists()

    outcomes = webhooks_check()
    assert outcomes["re-registered"] == 1
    [again] = hooks.subscriptions()
    assert Connection.objects.get(pk=hooks.pipedrive.pk).options[WEBHOOK_ID_OPTION] == again["id"]
    assert again["http_auth_password"] == hooks.auth()[1]  # the credentials we hold now

    assert webhooks_check()["ok"] == 1 and len(hooks.subscriptions()) == 1  # nothing to do the next time
    hooks.deal_won(a_deal(hooks))
    assert WebhookEvent.objects.filter(status=WebhookEvent.Status.PROCESSED).count() == 1 and len(handled) == 1


def test_webhook_credentials_are_generated_once_and_never_shown(hooks):
    connection = Connection.objects.get(pk=hooks.pipedrive.pk)
    user, password = hooks.auth()
    assert webhook_credentials_ensure(connection=connection) == (user, password) and len(password) >= 40
    assert set(connection.credentials_masked) == {"api_token"}


def test_migrate_installs_the_webhook_check_every_ten_minutes(db):
    from syncs.scheduler import WEBHOOK_CHECK_NAME, schedule_ensure

    schedule_ensure()
    schedule_ensure()
    [check] = Schedule.objects.filter(name=WEBHOOK_CHECK_NAME)
    assert (check.func, check.schedule_type, check.minutes) == ("syncs.tasks.webhooks_check_task", "I", 10)


def test_basic_auth_header_is_required_even_with_a_valid_signature(hooks):
    raw = b'{"meta": {"action": "change", "entity": "deal", "entity_id": "1", "id": "x"}}'
    webhook_signing_secret_set(connection=hooks.pipedrive, secret="s3cret-s3cret-s3cret")
    token = base64.b64encode(b"mlc-x:").decode()
    answer = requests.post(hooks.url, data=raw, timeout=10, headers={
        "Authorization": f"Basic {token}", "X-ML-Signature": _signed("s3cret-s3cret-s3cret", raw)})
    assert answer.status_code == 401 and WebhookEvent.objects.count() == 0


def test_support_sees_only_their_tenants_webhook_events_and_never_an_authorization_header(
        hooks, handled, client, other_tenant):
    from django.contrib.auth.models import Permission
    from django.urls import reverse

    from tests.factories import MembershipFactory, UserFactory

    user, password = hooks.auth()
    body = {"meta": {"action": "change", "entity": "deal", "entity_id": "9", "id": "evt-admin", "version": "2.0"},
            "data": {"id": 9, "title": "Acme secret deal"}, "previous": {}}
    assert requests.post(hooks.url, json=body, auth=(user, password), timeout=10).status_code == 200
    event = WebhookEvent.objects.get()
    staff = UserFactory(is_staff=True, email="support@globex.example")
    staff.user_permissions.add(*Permission.objects.filter(codename="view_webhookevent"))
    MembershipFactory(user=staff, tenant=other_tenant, role="viewer")
    client.force_login(staff)

    assert "0 webhook events" in client.get(reverse("admin:syncs_webhookevent_changelist")).content.decode()
    assert client.get(reverse("admin:syncs_webhookevent_change", args=[event.pk])).status_code == 404
    MembershipFactory(user=staff, tenant=hooks.pipedrive.tenant, role="viewer")
    page = client.get(reverse("admin:syncs_webhookevent_change", args=[event.pk])).content.decode()
    assert "Acme secret deal" in page and password not in page and "HTTP_AUTHORIZATION" not in page


def test_a_new_public_address_moves_the_webhook(hooks, settings, live_server):
    [old] = hooks.subscriptions()
    host = "localhost" if "127.0.0.1" in live_server.url else "127.0.0.1"
    settings.PUBLIC_BASE_URL = live_server.url.replace("127.0.0.1", host).replace("localhost", host)

    outcomes = webhooks_check()
    assert outcomes.get("registered") == 1, outcomes
    [new] = hooks.subscriptions()
    assert new["subscription_url"] == f"{settings.PUBLIC_BASE_URL}/hooks/pipedrive/{hooks.pipedrive.uuid}/"
    assert new["id"] != old["id"]
    assert Connection.objects.get(pk=hooks.pipedrive.pk).options[WEBHOOK_ID_OPTION] == new["id"]


def test_editing_the_connection_keeps_the_webhook_id_and_credentials_which_tenants_cannot_set(pipedrive):
    from django.core.exceptions import ValidationError

    from connectors.services import connection_update

    user, password = webhook_credentials_ensure(connection=pipedrive)
    Connection.objects.filter(pk=pipedrive.pk).update(options={**pipedrive.options, WEBHOOK_ID_OPTION: 41})
    pipedrive.refresh_from_db()

    edited = connection_update(connection=pipedrive, name="Renamed", options={"plan": "growth", "seats": 2},
                               credentials={PASSWORD_KEY: "chosen-by-the-tenant", USER_KEY: "me"})
    edited.refresh_from_db()
    assert edited.options[WEBHOOK_ID_OPTION] == 41
    assert (edited.credentials[USER_KEY], edited.credentials[PASSWORD_KEY]) == (user, password)
    with pytest.raises(ValidationError):
        connection_update(connection=edited, options={WEBHOOK_ID_OPTION: 99})
