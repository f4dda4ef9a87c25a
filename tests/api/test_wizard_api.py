"""API parity for the wizard: preview and estimate are queued look-ups with a status_url (q_sync runs them)."""

from __future__ import annotations

import pytest

from tests.onboarding.test_wizard import CUSTOMERS, world  # noqa: F401 - the sandbox world fixture

pytestmark = pytest.mark.django_db


def test_preview_answers_202_then_the_bodies(world, owner_api, q_sync):  # noqa: F811
    flow = world["flow"]
    resp = owner_api.post(f"/api/flows/{flow.pk}/preview/")
    assert resp.status_code == 202
    job = owner_api.get(resp.json()["status_url"]).json()
    assert job["kind"] == "map" and job["status"] == "done"
    records = job["result"]["records"]
    assert len(records) == 3 and all(r["body"]["name"] for r in records)
    assert any(f["name"] == "name" for f in job["result"]["fields"])


def test_estimate_answers_202_then_the_figures(world, owner_api, q_sync):  # noqa: F811
    resp = owner_api.post("/api/estimate/", {"flows": [world["flow"].pk]}, format="json")
    assert resp.status_code == 202, resp.json()
    result = owner_api.get(resp.json()["status_url"]).json()["result"]
    assert result["records"] == CUSTOMERS and result["budget_limit"] == 60_000
    assert result["summary"].startswith(f"The first sync reads about {CUSTOMERS} records")


def test_estimate_refuses_flows_of_another_tenant(owner_api, other_flow):
    resp = owner_api.post("/api/estimate/", {"flows": [other_flow.pk]}, format="json")
    assert resp.status_code == 404 and str(other_flow.pk) in resp.json()["detail"]
    assert owner_api.post("/api/estimate/", {"flows": []}, format="json").status_code == 400


def test_viewers_cannot_queue_and_strangers_see_nothing(viewer_api, flow, owner_api, other_flow, q_sync):
    assert viewer_api.post(f"/api/flows/{flow.pk}/preview/").status_code == 403
    assert owner_api.post(f"/api/flows/{other_flow.pk}/preview/").status_code == 404
    from onboarding.models import WizardJob

    job = WizardJob.objects.create(tenant=other_flow.tenant, kind="map", flow=other_flow)
    assert owner_api.get(f"/api/wizard-jobs/{job.pk}/").status_code == 404
