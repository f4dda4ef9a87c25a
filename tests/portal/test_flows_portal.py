"""Portal pages for flows, runs and records: forms, roles, tenant isolation, run now, replay."""

import json
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from django_q.models import OrmQ

from syncs.models import FieldMapping, Flow, SyncRecord, SyncRun
from syncs.services import flow_create, flow_run
from tests.factories import ConnectionFactory, make_record, make_run
from tests.syncs.world import World

pytestmark = pytest.mark.django_db

KIND = "sage300:customers_to_organizations"


def mappings_post(flow, rows, *, initial=None) -> dict:
    """Form data for the mappings formset: `rows` in display order, the first `initial` being existing rows."""
    data = {"form-TOTAL_FORMS": str(len(rows)), "form-MIN_NUM_FORMS": "0", "form-MAX_NUM_FORMS": "1000",
            "form-INITIAL_FORMS": str(flow.mappings.count() if initial is None else initial)}
    for i, row in enumerate(rows):
        for key, value in row.items():
            if value is True:
                data[f"form-{i}-{key}"] = "on"
            elif value not in (False, None):
                data[f"form-{i}-{key}"] = str(value)
    return data


def current_rows(flow) -> list[dict]:
    return [{"id": m.pk, "source": m.source, "target": m.target, "required": m.required,
             "lookup": "" if m.lookup is None else json.dumps(m.lookup)} for m in flow.mappings.all()]


# --- flows: list, create ----------------------------------------------------------------------------------

def test_flow_list_shows_kind_schedule_state_and_last_run(owner_client, tenant, connection, pipedrive, flow):
    make_run(flow, status="partial", read=120, created=100, updated=10, unchanged=7, failed=3)
    paused = flow_create(tenant=tenant, source=connection, target=pipedrive, kind="customers_to_organizations",
                         name="Paused flow", interval_minutes=60)
    Flow.objects.filter(pk=paused.pk).update(enabled=False, pause_reason="Sage 300 rejected the user or password.")
    waiting = flow_create(tenant=tenant, source=connection, target=pipedrive, kind="customers_to_organizations",
                          name="Waiting flow")
    Flow.objects.filter(pk=waiting.pk).update(paused_until=timezone.now() + timedelta(hours=3),
                                              pause_reason="Pipedrive daily budget nearly used up.")
    page = owner_client.get(reverse("flow_list")).content.decode()
    assert "Customers to Pipedrive" in page and "Acme Sage → Acme Pipedrive" in page
    assert "Sage 300 customers → Pipedrive organizations" in page
    assert "every 15 min" in page and "every 60 min" in page
    assert "Finished with failed records" in page and "120 read · 100 created · 10 updated" in page
    assert "3 failed" in page
    assert "Paused" in page and "Sage 300 rejected the user or password." in page and "— (paused)" in page
    assert "Waiting</span> until" in page and "Pipedrive daily budget nearly used up." in page
    assert 'href="/flows/"' in page and 'aria-current="page">Flows' in page


def test_flow_list_is_empty_with_a_next_step(owner_client):
    assert "Add a flow" in owner_client.get(reverse("flow_list")).content.decode()


def test_create_form_offers_only_this_tenants_connections(owner_client, connection, pipedrive, other_connection):
    page = owner_client.get(reverse("flow_create")).content.decode()
    assert "Acme Sage" in page and "Acme Pipedrive" in page
    assert "Globex Secret Sage" not in page
    assert f'value="{KIND}"' in page and "Sage 300 customers → Pipedrive organizations" in page
    assert 'hx-get="/flows/new/kinds/"' in page


def test_create_form_asks_for_both_connections_first(owner_client, connection):
    page = owner_client.get(reverse("flow_create")).content.decode()
    assert "Connect both sides first" in page and "<form method=\"post\" class=\"card" not in page


