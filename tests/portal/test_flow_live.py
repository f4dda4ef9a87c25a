"""The flow page's live part: progress bar of the running run, failing state, and the per-run chart."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from syncs.charts import runs_chart
from syncs.models import Flow, SyncRun

pytestmark = pytest.mark.django_db


def _run(flow, minutes_ago: int, **fields) -> SyncRun:
    run = SyncRun.objects.create(tenant=flow.tenant, flow=flow, trigger="schedule", **fields)
    SyncRun.objects.filter(pk=run.pk).update(started=timezone.now() - timedelta(minutes=minutes_ago))
    run.refresh_from_db()
    return run


def test_chart_stacks_each_runs_counts_oldest_first(flow):
    first = _run(flow, 30, status="succeeded", created=40, failed=2, finished=timezone.now())
    second = _run(flow, 10, status="succeeded", updated=5, unchanged=37, finished=timezone.now())
    chart = runs_chart(runs=[second, first])
    assert [b.run_id for b in chart["bars"]] == [first.pk, second.pk]
    assert chart["top"] == 50  # 42 tallest: the axis rounds up to 1/2/5 × 10^n
    created = chart["bars"][0].segments[0]
    assert (created.key, created.value) == ("created", 40)
    plot = chart["axis_y"] - chart["top_y"]
    assert created.height == pytest.approx(plot * 40 / 50, abs=0.01)
    # segments stack: each starts where the one below ended
    seg = chart["bars"][1].segments
    assert seg[2].y + seg[2].height == pytest.approx(seg[1].y, abs=0.01)
    assert f"Run #{second.pk}" in chart["bars"][1].title and "37 unchanged" in chart["bars"][1].title


def test_flow_page_shows_the_chart_with_every_run(owner_client, flow):
    _run(flow, 30, status="succeeded", created=40, finished=timezone.now())
    _run(flow, 10, status="partial", updated=3, failed=1, finished=timezone.now())
    html = owner_client.get(f"/flows/{flow.pk}/").content.decode()
    assert '<svg viewBox="0 0 600 180"' in html
    assert re.findall(r'class="seg-(\w+)"[^>]*data-value="(\d+)"', html) == [
        ("created", "40"),
        ("updated", "3"),
        ("failed", "1"),
    ]
    assert "Records per run" in html


def test_running_flow_shows_a_progress_bar_and_polls_until_it_ends(owner_client, flow):
    now = timezone.now()
    Flow.objects.filter(pk=flow.pk).update(running_since=now, heartbeat_at=now)
    run = _run(flow, 0, status="running", read=5, expected=20)
    html = owner_client.get(f"/flows/{flow.pk}/live/").content.decode()
    assert 'max="20" value="5"' in html and "5 of 20 records (25 %)" in html
    assert 'hx-trigger="every 2s"' in html

    SyncRun.objects.filter(pk=run.pk).update(status="succeeded", read=20, created=20, finished=now)
    Flow.objects.filter(pk=flow.pk).update(
        running_since=None, heartbeat_at=None, next_run_at=now + timedelta(hours=1)
    )
    html = owner_client.get(f"/flows/{flow.pk}/live/").content.decode()
    assert "<progress" not in html and "hx-trigger" not in html  # polling stopped
    assert "20 created" in html and 'data-value="20"' in html


def test_failing_flow_says_why(owner_client, flow):
    Flow.objects.filter(pk=flow.pk).update(next_run_at=timezone.now() + timedelta(hours=1))
    _run(flow, 5, status="failed", error="Sage 300 rejected the password.", finished=timezone.now())
    html = owner_client.get(f"/flows/{flow.pk}/").content.decode()
    assert "Failing: Sage 300 rejected the password." in html


def test_other_tenants_flows_are_not_found(owner_client, other_flow):
    assert owner_client.get(f"/flows/{other_flow.pk}/live/").status_code == 404


def test_run_now_keeps_the_page_watching_until_its_run_starts(owner_client, flow):
    Flow.objects.filter(pk=flow.pk).update(next_run_at=timezone.now() + timedelta(hours=1))
    resp = owner_client.post(f"/flows/{flow.pk}/run/")
    assert resp.status_code == 302 and "?since=" in resp["Location"]
    html = owner_client.get(resp["Location"]).content.decode()
    assert "Starting: the first run begins" in html and 'hx-trigger="every 2s"' in html
    _run(flow, 0, status="succeeded", created=1, finished=timezone.now())  # the worker ran it
    since = resp["Location"].split("?since=")[1]
    html = owner_client.get(f"/flows/{flow.pk}/live/?since={since}").content.decode()
    assert "hx-trigger" not in html and "1 created" in html
    # a stale or forged moment is ignored
    assert "hx-trigger" not in owner_client.get(f"/flows/{flow.pk}/live/?since=nonsense").content.decode()
