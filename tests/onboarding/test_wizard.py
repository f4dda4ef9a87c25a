"""The onboarding wizard against a real sandbox over loopback: estimate, preview, field picker, the steps
as pages, and what each one stores. django-q2 runs the look-ups in-process (q_sync)."""

from __future__ import annotations

import pytest
import requests

import onboarding.services
from connectors.models import Connection
from connectors.registry import SYSTEMS, System
from onboarding.estimate import create_cost, flows_estimate
from onboarding.models import WizardJob
from onboarding.preview import NEW_FIELD, mapping_preview, pipedrive_field_create
from onboarding.services import erp_choices, wizard_flows_create
from syncs.kinds import flow_kind_get
from syncs.models import Flow

pytestmark = pytest.mark.django_db

CUSTOMERS = 12


@pytest.fixture
def world(sandbox, tenant):
    """A Sage 300 company with a few customers, a Pipedrive company on the Growth plan (its real limits)."""
    sandbox.control(
        "POST",
        "sage300/companies",
        json={"company": "SAMLTD", "user": "ADMIN", "password": "ADMIN", "customers": CUSTOMERS, "seed": 5},
    )
    company = sandbox.control(
        "POST", "pipedrive/companies", json={"name": "Wizard CRM", "plan": "growth", "seats": 1}
    )
    sage = Connection.objects.create(
        tenant=tenant,
        system="sage300",
        name="Sage",
        base_url=f"{sandbox.url}/Sage300WebApi/v1.0",
        options={"company": "SAMLTD", "user": "ADMIN"},
        credentials={"password": "ADMIN"},
    )
    pipedrive = Connection.objects.create(
        tenant=tenant,
        system="pipedrive",
        name="PD",
        base_url=sandbox.url,
        options={"auth": "api_token", "plan": "growth", "seats": 1},
        credentials={"api_token": company["api_token"]},
    )
    [flow] = wizard_flows_create(
        tenant=tenant, source=sage, target=pipedrive, kinds=["customers_to_organizations"]
    )
    return {"sandbox": sandbox, "company": company, "sage": sage, "pipedrive": pipedrive, "flow": flow}


def pipedrive_stats(world) -> dict:
    return world["sandbox"].control("GET", f"pipedrive/companies/{world['company']['company_id']}/stats")


def pipedrive_records(world, entity: str) -> list:
    return world["sandbox"].control(
        "GET", f"pipedrive/companies/{world['company']['company_id']}/records/{entity}"
    )["records"]


def test_erp_choices_come_from_the_registry(monkeypatch):
    future = System("future_erp", "Future ERP")  # a registry line without a client yet: coming soon
    monkeypatch.setattr(onboarding.services, "SYSTEMS", (*SYSTEMS, future))
    choices = {c["key"]: c for c in erp_choices()}
    assert "pipedrive" not in choices
    assert all(choices[s.key]["available"] for s in SYSTEMS if s.client and s.flows)
    assert {"sage300", "sap_b1", "syspro", "ifs", "s4hana"} <= {
        k for k, c in choices.items() if c["available"]
    }
    assert not choices["future_erp"]["available"] and choices["future_erp"]["kinds"] == []
    assert (
        "Deal won → SAP B1 sales order" in " ".join(choices["sap_b1"]["kinds"])
        or len(choices["sap_b1"]["kinds"]) >= 5
    )


def test_wizard_flows_are_created_paused_and_unknown_kinds_refused(world, tenant):
    flow = world["flow"]
    assert not flow.enabled and "wizard" in flow.pause_reason
    with pytest.raises(ValueError):
        wizard_flows_create(
            tenant=tenant, source=world["sage"], target=world["pipedrive"], kinds=["orders_to_deals"]
        )
    again = wizard_flows_create(
        tenant=tenant, source=world["sage"], target=world["pipedrive"], kinds=["customers_to_organizations"]
    )
    assert [f.pk for f in again] == [flow.pk]  # choosing again reuses the flow