def test_create_rejects_other_tenants_connection_and_a_foreign_kind(owner_client, connection, pipedrive,
                                                                    other_connection):
    base = {"source": connection.pk, "target": pipedrive.pk, "kind": KIND, "interval_minutes": "15"}
    foreign = owner_client.post(reverse("flow_create"), {**base, "source": other_connection.pk})
    assert foreign.status_code == 200 and "Select a valid choice" in foreign.content.decode()
    wrong_kind = owner_client.post(reverse("flow_create"), {**base, "kind": "syspro:orders_to_deals"})
    assert "Select a valid choice" in wrong_kind.content.decode()
    bad_interval = owner_client.post(reverse("flow_create"), {**base, "interval_minutes": "0"})
    assert "greater than or equal to 1" in bad_interval.content.decode()
    assert not Flow.objects.exists()


def test_create_paused_when_not_started_now(owner_client, connection, pipedrive):
    response = owner_client.post(reverse("flow_create"), {
        "source": connection.pk, "target": pipedrive.pk, "kind": KIND, "interval_minutes": "45"}, follow=True)
    flow = Flow.objects.get()
    assert not flow.enabled and flow.options["create_missing_fields"] is False
    assert flow.pause_reason.startswith("Not started yet")
    page = response.content.decode()
    assert "paused. Check the field mappings below" in page and ">Resume</button>" in page


def test_kind_options_follow_the_chosen_erp(owner_client, connection, pipedrive, other_connection):
    page = owner_client.get(reverse("flow_kind_options"), {"source": connection.pk}).content.decode()
    assert f'value="{KIND}"' in page and 'optgroup label="Sage 300"' in page
    s4 = ConnectionFactory(tenant=connection.tenant, system="s4hana", name="S/4HANA")
    page = owner_client.get(reverse("flow_kind_options"), {"source": s4.pk}).content.decode()
    assert 'value="s4hana:business_partners_to_organizations_and_persons"' in page
    assert f'value="{KIND}"' not in page and "Sage 300" not in page
    # Another tenant's connection is as good as none: every kind of this tenant's ERPs.
    page = owner_client.get(reverse("flow_kind_options"), {"source": other_connection.pk}).content.decode()
    assert f'value="{KIND}"' in page


@pytest.mark.django_db(transaction=True)
def test_create_flow_through_the_form_then_it_syncs_the_sandbox(owner_client, sandbox, tenant):
    world = World.build(sandbox, tenant, customers=6)
    response = owner_client.post(reverse("flow_create"), {
        "source": world.sage.pk, "target": world.pipedrive.pk, "kind": KIND, "name": "Sage UK → Pipedrive",
        "interval_minutes": "30", "create_missing_fields": "on", "start_now": "on"})
    flow = Flow.objects.get(name="Sage UK → Pipedrive")
    assert response.status_code == 302 and response.url == reverse("flow_detail", kwargs={"id": flow.pk})
    assert (flow.kind, flow.interval_minutes, flow.enabled) == ("customers_to_organizations", 30, True)
    assert flow.options == {"create_missing_fields": True}
    assert flow.mappings.count() == 11 and flow.mappings.first().target == "name"

    run = flow_run(flow=flow, trigger="manual")
    assert run.status == "succeeded" and run.created == 6, run.error
    detail = owner_client.get(reverse("run_detail", kwargs={"id": run.pk})).content.decode()
    assert "Finished: nothing failed." in detail and 'hx-trigger="every 2s"' not in detail
    records = owner_client.get(reverse("record_list"), {"flow": flow.pk}).content.decode()
    assert records.count('class="badge badge-outcome-ok"') == 6
    assert world.pipedrive.credentials["api_token"] not in records + detail


# --- flows: detail, mappings, schedule, actions -----------------------------------------------------------

def test_detail_shows_mappings_schedule_and_actions_to_an_owner(owner_client, flow):
    page = owner_client.get(reverse("flow_detail", kwargs={"id": flow.pk})).content.decode()
    assert ">Run now</button>" in page and ">Pause</button>" in page and "Save mappings" in page
    assert 'value="CustomerName"' in page and 'name="form-11-source"' in page  # 11 rows + a blank one
    assert 'name="interval_minutes"' in page and "Additive only" in page


