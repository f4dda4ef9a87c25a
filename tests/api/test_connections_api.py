import pytest
from django.test import override_settings

from connectors.base import ConnectorError, PingResult
from connectors.models import Connection
from tests.factories import ConnectionFactory

pytestmark = pytest.mark.django_db

SAGE = {
    "system": "sage300", "name": "Sage UK", "base_url": "https://sage.example.com/Sage300WebApi/v1.0/",
    "credentials": {"password": "api-SAGE-secret-7777"}, "options": {"company": "SAMLTD", "user": "ADMIN"},
}


def test_create_list_retrieve_update_delete(owner_api, tenant):
    created = owner_api.post("/api/connections/", SAGE, format="json")
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["system"] == "sage300" and body["status"] == "new"
    assert body["base_url"] == "https://sage.example.com/Sage300WebApi/v1.0"
    assert body["options"] == {"company": "SAMLTD", "user": "ADMIN"}
    assert body["credentials_masked"] == {"password": "••••7777"}
    assert "credentials" not in body
    connection = Connection.objects.get(pk=body["id"])
    assert connection.tenant == tenant and connection.credentials == {"password": "api-SAGE-secret-7777"}

    listed = owner_api.get("/api/connections/").json()
    assert listed["count"] == 1 and listed["results"][0]["id"] == body["id"]
    assert owner_api.get(f"/api/connections/{body['id']}/").json()["name"] == "Sage UK"

    # Blank and omitted secrets keep the stored one.
    renamed = owner_api.patch(f"/api/connections/{body['id']}/",
                              {"name": "Sage UK (live)", "credentials": {"password": ""}}, format="json")
    assert renamed.status_code == 200 and renamed.json()["name"] == "Sage UK (live)"
    connection.refresh_from_db()
    assert connection.credentials == {"password": "api-SAGE-secret-7777"}
    assert connection.credentials_version == 0

    rotated = owner_api.put(f"/api/connections/{body['id']}/",
                            {"credentials": {"password": "rotated-SECRET-8888"}}, format="json")
    assert rotated.json()["credentials_masked"] == {"password": "••••8888"}
    connection.refresh_from_db()
    assert connection.credentials == {"password": "rotated-SECRET-8888"}
    assert connection.credentials_version == 1

    assert owner_api.delete(f"/api/connections/{body['id']}/").status_code == 204
    assert not Connection.objects.filter(pk=body["id"]).exists()


def test_pipedrive_defaults_and_auth_choice(owner_api):
    token = owner_api.post("/api/connections/", {
        "system": "pipedrive", "name": "PD", "credentials": {"api_token": "tok-1234567890-abcd"},
        "options": {"auth": "api_token", "plan": "growth", "seats": "4"},
    }, format="json")
    assert token.status_code == 201, token.content
    assert token.json()["base_url"] == "https://api.pipedrive.com"
    assert token.json()["options"] == {"auth": "api_token", "plan": "growth", "seats": 4}

    # Switching to OAuth needs the client id and secret, and drops the API token.
    missing = owner_api.patch(f"/api/connections/{token.json()['id']}/", {"options": {"auth": "oauth"}},
                              format="json")
    assert missing.status_code == 400
    assert set(missing.json()["fields"]) >= {"client_id", "client_secret"}
    switched = owner_api.patch(f"/api/connections/{token.json()['id']}/", {
        "options": {"auth": "oauth", "client_id": "cid-1"}, "credentials": {"client_secret": "oauth-SECRET-9999"},
    }, format="json")
    assert switched.status_code == 200, switched.content
    assert switched.json()["credentials_masked"] == {"client_secret": "••••9999"}