def test_estimate_counts_at_the_erp_and_prices_each_create(world):
    result = flows_estimate(flows=[world["flow"]])
    [item] = result["flows"]
    assert item["records"] == CUSTOMERS and item["counted"]
    # 12 creates at 5 tokens, one list scan (10), the field list (10), each custom field created at most once
    customs = world["flow"].mappings.filter(target__startswith="custom:").count()
    assert create_cost("organizations") == 5
    assert item["tokens"] == CUSTOMERS * 5 + 10 + 10 + (customs + 1) * 5
    assert result["budget_limit"] == 60_000  # Growth × 1 seat
    assert result["percent_of_budget"] == round(100 * item["tokens"] / 60_000, 1)
    assert f"about {CUSTOMERS:,} records" in result["summary"] and "% of today's budget" in result["summary"]
    assert result["fits_today"]
    assert pipedrive_stats(world)["requests"] == 0  # the estimate never calls Pipedrive


def test_estimate_without_a_count_says_it_is_from_a_sample(world, monkeypatch):
    from connectors.sage300.client import Sage300Client

    monkeypatch.delattr(Sage300Client, "count")
    monkeypatch.setattr("connectors.sage300.client.PAGE_SIZE", 5)  # the first page holds 5: remaining says 12
    result = flows_estimate(flows=[world["flow"]])
    assert result["flows"][0]["records"] == CUSTOMERS  # from the first page's own count


def test_preview_maps_three_real_records_and_writes_nothing(world):
    flow = world["flow"]
    before = pipedrive_stats(world)
    result = mapping_preview(flow=flow)
    assert result["error"] == ""
    assert len(result["records"]) == 3
    names = {
        r["CustomerName"]
        for r in requests.get(
            f"{world['sandbox'].url}/Sage300WebApi/v1.0/-/SAMLTD/AR/ARCustomers",
            auth=("ADMIN", "ADMIN"),
            params={"$top": "3", "$orderby": "CustomerNumber"},
            headers={"Content-Type": "application/json"},
            timeout=10,
        ).json()["value"]
    }
    assert {r["body"]["name"] for r in result["records"]} == names
    first = result["records"][0]
    # the external-id field does not exist yet: it would be created on the first run, shown as a placeholder
    assert NEW_FIELD.format(name="Sage 300 customer number") in first["body"]["custom_fields"]
    assert "Sage 300 customer number" in result["new_fields"]
    assert "CustomerName" in result["sample_fields"]
    assert any(f["name"] == "name" and not f["custom"] for f in result["fields"])
    after = pipedrive_stats(world)
    assert after["calls_by_operation"].get("addOrganizationField", 0) == before["calls_by_operation"].get(
        "addOrganizationField", 0
    )
    assert pipedrive_records(world, "organizations") == []


def test_preview_shows_an_error_per_record(world):
    flow = world["flow"]
    flow.mappings.create(
        position=99, source="CustomerNumber", target="custom:Segment", lookup={"nothing": "x"}
    )
    result = mapping_preview(flow=flow)
    errors = [r["error"] for r in result["records"]]
    assert all("has no entry in the lookup table" in e for e in errors), errors
    assert all(r["body"] is None for r in result["records"])


def test_field_picker_creates_a_field_then_lists_it_by_name(world):
    flow = world["flow"]
    created = pipedrive_field_create(flow=flow, name="Credit  rating", field_type="varchar")
    assert created["name"] == "Credit rating" and len(created["key"]) == 40
    fields = world["sandbox"].control(
        "GET", f"pipedrive/companies/{world['company']['company_id']}/fields/organizations"
    )
    assert [f for f in fields["fields"] if f["field_name"] == "Credit rating"]
    result = mapping_preview(flow=flow)
    assert {"name": "Credit rating", "key": created["key"], "type": "varchar", "custom": True} in result[
        "fields"
    ]
    # creating it again reuses it
    assert pipedrive_field_create(flow=flow, name="credit rating")["key"] == created["key"]