def test_viewer_reads_the_flow_but_sees_no_controls(viewer_client, flow):
    page = viewer_client.get(reverse("flow_detail", kwargs={"id": flow.pk})).content.decode()
    assert "<code>CustomerName</code>" in page
    assert "Run now" not in page and "Save mappings" not in page and 'name="interval_minutes"' not in page


def test_owner_edits_adds_and_removes_mapping_rows(owner_client, flow):
    rows = current_rows(flow)
    rows[0]["source"] = "{CustomerName} ({CustomerNumber})"
    rows[1]["DELETE"] = True
    rows[-1]["lookup"] = '{"0": "Active", "1": "Inactive"}'
    rows.append({"source": "Territory", "target": "custom: Sales territory", "required": True,
                 "lookup": '{"EAST": "East", "WEST": "West"}'})
    response = owner_client.post(reverse("flow_mappings", kwargs={"id": flow.pk}), mappings_post(flow, rows))
    assert response.status_code == 302
    saved = list(FieldMapping.objects.filter(flow=flow))
    assert len(saved) == 11 and [m.position for m in saved] == list(range(11))
    assert saved[0].source == "{CustomerName} ({CustomerNumber})" and saved[0].pk == rows[0]["id"]
    assert "address" not in [m.target for m in saved]
    assert saved[-2].lookup == {"0": "Active", "1": "Inactive"} and saved[-2].field_type == "varchar"
    assert (saved[-1].target, saved[-1].required, saved[-1].lookup) == (
        "custom:Sales territory", True, {"EAST": "East", "WEST": "West"})
    assert FieldMapping.objects.get(flow=flow, target="custom:Phone").field_type == "phone"  # kept


def test_bad_json_lookup_is_a_clear_error_and_nothing_is_saved(owner_client, flow):
    before = list(FieldMapping.objects.filter(flow=flow).values_list("source", "target", "lookup"))
    rows = current_rows(flow)
    rows[0]["source"] = "Changed"
    rows[2]["lookup"] = '{"A": "Active",}'
    response = owner_client.post(reverse("flow_mappings", kwargs={"id": flow.pk}), mappings_post(flow, rows))
    assert response.status_code == 200
    page = response.content.decode()
    assert "The lookup table is not valid JSON" in page and "(line 1, column 16)" in page
    assert 'Write it like {&quot;A&quot;: &quot;Active&quot;' in page
    assert "The field mappings were not saved" in page
    assert list(FieldMapping.objects.filter(flow=flow).values_list("source", "target", "lookup")) == before

    rows[2]["lookup"] = '["A", "B"]'
    page = owner_client.post(reverse("flow_mappings", kwargs={"id": flow.pk}),
                             mappings_post(flow, rows)).content.decode()
    assert "must be a JSON object of ERP value → Pipedrive value" in page


@pytest.mark.parametrize("change, message", [
    ({"target": "nmae"}, "“nmae” is not a Pipedrive organizations field"),
    ({"target": "custom:"}, "Write the Pipedrive field&#x27;s name after custom:"),
    ({"source": "{AddressLine1, {City}"}, "A template names ERP fields in braces"),
    ({"target": "address"}, "Two rows write to the same Pipedrive field: address"),
    ({"DELETE": True}, "Keep a row that fills name"),
])
def test_mapping_mistakes_are_reported(owner_client, flow, change, message):
    rows = current_rows(flow)
    rows[0].update(change)
    page = owner_client.post(reverse("flow_mappings", kwargs={"id": flow.pk}),
                             mappings_post(flow, rows)).content.decode()
    assert message in page
    assert FieldMapping.objects.get(flow=flow, position=0).target == "name"


def test_add_row_fragment_numbers_the_new_row(owner_client, flow):
    page = owner_client.get(reverse("flow_mapping_row", kwargs={"id": flow.pk}),
                            {"form-TOTAL_FORMS": "12"}).content.decode()
    assert 'name="form-12-source"' in page and 'name="form-12-DELETE"' in page and "__prefix__" not in page
    assert 'name="form-TOTAL_FORMS" value="13" id="id_form-TOTAL_FORMS" hx-swap-oob="true"' in page


