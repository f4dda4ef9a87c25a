"""Alerts: one message per change of state, driven by real runs against the sandbox, emailed to owners
and admins who did not opt out and posted as Slack-compatible JSON to a loopback webhook."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core import mail

from alerts.models import Alert, AlertState
from alerts.services import OK, AlertMessage, alert_settings_update, alert_state_change
from connectors.services import connection_ping
from syncs.services import flow_run
from tenants.models import Membership
from tests.factories import MembershipFactory
from tests.syncs.world import World

pytestmark = pytest.mark.django_db(transaction=True)


class SlackStandIn:
    """A loopback HTTP server that records the JSON bodies POSTed to it (an incoming-webhook stand-in)."""

    def __init__(self, status: int = 200):
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                received.append({"content_type": self.headers.get("Content-Type"), "body": json.loads(body)})
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/services/T000/B000/XXXXsecret"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def slack():
    server = SlackStandIn()
    yield server
    server.close()


@pytest.fixture
def team(tenant):
    """An owner and an admin who get emails, an admin who opted out, and a viewer (never emailed)."""
    owner = MembershipFactory(tenant=tenant, role=Membership.Role.OWNER, user__email="owner@acme.example")
    admin = MembershipFactory(tenant=tenant, role=Membership.Role.ADMIN, user__email="admin@acme.example")
    MembershipFactory(
        tenant=tenant, role=Membership.Role.ADMIN, user__email="quiet@acme.example", alert_emails=False
    )
    MembershipFactory(tenant=tenant, role=Membership.Role.VIEWER, user__email="viewer@acme.example")
    return owner, admin


def _kinds() -> list[str]:
    return list(Alert.objects.order_by("id").values_list("kind", flat=True))


def test_failing_and_recovering_flow_alert_once_each_by_email_and_slack(sandbox, tenant, team, slack, q_sync):
    world = World.build(sandbox, tenant, customers=5)
    alert_settings_update(tenant=tenant, webhook_url=slack.url)
    assert flow_run(flow=world.flow).status == "succeeded"
    assert _kinds() == [] and mail.outbox == []  # healthy from the start: nothing to say

    world.sage.credentials = {"password": "wrong-password"}
    world.sage.save()
    for _ in range(3):  # three failed runs, one change of state
        assert flow_run(flow=world.flow).status == "failed"
    assert _kinds() == ["flow_failing", "credentials_rejected"]
    assert len(mail.outbox) == 2
    assert all(sorted(m.to) == ["admin@acme.example", "owner@acme.example"] for m in mail.outbox)
    rejected = Alert.objects.get(kind="credentials_rejected")
    assert "rejected the credentials" in rejected.text and "wrong-password" not in rejected.text.lower()
    assert rejected.emails_sent == 2 and rejected.webhook_result == "delivered (200)"
    # Slack-compatible: a JSON object with a "text", one post per alert
    assert [r["content_type"] for r in slack.received] == ["application/json"] * 2
    assert "is failing" in slack.received[0]["body"]["text"]
    assert "rejected the credentials" in slack.received[1]["body"]["text"]

    world.sage.credentials = {"password": "ADMIN"}
    world.sage.save()
    assert connection_ping(connection=world.sage).ok  # the test tells first: credentials accepted again
    assert flow_run(flow=world.flow).status == "succeeded"
    assert flow_run(flow=world.flow).status == "succeeded"
    assert _kinds() == ["flow_failing", "credentials_rejected", "credentials_accepted", "flow_recovered"]
    assert len(mail.outbox) == 4 and len(slack.received) == 4
    assert AlertState.objects.get(subject=f"flow:{world.flow.pk}").state == OK


def test_budget_reserve_alert_says_what_to_do_and_when_it_resets(sandbox, tenant, team, q_sync):
    world = World.build(
        sandbox,
        tenant,
        customers=300,
        pipedrive_settings={"unlimited": False, "plan": "ultimate", "daily_token_limit": 1200},
    )
    first = flow_run(flow=world.flow)
    assert first.status == "paused", first.error
    again = flow_run(flow=world.flow)  # still under the reserve: paused again, no second message
    assert again.status == "paused"
    [alert] = Alert.objects.filter(kind="budget_reserve")
    world.flow.refresh_from_db()
    reset = world.flow.paused_until.astimezone(UTC)
    assert reset > datetime.now(UTC) - timedelta(minutes=1)
    assert f"{reset:%Y-%m-%d %H:%M} UTC" in alert.text
    assert "lower the frequency" in alert.text and "upgrade the Pipedrive plan" in alert.text
    assert [m.subject for m in mail.outbox] == [f"[ml-connector] {alert.title}"]


def test_same_state_twice_sends_nothing_and_a_first_ok_is_silent(tenant, team, q_sync):
    message = AlertMessage("flow_failing", "problem", "Flow X is failing", "It failed.")
    assert alert_state_change(tenant=tenant, subject="flow:1", state=OK, message=message) is None
    assert alert_state_change(tenant=tenant, subject="flow:1", state="failing", message=message) is not None
    assert alert_state_change(tenant=tenant, subject="flow:1", state="failing", message=message) is None
    assert Alert.objects.count() == 1 and len(mail.outbox) == 1


def test_opt_out_from_the_team_page_stops_the_emails(client, tenant, team, q_sync):
    owner, admin = team
    client.force_login(admin.user)
    assert client.post("/team/alert-emails/", {"enabled": "0"}).status_code == 302
    admin.refresh_from_db()
    assert admin.alert_emails is False
    alert_state_change(
        tenant=tenant,
        subject="connection:9",
        state="rejected",
        message=AlertMessage("credentials_rejected", "problem", "Sage rejected the credentials", "x"),
    )
    assert [m.to for m in mail.outbox] == [["owner@acme.example"]]


def test_webhook_url_is_guarded_masked_and_a_failed_post_is_recorded(tenant, team, settings, q_sync):
    settings.ALLOW_PRIVATE_NETWORKS = False
    with pytest.raises(Exception) as refused:
        alert_settings_update(tenant=tenant, webhook_url="http://169.254.169.254/latest")
    assert "not allowed" in str(refused.value)
    settings.ALLOW_PRIVATE_NETWORKS = True
    down = SlackStandIn(status=500)
    alert_settings_update(tenant=tenant, webhook_url=down.url)
    try:
        alert = alert_state_change(
            tenant=tenant,
            subject="flow:2",
            state="failing",
            message=AlertMessage("flow_failing", "problem", "Flow Y is failing", "x"),
        )
    finally:
        down.close()
    alert.refresh_from_db()
    assert alert.webhook_result.startswith("not delivered") and "secret" not in alert.webhook_result
    assert alert.emails_sent == 2  # the email still went


def test_portal_shows_alerts_and_the_banner_and_the_api_lists_them(client, tenant, team, q_sync):
    owner, _ = team
    alert_state_change(
        tenant=tenant,
        subject="flow:3",
        state="failing",
        message=AlertMessage(
            "flow_failing", "problem", "Flow Z is failing", "It failed: Sage down.", "/flows/3/"
        ),
    )
    client.force_login(owner.user)
    page = client.get("/dashboard/").content.decode()
    assert "alert-banner" in page and "Flow Z is failing" in page
    listing = client.get("/alerts/").content.decode()
    assert "It failed: Sage down." in listing and "2 emails" in listing
    api = client.get("/api/alerts/?kind=flow_failing").json()
    assert api["count"] == 1 and api["results"][0]["title"] == "Flow Z is failing"
    alert_state_change(tenant=tenant, subject="flow:3", state=OK, message=None)
    assert "alert-banner" not in client.get("/dashboard/").content.decode()  # recovered: the banner goes
