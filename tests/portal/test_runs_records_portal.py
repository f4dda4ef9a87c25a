"""Runs: filters and search; a run's records with payload, response and error. Records: search by
external id, one source record's whole history, replay of a selection and of all a flow's failures."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from django_q.models import OrmQ

from syncs.models import SyncRecord, SyncRun
from tests.factories import make_record, make_run

pytestmark = pytest.mark.django_db


def _queued() -> list[tuple]:
    return [tuple(q.task["args"]) for q in OrmQ.objects.order_by("id")]


def test_runs_filter_by_status_trigger_dates_and_search(owner_client, flow):
    old = make_run(flow, status="succeeded", trigger="schedule")
    SyncRun.objects.filter(pk=old.pk).update(started=timezone.now() - timedelta(days=10))
    failed = make_run(flow, status="failed", trigger="manual", error="Sage 300 refused the password")
    replay = make_run(flow, status="partial", trigger="replay")
    make_record(replay, "CUST-777", outcome="failed")
    url = reverse("run_list")

    def shown(**params) -> set[int]:
        page = owner_client.get(url, params)
        return {run.pk for run in page.context["page"].object_list}

    assert shown() == {old.pk, failed.pk, replay.pk}
    assert shown(status="failed") == {failed.pk}
    assert shown(trigger="replay") == {replay.pk}
    today = timezone.now().date()
    assert shown(started_from=today.isoformat()) == {failed.pk, replay.pk}
    assert shown(started_to=(today - timedelta(days=5)).isoformat()) == {old.pk}
    assert shown(q="password") == {failed.pk}
    assert shown(q="CUST-777") == {replay.pk}  # an external id the run touched
    assert shown(q=f"#{old.pk}") == {old.pk}


def test_run_filter_errors_are_shown_inline_and_ignored(owner_client, flow):
    run = make_run(flow, status="succeeded")
    page = owner_client.get(
        reverse("run_list"), {"started_from": "2026-13-45", "started_to": "2026-01-01", "flow": "999999"}
    )
    body = page.content.decode()
    assert page.status_code == 200 and "filter ignored" in body and "Enter a valid date." in body
    assert "Select a valid choice" in body
    # the valid filter (an end date long past) still applies
    assert run.pk not in {r.pk for r in page.context["page"].object_list}
    assert run.pk in {r.pk for r in owner_client.get(reverse("run_list"), {"flow": "999999"}).context["page"]}


def test_run_page_lists_its_records_with_payload_response_and_error(owner_client, flow):
    run = make_run(flow, status="partial", failed=1)
    make_record(
        run,
        "C-OK",
        payload={"name": "Acme Corp"},
        response_status=201,
        target_id="55",
        response_excerpt='{"success": true, "data": {"id": 55}}',
    )
    make_record(
        run,
        "C-BAD",
        outcome="failed",
        payload={"name": ""},
        response_status=400,
        response_excerpt='{"error": "name is required"}',
        error_message="Pipedrive rejected the data (400)",
    )
    make_record(make_run(flow), "C-ELSEWHERE")
    body = owner_client.get(reverse("run_detail", kwargs={"id": run.pk})).content.decode()
    assert "C-OK" in body and "C-BAD" in body and "C-ELSEWHERE" not in body
    assert "&quot;name&quot;: &quot;Acme Corp&quot;" in body  # the payload sent, pretty-printed
    assert "{&quot;error&quot;: &quot;name is required&quot;}" in body and "HTTP 400" in body
    assert "Pipedrive rejected the data (400)" in body


def test_records_search_by_external_id(owner_client, flow, other_flow):
    run = make_run(flow)
    make_record(run, "1100")
    make_record(run, "2200")
    make_record(make_run(other_flow), "1100-GLOBEX")
    page = owner_client.get(reverse("record_list"), {"external_id": "1100"})
    assert [r.external_id for r in page.context["page"].object_list] == ["1100"]


def test_record_page_shows_the_whole_history_of_the_source_record(owner_client, flow):
    first = make_record(
        make_run(flow), "C-9", outcome="failed", error_message="timeout", error_kind="transient"
    )
    retry = make_record(make_run(flow), "C-9", outcome="failed", attempt=2, error_message="name is required")
    replay = make_record(make_run(flow, trigger="replay"), "C-9", outcome="ok", attempt=3, replay_of=retry)
    make_record(make_run(flow), "C-10")
    page = owner_client.get(reverse("record_detail", kwargs={"id": retry.pk}))
    history = [r.pk for r in page.context["history"]]
    assert history == [first.pk, retry.pk, replay.pk]  # the scheduled retry too, not only the replay chain
    body = page.content.decode()
    assert f"replay of #{retry.pk}" in body and "(this one)" in body and "C-10" not in body


def test_replay_selection_queues_exactly_the_ticked_failed_records(owner_client, flow, other_flow):
    run = make_run(flow, status="partial")
    a = make_record(run, "A", outcome="failed")
    make_record(run, "B", outcome="failed")  # failed, not ticked
    c = make_record(run, "C", outcome="failed")
    ok = make_record(run, "D", outcome="ok")
    foreign = make_record(make_run(other_flow), "G", outcome="failed")
    response = owner_client.post(
        reverse("records_replay_selection"), {"record": [a.pk, c.pk, ok.pk, foreign.pk]}, follow=True
    )
    replays = list(SyncRun.objects.filter(trigger="replay"))
    assert len(replays) == 1 and replays[0].flow_id == flow.pk and replays[0].status == "queued"
    assert _queued() == [(replays[0].pk, [a.pk, c.pk])]
    body = response.content.decode()
    assert f"Replay queued as run #{replays[0].pk}" in body and "Queued (waiting for a worker)" in body


def test_replay_selection_of_nothing_says_so_inline(owner_client, flow):
    ok = make_record(make_run(flow), "D", outcome="ok")
    body = owner_client.post(
        reverse("records_replay_selection"), {"record": [ok.pk]}, follow=True
    ).content.decode()
    assert "None of the ticked records failed" in body and not OrmQ.objects.exists()
    body = owner_client.post(reverse("records_replay_selection"), {}, follow=True).content.decode()
    assert "Tick at least one failed record" in body and not OrmQ.objects.exists()


def test_replay_all_failures_of_a_flow(owner_client, flow):
    run = make_run(flow, status="partial")
    a = make_record(run, "A", outcome="failed")
    fixed = make_record(run, "B", outcome="failed")
    make_record(make_run(flow), "B", outcome="ok", attempt=2)  # retried since: not sent again
    b = make_record(make_run(flow), "C", outcome="failed")
    owner_client.post(reverse("flow_replay_failures", kwargs={"id": flow.pk}))
    replay = SyncRun.objects.get(trigger="replay")
    assert _queued() == [(replay.pk, [a.pk, b.pk])] and fixed.pk not in _queued()[0][1]


def test_viewers_see_no_checkboxes_and_cannot_replay(viewer_client, flow):
    failed = make_record(make_run(flow), "A", outcome="failed")
    body = viewer_client.get(reverse("record_list")).content.decode()
    assert 'name="record"' not in body and "Replay selected" not in body
    assert viewer_client.post(reverse("records_replay_selection"), {"record": [failed.pk]}).status_code == 403
    assert viewer_client.post(reverse("flow_replay_failures", kwargs={"id": flow.pk})).status_code == 403
    assert not OrmQ.objects.exists() and SyncRecord.objects.count() == 1


def test_another_tenants_flow_cannot_be_replayed(owner_client, other_flow):
    make_record(make_run(other_flow), "G", outcome="failed")
    assert owner_client.post(reverse("flow_replay_failures", kwargs={"id": other_flow.pk})).status_code == 404
    assert not OrmQ.objects.exists()