def test_schedule_and_options_edit(owner_client, flow):
    Flow.objects.filter(pk=flow.pk).update(next_run_at=timezone.now() + timedelta(days=1))
    response = owner_client.post(reverse("flow_schedule", kwargs={"id": flow.pk}),
                                 {"name": "Hourly customers", "interval_minutes": "60"})
    assert response.status_code == 302
    flow.refresh_from_db()
    assert (flow.name, flow.interval_minutes, flow.options["create_missing_fields"]) == ("Hourly customers", 60, False)
    assert flow.next_run_at <= timezone.now() + timedelta(minutes=60)  # a shorter interval takes effect now
    page = owner_client.post(reverse("flow_schedule", kwargs={"id": flow.pk}),
                             {"name": "x", "interval_minutes": "5000"}).content.decode()
    assert "less than or equal to 1440" in page


def test_run_now_queues_a_task(owner_client, flow):
    response = owner_client.post(reverse("flow_run_now", kwargs={"id": flow.pk}), follow=True)
    assert "Run queued" in response.content.decode()
    task = OrmQ.objects.get().task
    assert task["func"] == "syncs.tasks.flow_run_task" and tuple(task["args"]) == (flow.pk, "manual")


def test_run_now_while_running_queues_nothing(owner_client, flow):
    now = timezone.now()
    Flow.objects.filter(pk=flow.pk).update(running_since=now, heartbeat_at=now)
    response = owner_client.post(reverse("flow_run_now", kwargs={"id": flow.pk}), follow=True)
    assert "is running right now" in response.content.decode()
    assert not OrmQ.objects.exists()


def test_pause_and_resume(owner_client, owner, flow):
    page = owner_client.post(reverse("flow_pause", kwargs={"id": flow.pk}), follow=True).content.decode()
    flow.refresh_from_db()
    assert not flow.enabled and flow.pause_reason == "Paused by owner@acme.example."
    assert "Paused by owner@acme.example." in page and ">Resume</button>" in page
    owner_client.post(reverse("flow_resume", kwargs={"id": flow.pk}))
    flow.refresh_from_db()
    assert flow.enabled and flow.pause_reason == "" and flow.next_run_at <= timezone.now()


def test_viewer_cannot_change_anything(viewer_client, flow):
    run = make_run(flow, status="partial", failed=1)
    record = make_record(run, "1100", outcome="failed", action="create")
    posts = [("flow_mappings", flow.pk), ("flow_schedule", flow.pk), ("flow_run_now", flow.pk),
             ("flow_pause", flow.pk), ("flow_resume", flow.pk), ("run_replay", run.pk), ("record_replay", record.pk)]
    for name, pk in posts:
        assert viewer_client.post(reverse(name, kwargs={"id": pk}), {"name": "x"}).status_code == 403, name
    assert viewer_client.get(reverse("flow_create")).status_code == 403
    assert viewer_client.get(reverse("flow_mapping_row", kwargs={"id": flow.pk})).status_code == 403
    flow.refresh_from_db()
    assert flow.enabled and flow.name == "Customers to Pipedrive" and not OrmQ.objects.exists()
    assert SyncRecord.objects.count() == 1
    assert "Replay" not in viewer_client.get(reverse("record_detail", kwargs={"id": record.pk})).content.decode()


def test_another_tenants_flows_runs_and_records_are_404(owner_client, other_flow):
    run = make_run(other_flow, status="partial", failed=1)
    record = make_record(run, "GLX1", outcome="failed")
    gets = [("flow_detail", other_flow.pk), ("flow_mapping_row", other_flow.pk), ("run_detail", run.pk),
            ("run_progress", run.pk), ("record_detail", record.pk)]
    for name, pk in gets:
        assert owner_client.get(reverse(name, kwargs={"id": pk})).status_code == 404, name
    posts = [("flow_mappings", other_flow.pk), ("flow_schedule", other_flow.pk), ("flow_run_now", other_flow.pk),
             ("flow_pause", other_flow.pk), ("flow_resume", other_flow.pk), ("run_replay", run.pk),
             ("record_replay", record.pk)]
    for name, pk in posts:
        assert owner_client.post(reverse(name, kwargs={"id": pk})).status_code == 404, name
    for listing in ("flow_list", "run_list", "record_list"):
        page = owner_client.get(reverse(listing)).content.decode()
        assert "Globex" not in page and "GLX1" not in page
    assert "GLX1" not in owner_client.get(reverse("record_list"), {"run": run.pk}).content.decode()
    other_flow.refresh_from_db()
    assert other_flow.enabled and not OrmQ.objects.exists()