@pytest.mark.parametrize("change, field", [
    ({"name": ""}, "name"),
    ({"base_url": "ftp://sage.example.com"}, "base_url"),
    ({"options": {"company": "SAMLTD"}}, "user"),
    ({"system": "dynamics"}, "system"),
    ({"tls_pinned_sha256": "abc"}, "tls_pinned_sha256"),
    ({"tls_ca_bundle": "not a pem"}, "tls_ca_bundle"),
])
def test_create_validation_errors(owner_api, change, field):
    response = owner_api.post("/api/connections/", {**SAGE, **change}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid" and field in body["fields"] and body["detail"]


def test_private_networks_are_refused_unless_allowed(owner_api):
    with override_settings(ALLOW_PRIVATE_NETWORKS=False):
        refused = owner_api.post("/api/connections/", {**SAGE, "base_url": "http://127.0.0.1:8080/"}, format="json")
        assert refused.status_code == 400
        assert "not allowed" in refused.json()["fields"]["base_url"][0]
        metadata = owner_api.post("/api/connections/", {**SAGE, "base_url": "http://169.254.169.254/"},
                                  format="json")
        assert metadata.status_code == 400


def test_pinned_fingerprint_is_normalised(owner_api):
    fingerprint = "AB" * 32
    response = owner_api.post("/api/connections/", {**SAGE, "tls_pinned_sha256": fingerprint}, format="json")
    assert response.status_code == 201
    assert response.json()["tls_pinned_sha256"] == ":".join(["AB"] * 32)


def test_ping_of_a_system_without_a_connector_is_a_plain_message(owner_api, tenant, q_sync, monkeypatch):
    from connectors import registry

    # Every ERP has a client now; a fields-only registry line is how the next one starts.
    monkeypatch.setitem(registry._BY_KEY, "s4hana", registry.System("s4hana", "SAP S/4HANA"))
    registry.connector_class.cache_clear()
    connection = ConnectionFactory(tenant=tenant, system="s4hana", options={"client_id": "ADMIN"})
    response = owner_api.post(f"/api/connections/{connection.pk}/ping/")
    assert response.status_code == 202  # queued; in sync mode the worker has already answered
    body = response.json()
    assert body["status"] == "done"
    assert body["ok"] is False
    assert body["message"] == ("Testing SAP S/4HANA connections is not available yet. "
                               "Your settings are saved.")
    assert body["connection"]["last_ping_ok"] is False and body["connection"]["last_ping_at"]
    assert body["connection"]["status"] == "new"
    registry.connector_class.cache_clear()


class FakeClient:
    outcome: object = None

    @classmethod
    def from_connection(cls, connection):
        return cls()

    def test_connection(self):
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome


@pytest.fixture
def fake_connector(monkeypatch):
    monkeypatch.setattr("connectors.services.connector_class", lambda system: FakeClient)
    monkeypatch.setattr("connectors.services.connector_for", lambda connection: FakeClient())
    return FakeClient


@pytest.mark.parametrize("outcome, ok, status, message", [
    (PingResult(ok=True, message="Connected to SAMLTD."), True, "ok", "Connected to SAMLTD."),
    (ConnectorError("Sage 300 rejected the credentials.", auth=True), False, "broken",
     "Sage 300 rejected the credentials."),
    (ConnectorError("Sage 300 did not answer in time."), False, "failing", "Sage 300 did not answer in time."),
    (RuntimeError("boom with s3cret-Sage-PASSWORD-9876"), False, "failing",
     "The test failed unexpectedly. Support has been notified."),
    (ConnectorError("echoed s3cret-Sage-PASSWORD-9876"), False, "failing", "echoed ••••9876"),
])
def test_ping_stores_status_and_never_leaks(owner_api, connection, fake_connector, outcome, ok, status, message,
                                           q_sync):
    fake_connector.outcome = outcome
    body = owner_api.post(f"/api/connections/{connection.pk}/ping/").json()
    assert (body["ok"], body["message"], body["connection"]["status"]) == (ok, message, status)
    connection.refresh_from_db()
    assert (connection.last_ping_ok, connection.status, connection.last_ping_message) == (ok, status, message)


def test_ping_does_not_unpause(owner_api, connection, fake_connector, q_sync):
    fake_connector.outcome = PingResult(ok=True, message="fine")
    Connection.objects.filter(pk=connection.pk).update(status="paused")
    assert owner_api.post(f"/api/connections/{connection.pk}/ping/").json()["connection"]["status"] == "paused"


def test_cross_tenant_ids_are_404(owner_api, other_connection):
    for method in ("get", "patch", "put", "delete"):
        assert getattr(owner_api, method)(f"/api/connections/{other_connection.pk}/").status_code == 404
    assert owner_api.post(f"/api/connections/{other_connection.pk}/ping/").status_code == 404
    assert owner_api.get("/api/connections/").json()["count"] == 0


def test_viewer_reads_but_cannot_write(viewer_api, connection):
    assert viewer_api.get("/api/connections/").status_code == 200
    assert viewer_api.get(f"/api/connections/{connection.pk}/").status_code == 200
    assert viewer_api.post("/api/connections/", SAGE, format="json").status_code == 403
    assert viewer_api.patch(f"/api/connections/{connection.pk}/", {"name": "x"}, format="json").status_code == 403
    assert viewer_api.delete(f"/api/connections/{connection.pk}/").status_code == 403
    assert viewer_api.post(f"/api/connections/{connection.pk}/ping/").status_code == 403


def test_anonymous_and_bad_tokens_are_401(client, connection):
    from rest_framework.test import APIClient

    assert APIClient().get("/api/connections/").status_code == 401
    bad = APIClient()
    bad.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    assert bad.get("/api/connections/").status_code == 401


def test_revoked_tokens_stop_at_once(owner, owner_api):
    from tenants.services import api_tokens_revoke_all

    assert owner_api.get("/api/connections/").status_code == 200
    api_tokens_revoke_all(user=owner.user)
    assert owner_api.get("/api/connections/").status_code == 401


def test_session_auth_works_for_the_portal_user(owner_client, connection):
    assert owner_client.get("/api/connections/").json()["count"] == 1


def test_schema_and_docs(client):
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    text = schema.content.decode()
    assert "/api/connections/{id}/ping/" in text and "credentials_masked" in text
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in html
    assert "cdn." not in html and "https://" not in html.replace("https://swagger.io", "")
