"""A real Chromium against the live server: a flow's page, Run now, mapping rows, a run's live progress."""


import pytest
from django_q.models import OrmQ

from syncs.models import SyncRecord, SyncRun
from syncs.services import flow_create
from tests.browser.conftest import assert_rendered
from tests.factories import PASSWORD, ConnectionFactory, MembershipFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def flow():
    membership = MembershipFactory(user__email="bob@acme.example", tenant__name="Acme Ltd", tenant__slug="acme")
    tenant = membership.tenant
    sage = ConnectionFactory(tenant=tenant, name="Sage UK")
    pipedrive = ConnectionFactory(tenant=tenant, system="pipedrive", name="Acme Pipedrive",
                                  credentials={"api_token": "browser-PD-token-4321"})
    return flow_create(tenant=tenant, source=sage, target=pipedrive, kind="customers_to_organizations",
                       name="Customers to Pipedrive")


def sign_in(page, live_server):
    page.goto(f"{live_server.url}/login/")
    page.get_by_label("Email").fill("bob@acme.example")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server.url}/dashboard/")


def test_run_now_from_the_flow_page_says_it_is_queued(page, live_server, flow, tmp_path):
    sign_in(page, live_server)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Flows").click()
    page.get_by_role("link", name="Customers to Pipedrive").click()
    page.get_by_role("heading", name="Customers to Pipedrive").wait_for()
    assert page.locator("#mapping-rows tr").count() == 12  # 11 default mappings and a blank row

    # "Add a row" fetches a numbered blank row in place (htmx) and bumps the formset's count.
    page.get_by_role("button", name="Add a row").click()
    page.locator('input[name="form-12-source"]').wait_for()
    assert page.locator("#id_form-TOTAL_FORMS").input_value() == "13"
    page.locator('input[name="form-12-source"]').fill("GroupCode")
    page.locator('input[name="form-12-target"]').fill("custom:Group")
    page.locator('textarea[name="form-12-lookup"]').fill('{"RTL": "Retail"')
    page.get_by_role("button", name="Save mappings").click()
    page.get_by_text("The lookup table is not valid JSON").wait_for()
    page.locator('textarea[name="form-12-lookup"]').fill('{"RTL": "Retail"}')
    page.get_by_role("button", name="Save mappings").click()
    page.get_by_text("Saved the field mappings.").wait_for()
    assert flow.mappings.get(target="custom:Group").lookup == {"RTL": "Retail"}

    page.get_by_role("button", name="Run now").click()
    page.get_by_text("Run queued").wait_for()
    assert page.get_by_role("status").get_by_text("starts as soon as a worker is free").is_visible()
    task = OrmQ.objects.get().task
    assert task["func"] == "syncs.tasks.flow_run_task" and tuple(task["args"]) == (flow.pk, "manual")
    assert "browser-PD-token" not in page.content()

    assert_rendered(page, tmp_path / "flow.png", texts=["Customers to Pipedrive", "Run queued"])


def test_run_page_shows_progress_live_then_the_counts(page, live_server, flow, tmp_path):
    run = SyncRun.objects.create(tenant=flow.tenant, flow=flow, trigger="manual")
    sign_in(page, live_server)
    page.goto(f"{live_server.url}/runs/{run.pk}/")
    page.get_by_text("0 records written so far").wait_for()

    for key in ("1100", "1200", "1300"):
        SyncRecord.objects.create(tenant=flow.tenant, run=run, flow=flow, source_object="customers",
                                  external_id=key, target_object="organizations", action="create", outcome="ok")
    page.get_by_text("3 records written so far").wait_for(timeout=6_000)  # polled every 2 s

    SyncRun.objects.filter(pk=run.pk).update(status="succeeded", read=3, created=3, finished=run.started)
    page.get_by_text("Finished: nothing failed.").wait_for(timeout=6_000)
    assert page.locator("#run-status[hx-trigger]").count() == 0  # polling stopped

    assert_rendered(page, tmp_path / "run.png", texts=["Finished: nothing failed."])