# --- runs ---------------------------------------------------------------------------------------------------

def test_run_list_per_tenant_and_per_flow(owner_client, tenant, connection, pipedrive, flow):
    second = flow_create(tenant=tenant, source=connection, target=pipedrive, kind="customers_to_organizations",
                         name="Second flow")
    make_run(flow, status="succeeded", read=50, created=40, updated=5, adopted=2, unchanged=3, tokens_spent=420)
    make_run(second, status="failed", trigger="manual", error="Sage 300 did not answer.")
    page = owner_client.get(reverse("run_list")).content.decode()
    assert "Customers to Pipedrive" in page and "Second flow" in page
    assert '<td class="num">420</td>' in page and "Manual" in page
    only = owner_client.get(reverse("run_list"), {"flow": flow.pk}).content.decode()
    assert "Runs of “Customers to Pipedrive”" in only and "Second flow</a>" not in only
    failed = owner_client.get(reverse("run_list"), {"status": "failed"}).content.decode()
    assert "Second flow</a>" in failed and "Customers to Pipedrive</a>" not in failed


def test_running_run_polls_and_shows_records_written_so_far(owner_client, flow):
    run = make_run(flow, trigger="manual")
    SyncRun.objects.filter(pk=run.pk).update(started=timezone.now() - timedelta(seconds=75))
    for n in range(3):
        make_record(run, f"C{n}")
    make_record(run, "C9", outcome="failed", error_message="CustomerName is empty but name is required.")
    page = owner_client.get(reverse("run_detail", kwargs={"id": run.pk})).content.decode()
    assert f'hx-get="/runs/{run.pk}/progress/" hx-trigger="every 2s"' in page
    assert "<strong>4</strong> records written so far" in page and "3 ok · 1 failed · 0 in flight" in page
    assert "Running for</dt><dd>1 min 1" in page
    assert "Replay failed records" not in page  # not while it runs

    SyncRun.objects.filter(pk=run.pk).update(status="partial", finished=timezone.now(), read=4, created=3, failed=1,
                                             tokens_spent=30)
    fragment = owner_client.get(reverse("run_progress", kwargs={"id": run.pk})).content.decode()
    assert fragment.startswith('<section id="run-status"') and "hx-trigger" not in fragment
    assert "1 record failed; the others were synced." in fragment and "Replay failed records" in fragment


def test_failed_run_explains_itself(owner_client, flow):
    run = make_run(flow, status="failed", finished=timezone.now(),
                   error="Sage 300 rejected the user or password (HTTP 401).")
    page = owner_client.get(reverse("run_detail", kwargs={"id": run.pk})).content.decode()
    assert "The run stopped before the end." in page
    assert "Why:</strong> Sage 300 rejected the user or password (HTTP 401)." in page


def test_replay_while_the_flow_runs_says_so(owner_client, flow):
    run = make_run(flow, status="partial", failed=1, finished=timezone.now())
    record = make_record(run, "1100", outcome="failed")
    now = timezone.now()
    Flow.objects.filter(pk=flow.pk).update(running_since=now, heartbeat_at=now)
    for name, pk in (("record_replay", record.pk), ("run_replay", run.pk)):
        page = owner_client.post(reverse(name, kwargs={"id": pk}), follow=True).content.decode()
        assert "Not replayed: Customers to Pipedrive is running right now; replay again when it finishes." in page
    assert SyncRecord.objects.count() == 1


