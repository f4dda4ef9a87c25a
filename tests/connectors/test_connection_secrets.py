"""Connection secrets: encrypted at rest, rotatable keys, never rendered back anywhere."""

import json

import pytest
from cryptography.fernet import InvalidToken
from django.db import connection as db
from django.test import override_settings
from django.urls import reverse

from connectors.models import Connection
from tests import factories
from tests.factories import ConnectionFactory

# Shared fixtures (this folder's conftest belongs to the connector packages' tests).
connection = factories.connection
owner = factories.owner
owner_api = factories.owner_api
owner_client = factories.owner_client
_clear_cache = factories._clear_cache

pytestmark = pytest.mark.django_db

SECRET = "s3cret-Sage-PASSWORD-9876"
PIPEDRIVE_TOKEN = "pd-token-0123456789abcdef-ZYXW"


def raw_credentials(pk: int) -> str:
    with db.cursor() as cursor:
        cursor.execute("SELECT credentials FROM connectors_connection WHERE id = %s", [pk])
        value = cursor.fetchone()[0]
    return value if isinstance(value, str) else json.dumps(value)


def raw_password_token(pk: int) -> bytes:
    """The stored ciphertext of the `password` value (the field encrypts each value, keys stay plain)."""
    return json.loads(raw_credentials(pk))["password"].encode()


def credentials_field():
    return Connection._meta.get_field("credentials")


def reset_field_keys():
    """The field caches its derived keys; drop them so the next access uses the current settings."""
    field = credentials_field()
    field.__dict__.pop("keys", None)
    field.__dict__.pop("f", None)


@pytest.fixture
def fresh_keys():
    reset_field_keys()
    yield
    reset_field_keys()


def assert_no_secret(text: str, *secrets: str):
    for secret in secrets or (SECRET,):
        assert secret not in text
        assert secret[:-4] not in text  # not even all but the last 4


# -- at rest ----------------------------------------------------------------------------------

def test_credentials_are_encrypted_at_rest_and_read_back(tenant):
    row = ConnectionFactory(tenant=tenant, credentials={"password": SECRET})
    raw = raw_credentials(row.pk)
    assert raw and SECRET not in raw and SECRET[-4:] not in raw
    assert raw_password_token(row.pk).startswith(b"gAAAAA")  # a Fernet token
    assert Connection.objects.get(pk=row.pk).credentials == {"password": SECRET}


def test_key_rotation_reads_old_rows_and_writes_with_the_new_key(settings, tenant, fresh_keys):
    old_keys = list(settings.SALT_KEY)
    old_row = ConnectionFactory(tenant=tenant, credentials={"password": "old-key-SECRET-1111"})

    with override_settings(SALT_KEY=["rotated-new-key", *old_keys]):
        reset_field_keys()
        assert Connection.objects.get(pk=old_row.pk).credentials == {"password": "old-key-SECRET-1111"}
        new_row = ConnectionFactory(tenant=tenant, credentials={"password": "new-key-SECRET-2222"})
        new_token = raw_password_token(new_row.pk)
        assert Connection.objects.get(pk=new_row.pk).credentials == {"password": "new-key-SECRET-2222"}

    # The old key alone cannot read what was written after the rotation ...
    reset_field_keys()
    with override_settings(SALT_KEY=old_keys):
        reset_field_keys()
        with pytest.raises(InvalidToken):
            credentials_field().f.decrypt(new_token)
    # ... and the new key alone can (it is the one that encrypted it).
    with override_settings(SALT_KEY=["rotated-new-key"]):
        reset_field_keys()
        assert credentials_field().f.decrypt(new_token) == b"new-key-SECRET-2222"
        with pytest.raises(InvalidToken):
            credentials_field().f.decrypt(raw_password_token(old_row.pk))


# -- never rendered back ---------------------------------------------------------------------

def test_portal_pages_show_only_the_masked_secret(owner_client, connection):
    pages = [reverse("connection_list"), reverse("dashboard"),
             reverse("connection_detail", kwargs={"id": connection.pk}),
             reverse("connection_update", kwargs={"id": connection.pk}),
             reverse("connection_delete", kwargs={"id": connection.pk})]
    for url in pages:
        response = owner_client.get(url)
        assert response.status_code == 200, url
        assert_no_secret(response.content.decode())
    detail = owner_client.get(pages[2]).content.decode()
    assert "••••9876" in detail


