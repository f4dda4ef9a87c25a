"""At a 390-pixel-wide viewport (a phone) the dashboard, the records, a run's page and the webhook events
render without horizontal overflow, and a failed record can be ticked and replayed from there."""

import pytest
from django.utils import timezone
from django_q.models import OrmQ

from syncs.models import SyncRun, WebhookEvent
from syncs.services import flow_create
from tests.browser.conftest import assert_rendered
from tests.factories import PASSWORD, ConnectionFactory, MembershipFactory, make_record, make_run

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTH = 390
LONG_ERROR = (
    "Pipedrive rejected the data (400): the field Customer-very-long-identifier-without-any-spaces-"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA is not a valid value"
)


@pytest.fixture
def world():
    membership = MembershipFactory(
        user__email="phone@acme.example", tenant__name="Acme Ltd", tenant__slug="acme"
    )
    tenant = membership.tenant
    sage = ConnectionFactory(tenant=tenant, name="Sage UK")
    pipedrive = ConnectionFactory(
        tenant=tenant,
        system="pipedrive",
        name="Acme Pipedrive",
        credentials={"api_token": "phone-PD-token-4321"},
        options={"auth": "api_token"},
    )
    flow = flow_create(
        tenant=tenant,
        source=sage,
        target=pipedrive,
        kind="customers_to_organizations",
        name="Customers to Pipedrive",
    )
    run = make_run(
        flow, status="partial", read=3, created=1, failed=2, finished=timezone.now(), tokens_spent=10
    )
    make_record(
        run, "C-1", payload={"name": "Acme Corp", "address": "1 Long Street, Springfield"}, target_id="7"
    )
    failed = make_record(
        run,
        "C-2",
        outcome="failed",
        error_message=LONG_ERROR,
        payload={"name": ""},
        response_status=400,
        response_excerpt='{"success": false, "error": "' + LONG_ERROR + '"}',
    )
    make_record(run, "C-3", outcome="failed", error_message="name is required")
    WebhookEvent.objects.create(
        connection=pipedrive,
        delivery_id="d-1",
        version="2",
        body={},
        object="deal",
        action="change",
        entity_id="42",
        auth_result="basic",
        status="failed",
        error="transient: " + LONG_ERROR,
        duplicates=2,
    )
    return {"flow": flow, "run": run, "failed": failed}


def overflow(page) -> int:
    """How far the page is wider than the viewport (0 when nothing sticks out)."""
    return page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")


def test_pages_fit_a_phone_and_replay_works_there(browser, live_server, world, tmp_path):
    context = browser.new_context(viewport={"width": WIDTH, "height": 844}, is_mobile=True)
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        page.goto(f"{live_server.url}/login/")
        page.get_by_label("Email").fill("phone@acme.example")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{live_server.url}/dashboard/")
        checks = [
            (
                "/dashboard/",
                "dashboard",
                ["Customers to Pipedrive", "Failing", "Pipedrive budget", "Used today"],
            ),
            ("/records/", "records", ["C-2", "Replay selected"]),
            (f"/runs/{world['run'].pk}/", "run", ["Records of this run", "C-1"]),
            (f"/records/{world['failed'].pk}/", "record", ["History of C-2"]),
            ("/runs/", "runs", [f"#{world['run'].pk}"]),
            ("/webhook-events/", "webhooks", ["deal.change", "Reprocess"]),
        ]
        for path, name, texts in checks:
            page.goto(f"{live_server.url}{path}")
            assert_rendered(page, tmp_path / f"{name}-390.png", texts=texts)
            assert overflow(page) <= 0, (path, overflow(page))

        page.goto(f"{live_server.url}/records/?outcome=failed")
        page.get_by_label("Select C-2 for replay").check()
        page.get_by_role("button", name="Replay selected").click()
        page.get_by_text("Replay queued as run").wait_for()
        replay = SyncRun.objects.get(trigger="replay")
        assert tuple(OrmQ.objects.get().task["args"]) == (replay.pk, [world["failed"].pk])
        assert overflow(page) <= 0
        assert "phone-PD-token" not in page.content()
    finally:
        context.close()