def test_only_failed_records_can_be_replayed(owner_client, flow):
    record = make_record(make_run(flow, status="succeeded"), "1100")
    page = owner_client.post(reverse("record_replay", kwargs={"id": record.pk}), follow=True).content.decode()
    assert "Only failed records can be replayed." in page and SyncRecord.objects.count() == 1


# --- records ------------------------------------------------------------------------------------------------

def test_records_list_filters_and_pages(owner_client, tenant, connection, pipedrive, flow):
    second = flow_create(tenant=tenant, source=connection, target=pipedrive, kind="customers_to_organizations",
                         name="Second flow")
    run = make_run(flow, status="partial")
    other_run = make_run(second, status="succeeded")
    for n in range(55):
        make_record(run, f"OK{n:03d}", action="update" if n % 2 else "create", target_id=1000 + n)
    make_record(run, "BAD0001", outcome="failed", action="fail", error_kind="permanent",
                error_message="The record has no field 'CustomerName'.")
    make_record(run, "SLOW1", outcome="failed", error_kind="transient", error_message="Pipedrive timed out.")
    make_record(other_run, "SECOND1", action="adopt")
    url = reverse("record_list")

    def ids(params):
        return [r.external_id for r in owner_client.get(url, params).context["page"].object_list]

    first_page = owner_client.get(url)
    assert first_page.context["page"].paginator.count == 58 and len(first_page.context["page"].object_list) == 50
    assert "Page 1 of 2 · 58 records" in first_page.content.decode()
    assert len(ids({"page": 2})) == 8
    assert ids({"flow": second.pk}) == ["SECOND1"]
    assert ids({"run": other_run.pk}) == ["SECOND1"]
    assert ids({"outcome": "failed"}) == ["SLOW1", "BAD0001"]
    assert ids({"action": "adopt"}) == ["SECOND1"]
    assert ids({"error_kind": "transient"}) == ["SLOW1"]
    assert ids({"external_id": "bad"}) == ["BAD0001"]
    assert ids({"outcome": "ok", "action": "create", "external_id": "OK00"}) == [f"OK00{n}" for n in (8, 6, 4, 2, 0)]
    page = owner_client.get(url, {"outcome": "failed", "page": "1"}).content.decode()
    assert 'class="badge badge-outcome-failed"' in page and "The record has no field" in page
    # Page links keep the filters.
    paged = owner_client.get(url, {"outcome": "ok"}).content.decode()
    assert "?outcome=ok&amp;page=2" in paged
    # A mistyped filter is reported and ignored, never a server error.
    typo = owner_client.get(url, {"run": "abc", "outcome": "failed"})
    assert typo.status_code == 200 and "Run #: Enter a whole number. (filter ignored)" in typo.content.decode()
    assert [r.external_id for r in typo.context["page"].object_list] == ["SLOW1", "BAD0001"]


def test_record_detail_shows_payload_source_and_response(owner_client, flow):
    run = make_run(flow, status="succeeded")
    record = make_record(run, "1100", target_id=77, response_status=201,
                         response_excerpt='{"success": true, "data": {"id": 77}}',
                         payload={"name": "Acme Ltd", "custom_fields": {"abc123": "1100"}},
                         source_data={"CustomerNumber": "1100", "CustomerName": "Acme Ltd"})
    page = owner_client.get(reverse("record_detail", kwargs={"id": record.pk})).content.decode()
    assert '{\n  &quot;custom_fields&quot;: {\n    &quot;abc123&quot;: &quot;1100&quot;\n  },' in page
    assert "&quot;CustomerName&quot;: &quot;Acme Ltd&quot;" in page
    assert "HTTP 201" in page and "organizations 77" in page
    assert "The only attempt: not replayed." in page and ">Replay</button>" not in page


