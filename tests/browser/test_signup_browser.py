"""A real Chromium against the live server: sign up, land on the dashboard, add a connection."""

import re

import pytest

from tests.browser.conftest import assert_rendered
from tests.factories import PASSWORD, MembershipFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_signup_activates_by_email_and_lands_in_the_wizard_then_the_dashboard(page, live_server, tmp_path):
    from django.core import mail

    page.goto(f"{live_server.url}/signup/")
    page.get_by_label("Company name").fill("Umbrella Trading Ltd")
    page.get_by_label("Work email").fill("Alice@Umbrella.example")
    page.get_by_label(re.compile(r"^Password(?! again)")).fill("Quiet-Harbour-Lantern-7")
    page.get_by_label("Password again").fill("Quiet-Harbour-Lantern-7")
    page.get_by_role("button", name="Create account").click()

    page.get_by_role("heading", name="Check your email").wait_for()
    [message] = mail.outbox
    link = next(line for line in message.body.splitlines() if "/signup/activate/" in line)
    page.goto(link)
    page.get_by_role("button", name="Activate my account").click()
    page.wait_for_url(f"{live_server.url}/onboarding/")
    assert page.get_by_role("heading", name="Which ERP do you use?").is_visible()
    assert page.get_by_text("Umbrella Trading Ltd is ready").is_visible()
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Dashboard").click()
    page.wait_for_url(f"{live_server.url}/dashboard/")
    assert page.get_by_role("heading", name="Umbrella Trading Ltd").is_visible()
    assert page.get_by_text("Next step").is_visible()
    assert page.get_by_role("navigation", name="Main").get_by_role("link", name="Connections").is_visible()

    assert_rendered(page, tmp_path / "dashboard.png", texts=["Umbrella Trading Ltd", "Next step"])


def test_create_connection_shows_only_the_masked_secret(page, live_server, tmp_path, q_sync):
    MembershipFactory(user__email="bob@acme.example", tenant__name="Acme Ltd", tenant__slug="acme")
    page.goto(f"{live_server.url}/login/")
    page.get_by_label("Email").fill("bob@acme.example")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server.url}/dashboard/")

    page.get_by_role("link", name="Add connection").first.click()
    page.get_by_role("link", name="Sage 300").click()
    page.get_by_label("Name").fill("Sage UK")
    page.get_by_label("Base URL").fill("http://127.0.0.1:9/Sage300WebApi/v1.0")  # closed: fails fast
    page.get_by_label("Company (organisation ID)").fill("SAMLTD")
    page.get_by_label("User ID").fill("ADMIN")
    page.get_by_label("Password").fill("browser-SECRET-value-6543")
    page.get_by_role("button", name="Save").click()

    page.get_by_role("heading", name="Sage UK").wait_for()
    assert page.get_by_text("••••6543").is_visible()
    assert "browser-SECRET-value" not in page.content()

    # The test button answers in place (htmx) with a plain message (the worker runs in-process here).
    page.get_by_role("button", name="Test connection").click()
    page.locator("#ping-result").get_by_text("Not working").wait_for()
    assert page.locator("#connection-status").get_by_text("Failing (temporary)").is_visible()
    assert "browser-SECRET-value" not in page.content()

    assert_rendered(page, tmp_path / "connection.png", texts=["Sage UK", "••••6543", "Not working"])
