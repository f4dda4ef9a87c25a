"""The dashboard's flow states and the Pipedrive budget gauge (numbers read back from the limiter and
counted at the sandbox)."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from connectors.pipedrive.client import PipedriveClient
from connectors.pipedrive.models import PipedriveBudget
from syncs.models import Flow, SyncRun
from syncs.services import flow_run
from tests.factories import ConnectionFactory, make_record, make_run
from tests.syncs.world import World


def _figure(page: str, name: str, scope: str = "") -> int:
    match = re.search(rf'{scope}.*?data-figure="{name}">(\d+)<', page, re.S)
    assert match, name
    return int(match.group(1))


@pytest.mark.django_db
def test_each_flow_state_reads_in_plain_words(owner_client, tenant, connection, pipedrive):
    now = timezone.now()

    def make(name, **fields):
        return Flow.objects.create(
            tenant=tenant,
            name=name,
            kind="customers_to_organizations",
            source=connection,
            target=pipedrive,
            **{"next_run_at": now, **fields},
        )

    running = make("Running flow", running_since=now, heartbeat_at=now)
    make_run(running, status="running", read=42, created=40)
    make("Paused flow", enabled=False, pause_reason="Paused by owner@acme.example.")
    waiting = make(
        "Waiting flow",
        paused_until=now + timedelta(hours=3),
        pause_reason="Pipedrive's daily API budget for this company is used up.",
    )
    failing = make("Failing flow", next_run_at=now + timedelta(minutes=30))
    run = make_run(failing, status="partial", read=10, created=8, failed=2, finished=now)
    make_record(
        run, "C-1", outcome="failed", error_message="Pipedrive rejected the data (400): name is required"
    )
    healthy = make("Healthy flow")
    make_run(healthy, status="succeeded", read=5, created=5, finished=now)

    page = owner_client.get(reverse("dashboard")).content.decode()
    assert "Run #" in page and "42 read, 40 created" in page  # running: live counts of the current run
    assert 'hx-get="/dashboard/flows/"' in page  # and the card keeps itself fresh while it runs
    assert "Paused by owner@acme.example." in page and "not scheduled (paused)" in page
    resumes = timezone.localtime(waiting.paused_until).strftime("%H:%M")
    assert "Pipedrive&#x27;s daily API budget for this company is used up. Resumes by itself at" in page
    assert resumes in page
    assert "2 records failed, e.g. Pipedrive rejected the data (400): name is required" in page
    assert "in 29\xa0minutes" in page or "in 30\xa0minutes" in page  # the failing flow's next run
    for state in ("running", "paused", "waiting", "failing", "active"):
        assert f"flow-card-{state}" in page, state

    partial = owner_client.get(reverse("dashboard_flows")).content.decode()
    assert "Running flow" in partial and "<html" not in partial


@pytest.mark.django_db
def test_empty_dashboard_points_to_creating_a_flow_once_both_sides_are_connected(
    owner_client, connection, pipedrive
):
    page = owner_client.get(reverse("dashboard")).content.decode()
    assert 'Next step: <a href="/flows/new/">create a flow</a>' in page
    assert "Nothing used since the last reset." in page  # the gauge of an untouched Pipedrive company


@pytest.mark.django_db
def test_another_tenants_flows_and_budget_never_show(owner_client, other_flow):
    page = owner_client.get(reverse("dashboard")).content.decode()
    assert "Globex" not in page and "No flows yet." in page
    assert "Pipedrive budget" not in page


@pytest.mark.django_db
def test_gauge_shows_what_the_limiter_stored(owner_client, tenant, pipedrive, settings):
    settings.PIPEDRIVE_BUDGET_RESERVE = 0.1
    settings.PIPEDRIVE_BURST_MARGIN_S = 600  # the grants below stay in the window however slow the box
    limiter = PipedriveClient.from_connection(pipedrive).limiter
    for _ in range(3):
        limiter.acquire(cost=10)  # 3 grants, 30 tokens: what a run's calls would take
    row = PipedriveBudget.objects.get(key=limiter.config.company_key)
    burst = PipedriveBudget.objects.get(key=limiter.config.burst_key)
    page = owner_client.get(reverse("dashboard")).content.decode()
    assert _figure(page, "limit") == row.daily_limit == 30_000
    assert _figure(page, "remaining") == row.daily_remaining == 30_000 - 30
    assert _figure(page, "used") == 30
    assert _figure(page, "reserve") == 3_000
    assert _figure(page, "burst-used") == len(burst.window) == 3  # within the 2-second window just now
    assert _figure(page, "burst-limit") == 20  # Lite, API token
    assert timezone.localtime(row.resets_at).strftime("%-d %b %H:%M") in page


@pytest.mark.django_db(transaction=True)
def test_gauge_and_flow_shares_after_a_real_sync(sandbox, tenant, owner, client):
    world = World.build(sandbox, tenant, customers=120, pipedrive_settings={"unlimited": False})
    seen_mid_run = []  # the run's tokens as stored while it runs: each committed page adds its share

    def progress(read, expected):
        seen_mid_run.append(
            SyncRun.objects.filter(flow=world.flow).values_list("tokens_spent", flat=True).get()
        )

    first = flow_run(flow=world.flow, progress=progress)
    assert first.status == "succeeded" and first.tokens_spent > 0
    assert any(0 < tokens < first.tokens_spent for tokens in seen_mid_run), seen_mid_run
    sandbox_tokens = world.stats()["tokens_used_today"]
    client.force_login(owner.user)
    page = client.get(reverse("dashboard")).content.decode()
    limiter = PipedriveClient.from_connection(world.pipedrive).limiter
    row = PipedriveBudget.objects.get(key=limiter.config.company_key)
    assert _figure(page, "remaining") == row.daily_remaining and _figure(page, "limit") == row.daily_limit
    # the flow's share is what its runs counted, and that is what the sandbox charged
    share = re.search(rf'data-flow-tokens="{world.flow.pk}">(\d+)<', page)
    assert share and int(share.group(1)) == first.tokens_spent == sandbox_tokens
    # its share is of the tokens the limiter counted (headers written back at most once a second may
    # leave that a few tokens off the sandbox's own count)
    used = row.daily_limit - row.daily_remaining
    assert f"{round(100 * first.tokens_spent / used, 1)} %" in page


@pytest.mark.django_db
def test_a_broken_pipedrive_connection_says_why_the_budget_is_unknown(owner_client, tenant):
    ConnectionFactory(
        tenant=tenant, system="pipedrive", name="Half set up", credentials={}, options={"auth": "oauth"}
    )
    page = owner_client.get(reverse("dashboard")).content.decode()
    assert "The budget cannot be read: Pipedrive is not authorised yet" in page