@pytest.mark.django_db(transaction=True)
def test_replay_a_fixed_record_from_its_page_appends_a_new_attempt(owner_client, sandbox, tenant, q_sync):
    world = World.build(sandbox, tenant, customers=5)
    bad_key = next(iter(world.sage_ctl("POST", "malformed", json={"kinds": ["missing_name"]})["created"]))
    run = flow_run(flow=world.flow)
    assert run.status == "partial" and run.failed == 1
    failed = SyncRecord.objects.get(run=run, outcome="failed")
    assert failed.external_id == bad_key

    page = owner_client.get(reverse("record_detail", kwargs={"id": failed.pk})).content.decode()
    assert ">Replay</button>" in page and "CustomerName" in page
    still = owner_client.post(reverse("record_replay", kwargs={"id": failed.pk}), follow=True)
    assert f"Replay of {bad_key} queued as run" in still.content.decode()
    assert "1 record failed" in still.content.decode()  # the replay run's page, finished (sync mode)

    world.sage_ctl("PATCH", f"customers/{bad_key}", json={"CustomerName": "Fixed Ltd"})
    response = owner_client.post(reverse("record_replay", kwargs={"id": failed.pk}))
    fixed = SyncRecord.objects.filter(replay_of=failed).order_by("-id").first()
    assert response.status_code == 302 and response.url == reverse("run_detail", kwargs={"id": fixed.run_id})
    assert "Finished: nothing failed." in owner_client.get(response.url).content.decode()
    assert fixed.outcome == "ok" and fixed.action == "create" and fixed.run.trigger == "replay"
    assert fixed.payload["name"] == "Fixed Ltd"
    assert SyncRecord.objects.filter(external_id=bad_key).count() == 3  # history kept, nothing rewritten
    failed.refresh_from_db()
    assert failed.outcome == "failed"

    page = owner_client.get(reverse("record_detail", kwargs={"id": fixed.pk})).content.decode()
    assert "This attempt" in page and "replay of attempt 1" in page and "Attempt 1" in page
    assert "&quot;name&quot;: &quot;Fixed Ltd&quot;" in page and ">Replay</button>" not in page
    assert world.by_external_id()[bad_key] == 1
    assert world.pipedrive.credentials["api_token"] not in page


@pytest.mark.django_db(transaction=True)
def test_replay_a_runs_failures_from_the_run_page(owner_client, sandbox, tenant, q_sync):
    world = World.build(sandbox, tenant, customers=4)
    created = world.sage_ctl("POST", "malformed", json={"kinds": ["missing_name", "null_name"]})["created"]
    run = flow_run(flow=world.flow)
    assert run.failed == 2
    page = owner_client.get(reverse("run_detail", kwargs={"id": run.pk})).content.decode()
    assert "Replay failed records" in page and "2 not retried since" in page
    for key in created:
        world.sage_ctl("PATCH", f"customers/{key}", json={"CustomerName": f"Fixed {key}"})
    response = owner_client.post(reverse("run_replay", kwargs={"id": run.pk}), follow=True)
    replay = SyncRun.objects.get(trigger="replay")
    assert response.redirect_chain[-1][0] == reverse("run_detail", kwargs={"id": replay.pk})
    page = response.content.decode()
    assert f"Replay queued as run #{replay.pk}" in page and "Finished: nothing failed." in page
    assert (replay.status, replay.created, replay.failed) == ("succeeded", 2, 0)
    assert "all retried since" in owner_client.get(reverse("run_detail", kwargs={"id": run.pk})).content.decode()


@pytest.mark.django_db(transaction=True)
def test_resync_all_reads_everything_again_and_unchanged_records_cost_nothing(sandbox, tenant, owner_client):
    world = World.build(sandbox, tenant, customers=25)
    flow_run(flow=world.flow)
    resp = owner_client.post(reverse("flow_resync", kwargs={"id": world.flow.pk}), follow=True)
    assert "read every ERP record again" in resp.content.decode()
    world.flow.refresh_from_db()
    assert "erp" not in world.flow.cursor
    before = world.stats()["requests"]
    again = flow_run(flow=world.flow)
    # one paged list checks the links still exist; the 25 unchanged records cost nothing
    assert again.read == 25 and again.unchanged == 25 and world.stats()["requests"] == before + 1