def test_map_page_queues_the_lookup_and_the_picker_adds_a_mapping(world, owner_client, q_sync):
    flow = world["flow"]
    session = owner_client.session
    session["onboarding"] = {
        "system": "sage300",
        "erp_id": world["sage"].pk,
        "pipedrive_id": world["pipedrive"].pk,
        "flow_ids": [flow.pk],
    }
    session.save()
    page = owner_client.get(f"/onboarding/map/{flow.pk}/")
    assert page.status_code == 200
    job = WizardJob.objects.get(flow=flow)
    assert job.status == "done", job.error
    html = page.content.decode()
    assert "Preview: 3 real records mapped" in html and "&lt;new field: Sage 300 customer number&gt;" in html

    resp = owner_client.post(
        f"/onboarding/map/{flow.pk}/", {"action": "create", "name": "Credit rating", "field_type": "varchar"}
    )
    assert resp.status_code == 302
    assert WizardJob.objects.filter(kind="field_create", status="done").count() == 1
    resp = owner_client.post(
        f"/onboarding/map/{flow.pk}/",
        {"action": "add", "source": "CreditLimit", "target": "custom:Credit rating"},
    )
    assert resp.status_code == 302
    assert flow.mappings.filter(source="CreditLimit", target="custom:Credit rating").exists()
    page = owner_client.get(f"/onboarding/map/{flow.pk}/").content.decode()
    assert "Credit rating (varchar)" in page


@pytest.mark.django_db(transaction=True)  # the run's heartbeat thread writes the flow from its own connection
def test_schedule_shows_the_estimate_then_enables_and_starts_the_first_sync(world, owner_client, q_sync):
    flow = world["flow"]
    session = owner_client.session
    session["onboarding"] = {
        "system": "sage300",
        "erp_id": world["sage"].pk,
        "pipedrive_id": world["pipedrive"].pk,
        "flow_ids": [flow.pk],
    }
    session.save()
    page = owner_client.get("/onboarding/schedule/").content.decode()
    assert f"The first sync reads about {CUSTOMERS} records" in page
    resp = owner_client.post("/onboarding/schedule/", {"interval_minutes": "30"})
    assert resp.status_code == 302 and resp["Location"] == f"/flows/{flow.pk}/"
    flow.refresh_from_db()
    assert flow.enabled and flow.interval_minutes == 30
    run = flow.runs.get()
    assert run.status == "succeeded" and run.created == CUSTOMERS and run.expected == CUSTOMERS
    assert len(pipedrive_records(world, "organizations")) == CUSTOMERS


@pytest.mark.parametrize(
    ("system", "path", "found"),
    [
        ("sage300", "/Sage300WebApi/v1.0", "40 customers"),
        ("sap_b1", "/b1s/v1", "20 business partners"),
        ("syspro", "/SYSPROWCFService/Rest", "Logged on to SYSPRO company SYS as ADMIN"),
        ("ifs", "", "namespace ifsdemo (20 customers)"),
        ("s4hana", "", "Connected to SAP S/4HANA API_BUSINESS_PARTNER ("),
    ],
)
def test_sandbox_choice_fills_both_connections(
    sandbox, tenant, owner_client, settings, q_sync, system, path, found
):
    settings.SANDBOX_URL = sandbox.url
    resp = owner_client.post("/onboarding/", {"system": system, "sandbox": "1"})
    assert resp.status_code == 302 and resp["Location"] == "/onboarding/erp/"
    erp = Connection.objects.get(tenant=tenant, system=system)
    pipedrive = Connection.objects.get(tenant=tenant, system="pipedrive")
    assert erp.base_url == f"{sandbox.url}{path}"
    owner_client.post(f"/connections/{erp.pk}/ping/", HTTP_HX_REQUEST="true")
    owner_client.post(f"/connections/{pipedrive.pk}/ping/", HTTP_HX_REQUEST="true")
    erp.refresh_from_db()
    pipedrive.refresh_from_db()
    assert erp.last_ping_ok and found in erp.last_ping_message, erp.last_ping_message
    assert pipedrive.last_ping_ok and "of 60,000 API tokens left today" in pipedrive.last_ping_message
    page = owner_client.get("/onboarding/pipedrive/").content.decode()
    assert "Plan Growth" in page and "••••" in page and pipedrive.credentials["api_token"] not in page


