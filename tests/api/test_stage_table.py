"""The stage write-back's table (Pipedrive stage → IFS order action): edited through the API and the flow
page, validated in plain words, read-only for viewers, nothing saved on an error."""

import pytest

from connectors.models import Connection
from syncs.models import Flow
from syncs.services import flow_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def ifs(tenant):
    return Connection.objects.create(tenant=tenant, system="ifs", name="IFS", base_url="http://127.0.0.1:9",
                                     options={"namespace": "ifsdemo", "client_id": "ml-connector"},
                                     credentials={"client_secret": "x-secret"})


@pytest.fixture
def stage_flow(tenant, ifs, pipedrive):
    return flow_create(tenant=tenant, source=ifs, target=pipedrive, kind="deal_stage_to_order_status")


def test_the_api_sets_the_table_and_refuses_unknown_actions_and_stages(owner_api, stage_flow):
    url = f"/api/flows/{stage_flow.pk}/"
    saved = owner_api.patch(url, {"stage_actions": {"3": "release", "5": "Reserve"}}, format="json")
    assert saved.status_code == 200, saved.content
    assert saved.json()["options"]["stage_actions"] == {"3": "Release", "5": "Reserve"}

    bad_action = owner_api.patch(url, {"stage_actions": {"3": "Explode"}}, format="json")
    assert bad_action.status_code == 400
    assert "“Explode” is not an action" in bad_action.json()["fields"]["stage_actions"][0]
    assert "Release" in bad_action.json()["fields"]["stage_actions"][0]  # the known ones are listed
    bad_stage = owner_api.patch(url, {"stage_actions": {"won": "Release"}}, format="json")
    assert bad_stage.status_code == 400 and "not a Pipedrive stage id" in bad_stage.json()["fields"]["stage_actions"][0]
    assert Flow.objects.get(pk=stage_flow.pk).options["stage_actions"] == {"3": "Release", "5": "Reserve"}


def test_the_api_creates_a_stage_flow_with_its_table_and_a_viewer_cannot_change_it(
        owner_api, viewer_api, ifs, pipedrive):
    created = owner_api.post("/api/flows/", {"source": ifs.pk, "target": pipedrive.pk,
                                             "kind": "deal_stage_to_order_status",
                                             "stage_actions": {"2": "Release"}}, format="json")
    assert created.status_code == 201, created.content
    flow_id = created.json()["id"]
    assert created.json()["options"]["stage_actions"] == {"2": "Release"}
    refused = owner_api.post("/api/flows/", {"source": ifs.pk, "target": pipedrive.pk,
                                             "kind": "deal_stage_to_order_status",
                                             "stage_actions": {"2": "Teleport"}}, format="json")
    assert refused.status_code == 400
    assert viewer_api.patch(f"/api/flows/{flow_id}/", {"stage_actions": {}}, format="json").status_code == 403


def test_a_flow_without_a_stage_table_refuses_one(owner_api, flow):
    answer = owner_api.patch(f"/api/flows/{flow.pk}/", {"stage_actions": {"3": "Release"}}, format="json")
    assert answer.status_code == 400 and "does not map Pipedrive stages" in answer.json()["fields"]["stage_actions"][0]


def test_the_flow_page_edits_the_table_one_box_per_action(owner_client, stage_flow):
    page = owner_client.get(f"/flows/{stage_flow.pk}/")
    assert page.status_code == 200 and "Pipedrive stages → IFS Cloud order actions" in page.content.decode()
    url = f"/flows/{stage_flow.pk}/stages/"
    saved = owner_client.post(url, {"Release": "2, 7", "Reserve": "3", "Deliver": ""})
    assert saved.status_code == 302
    assert Flow.objects.get(pk=stage_flow.pk).options["stage_actions"] == {"2": "Release", "7": "Release",
                                                                          "3": "Reserve"}
    refused = owner_client.post(url, {"Release": "2", "Reserve": "2, x"})
    body = refused.content.decode()
    assert refused.status_code == 200 and "Stage 2 already runs Release" in body
    assert "“x” is not a Pipedrive stage id" in body
    assert Flow.objects.get(pk=stage_flow.pk).options["stage_actions"]["3"] == "Reserve"  # nothing saved


def test_a_viewer_sees_the_table_but_cannot_change_it(viewer_client, stage_flow):
    Flow.objects.filter(pk=stage_flow.pk).update(options={**stage_flow.options, "stage_actions": {"4": "Deliver"}})
    page = viewer_client.get(f"/flows/{stage_flow.pk}/").content.decode()
    assert "Deliver: 4" in page and "Save the stage table" not in page
    assert viewer_client.post(f"/flows/{stage_flow.pk}/stages/", {"Release": "9"}).status_code in (302, 403)
    assert Flow.objects.get(pk=stage_flow.pk).options["stage_actions"] == {"4": "Deliver"}