def test_portal_edit_with_an_invalid_form_does_not_echo_the_secret(owner_client, connection):
    url = reverse("connection_update", kwargs={"id": connection.pk})
    response = owner_client.post(url, {"name": "", "base_url": "ftp://nope", "opt_company": "SAMLTD",
                                       "opt_user": "ADMIN", "secret_password": "typed-NEW-secret-5555"})
    assert response.status_code == 200
    assert_no_secret(response.content.decode(), SECRET, "typed-NEW-secret-5555")


def test_portal_pipedrive_token_is_masked(owner_client):
    response = owner_client.post(reverse("connection_create", kwargs={"system": "pipedrive"}), {
        "name": "Pipedrive", "base_url": "https://api.pipedrive.com", "opt_auth": "api_token",
        "secret_api_token": PIPEDRIVE_TOKEN, "opt_plan": "growth", "opt_seats": "3",
    }, follow=True)
    content = response.content.decode()
    assert "••••ZYXW" in content
    assert_no_secret(content, PIPEDRIVE_TOKEN)


def test_admin_pages_never_show_a_secret(admin_client, connection):
    changelist = admin_client.get(reverse("admin:connectors_connection_changelist"))
    change_url = reverse("admin:connectors_connection_change", args=[connection.pk])
    change = admin_client.get(change_url)
    assert changelist.status_code == change.status_code == 200
    assert 'name="credentials"' not in change.content.decode()
    assert "••••9876" in change.content.decode()

    # A change through the admin (and an action) leave history without secrets.
    form = change.context["adminform"].form
    data = {name: ("" if value is None else value) for name, value in form.initial.items() if name in form.fields}
    data.update({"name": "Renamed by support", "options": '{"company": "SAMLTD", "user": "ADMIN"}'})
    assert admin_client.post(change_url, data).status_code == 302
    admin_client.post(reverse("admin:connectors_connection_changelist"),
                      {"action": "test_connection", "_selected_action": [connection.pk]})
    history = admin_client.get(reverse("admin:connectors_connection_history", args=[connection.pk]))
    assert history.status_code == 200
    # both the edit and the action are in the history, in words
    assert "<td>Changed Name and Options.</td>" in history.content.decode()
    assert "<td>Tested: failed</td>" in history.content.decode()
    assert Connection.objects.get(pk=connection.pk).name == "Renamed by support"
    for response in (changelist, change, history, admin_client.get(change_url),
                     admin_client.get(reverse("admin:tenants_tenant_change", args=[connection.tenant_id])),
                     admin_client.get(reverse("admin:connectors_connection_delete", args=[connection.pk])),
                     admin_client.get(reverse("admin:index"))):
        assert_no_secret(response.content.decode())
    assert Connection.objects.get(pk=connection.pk).credentials == {"password": SECRET}


def test_api_tokens_are_not_listed_in_the_admin_nor_printed(owner):
    from django.urls import NoReverseMatch

    from tenants.services import api_token_rotate

    with pytest.raises(NoReverseMatch):
        reverse("admin:authtoken_tokenproxy_changelist")
    token = api_token_rotate(user=owner.user)
    assert token.key not in str(token)  # admin delete confirmations and logs print str(obj)


def test_api_responses_never_show_a_secret(owner_api, connection):
    responses = [
        owner_api.get("/api/connections/"),
        owner_api.get(f"/api/connections/{connection.pk}/"),
        owner_api.patch(f"/api/connections/{connection.pk}/", {"name": "Renamed"}, format="json"),
        owner_api.post(f"/api/connections/{connection.pk}/ping/"),
        owner_api.post("/api/connections/", {
            "system": "pipedrive", "name": "PD", "credentials": {"api_token": PIPEDRIVE_TOKEN},
            "options": {"auth": "api_token", "plan": "premium", "seats": 2},
        }, format="json"),
    ]
    for response in responses:
        assert response.status_code in (200, 201), response.content
        assert_no_secret(response.content.decode(), SECRET, PIPEDRIVE_TOKEN)
    assert responses[1].json()["credentials_masked"] == {"password": "••••9876"}
    assert "credentials" not in responses[1].json()