def test_sandbox_is_not_offered_without_a_sandbox_url(tenant, owner_client, settings):
    settings.SANDBOX_URL = ""
    assert "Try it with the sandbox" not in owner_client.get("/onboarding/").content.decode()
    owner_client.post("/onboarding/", {"system": "sage300", "sandbox": "1"})
    assert not Connection.objects.filter(tenant=tenant).exists()


def test_oauth_connect_against_the_sandbox_oauth_server(sandbox, tenant, owner_client, settings):
    settings.PIPEDRIVE_OAUTH_URL = sandbox.url
    company = sandbox.control(
        "POST",
        "pipedrive/companies",
        json={
            "name": "OAuth CRM",
            "plan": "growth",
            "oauth_client": {"redirect_uri": "http://testserver/onboarding/pipedrive/oauth/callback/"},
        },
    )
    client = company["oauth_clients"][0]
    session = owner_client.session
    session["onboarding"] = {"system": "sage300", "flow_ids": []}
    session.save()
    resp = owner_client.post(
        "/onboarding/pipedrive/",
        {
            "name": "Pipedrive OAuth",
            "base_url": sandbox.url,
            "opt_auth": "oauth",
            "opt_client_id": client["client_id"],
            "secret_client_secret": client["client_secret"],
            "opt_plan": "growth",
            "opt_seats": "1",
        },
    )
    assert resp.status_code == 302 and resp["Location"].startswith(f"{sandbox.url}/oauth/authorize?")
    # the browser follows Pipedrive's consent page back to our callback
    back = requests.get(resp["Location"], allow_redirects=False, timeout=10)
    assert back.status_code == 302
    callback = back.headers["Location"].replace("http://testserver", "")
    resp = owner_client.get(callback)
    assert resp.status_code == 302 and resp["Location"] == "/onboarding/pipedrive/"
    connection = Connection.objects.get(tenant=tenant, system="pipedrive")
    assert connection.credentials["access_token"] and connection.options["auth"] == "oauth"
    # a forged callback (wrong state) is refused
    resp = owner_client.get("/onboarding/pipedrive/oauth/callback/?code=x&state=forged")
    assert resp.status_code == 302
    assert Flow.objects.count() == 0


def test_viewers_cannot_use_the_wizard(viewer_client):
    assert viewer_client.get("/onboarding/").status_code == 403


def test_add_a_flow_later_reuses_stored_connections(world, owner_client):
    session = owner_client.session
    session["onboarding"] = {"system": "sage300", "flow_ids": []}
    session.save()
    page = owner_client.get("/onboarding/erp/").content.decode()
    assert "Use a stored connection" in page and "Sage" in page
    resp = owner_client.post("/onboarding/erp/", {"use": str(world["sage"].pk)})
    assert resp.status_code == 302
    assert owner_client.session["onboarding"]["erp_id"] == world["sage"].pk
    # another tenant's connection id is not accepted
    owner_client.post("/onboarding/pipedrive/", {"use": "999999"})
    assert not owner_client.session["onboarding"].get("pipedrive_id")


@pytest.mark.parametrize(
    ("case", "status", "words"),
    [
        ("wrong password", "failing", "rejected the credentials"),
        ("unreachable", "failing", "reach"),
        ("network guard", "failing", "not allowed"),
    ],
)
def test_erp_step_saves_then_tests_with_plain_words(
    sandbox, tenant, owner_client, settings, q_sync, case, status, words
):
    sandbox.control(
        "POST", "sage300/companies", json={"company": "SAMLTD", "user": "ADMIN", "password": "ADMIN"}
    )
    base = {"unreachable": "http://127.0.0.1:9"}.get(case, sandbox.url) + "/Sage300WebApi/v1.0"
    if case == "network guard":
        settings.ALLOW_PRIVATE_NETWORKS = False
        base = "http://10.255.255.1/Sage300WebApi/v1.0"
    session = owner_client.session
    session["onboarding"] = {"system": "sage300", "flow_ids": []}
    session.save()
    resp = owner_client.post(
        "/onboarding/erp/",
        {
            "name": "Sage",
            "base_url": base,
            "opt_company": "SAMLTD",
            "opt_user": "ADMIN",
            "secret_password": "WRONG-pw-1234",
        },
    )
    if case == "network guard":  # refused when saving already, on the field
        assert resp.status_code == 200 and words in resp.content.decode()
        return
    connection = Connection.objects.get(tenant=tenant)
    owner_client.post(f"/connections/{connection.pk}/ping/", HTTP_HX_REQUEST="true")
    html = owner_client.get("/onboarding/erp/").content.decode()
    connection.refresh_from_db()
    assert connection.status == status and words in connection.last_ping_message.lower(), (
        connection.last_ping_message
    )
    assert "Not working" in html and "WRONG-pw-1234" not in html


def test_sap_b1_estimate_counts_partners_and_averages_contacts_and_prices_notes(sandbox, tenant):
    sandbox.control(
        "POST",
        "sap_b1/companies",
        json={
            "company_db": "SBOW",
            "user": "manager",
            "password": "pw-b1",
            "partners": 9,
            "contacts_max": 3,
            "items": 4,
            "invoices": 5,
            "seed": 11,
        },
    )
    company = sandbox.control(
        "POST", "pipedrive/companies", json={"name": "B1 CRM", "plan": "lite", "seats": 2}
    )
    b1 = Connection.objects.create(
        tenant=tenant,
        system="sap_b1",
        name="B1",
        base_url=f"{sandbox.url}/b1s/v1",
        options={"company_db": "SBOW", "user": "manager"},
        credentials={"password": "pw-b1"},
    )
    pipedrive = Connection.objects.create(
        tenant=tenant,
        system="pipedrive",
        name="PD",
        base_url=sandbox.url,
        options={"auth": "api_token", "plan": "lite", "seats": 2},
        credentials={"api_token": company["api_token"]},
    )
    flows = wizard_flows_create(
        tenant=tenant,
        source=b1,
        target=pipedrive,
        kinds=[
            "business_partners_to_organizations_and_persons",
            "invoices_to_notes",
            "deal_won_to_sales_order",
        ],
    )
    result = flows_estimate(flows=flows)
    by_kind = {f.kind: item for f, item in zip(flows, result["flows"], strict=True)}
    partners = by_kind["business_partners_to_organizations_and_persons"]
    assert partners["records"] == 9 and partners["counted"]
    # one organization per partner and one person per contact (the sample holds them all here)
    from connectors.registry import connector_class

    client = connector_class("sap_b1").from_connection(b1)
    page = next(client.changed_since("business_partners", {}))
    client.close()
    skip = flow_kind_get(system="sap_b1", name=flows[0].kind).child("contacts").skip_when
    people = sum(
        1
        for r in page.records
        for c in r.get("ContactEmployees") or []
        if not any(c.get(f) == v for f, v in skip)
    )
    customs = flows[0].mappings.filter(target__startswith="custom:").count()
    # + the list scan, the field list, each custom field and the external-id field created at most once
    assert partners["calls"] == 9 + people + 1 + 1 + customs + 1
    notes = by_kind["invoices_to_notes"]
    assert notes["records"] == 5 and notes["tokens"] == 5 * create_cost("notes") + 20  # v1 notes: 10 each
    assert by_kind["deal_won_to_sales_order"]["writeback"]
    assert result["budget_limit"] == 60_000  # Lite × 2 seats
