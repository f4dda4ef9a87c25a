"""Connection secrets: encrypted at rest, rotatable keys, never rendered back anywhere."""

import importlib
import json
import threading
from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.apps import apps as django_apps
from django.core.management import CommandError, call_command
from django.db import connection as db
from django.db import transaction
from django.urls import reverse

from connectors.crypto import DecryptionFailed, fernet_key
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


def forget_cached_keys():
    """The previous library cached keys derived from SECRET_KEY on the field; ours reads the settings
    each time. Dropping such a cache makes these tests fair to both."""
    field = Connection._meta.get_field("credentials")
    field.__dict__.pop("keys", None)
    field.__dict__.pop("f", None)


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


K1 = Fernet.generate_key().decode()
K2 = "a-passphrase-of-more-than-32-random-characters-2b9f"  # any 32+ character string works too
K3 = Fernet.generate_key().decode()
ROTATED = {
    "password": "rotate-me-SECRET-0001",
    "api_token": "pd-token-ROTATE-0002-abcdef",
    "access_token": "oauth-access-ROTATE-0003", "refresh_token": "oauth-refresh-ROTATE-0004",
}


def rotate(*args: str) -> str:
    out = StringIO()
    call_command("rotate_keys", "--batch-size", "2", *args, stdout=out)
    return out.getvalue()


def assert_all_read_back(rows: dict[int, dict]):
    forget_cached_keys()
    for pk, credentials in rows.items():
        assert Connection.objects.get(pk=pk).credentials == credentials
    for pk in rows:
        raw = raw_credentials(pk)
        assert_no_secret(raw, *ROTATED.values())


def test_changing_secret_key_keeps_credentials_readable(settings, tenant):
    row = ConnectionFactory(tenant=tenant, credentials={"password": SECRET})
    settings.SECRET_KEY = "a-completely-different-secret-key-0123456789"
    settings.SECRET_KEY_FALLBACKS = []
    forget_cached_keys()
    assert Connection.objects.get(pk=row.pk).credentials == {"password": SECRET}


def test_rotate_twice_dropping_the_oldest_key_reads_every_secret_back(settings, tenant):
    settings.FERNET_KEYS = [K1]
    rows = {}
    for index, (key, value) in enumerate(ROTATED.items()):  # 4 rows, batches of 2 (+ one empty row)
        rows[ConnectionFactory(tenant=tenant, name=f"c{index}", credentials={key: value, "n": "1"}).pk] = {
            key: value, "n": "1"}
    rows[ConnectionFactory(tenant=tenant, name="empty", credentials={}).pk] = {}

    for new, old in ((K2, K1), (K3, K2)):
        settings.FERNET_KEYS = [new, old]
        assert_all_read_back(rows)  # the old key still decrypts
        with pytest.raises(CommandError) as caught:
            rotate("--check")
        assert caught.value.returncode == 1 and "4 row(s) are still under older keys" in str(caught.value)
        output = rotate()
        assert "connectors.Connection.credentials: 4 of 5 rows re-encrypted" in output
        assert "4/5 rows checked" in output or "5/5 rows checked" in output  # progress per batch
        assert "0 of 5 rows re-encrypted" in rotate()  # idempotent
        assert "0 of 5 rows not under the first key" in rotate("--check")
        settings.FERNET_KEYS = [new]  # the old key is retired
        assert_all_read_back(rows)
        for pk in rows:  # every stored token is under the new key alone
            for token in json.loads(raw_credentials(pk)).values():
                Fernet(fernet_key(new)).decrypt(token.encode())
    settings.FERNET_KEYS = [K1]  # a retired key reads nothing
    with pytest.raises(DecryptionFailed):
        Connection.objects.get(pk=next(iter(rows)))


def test_values_written_by_the_previous_library_are_read_and_re_encrypted(settings, tenant):
    from encrypted_fields.fields import EncryptedJSONField as LegacyField

    settings.FERNET_KEYS = ["legacy-salt-used-before-the-upgrade-0123456789"]
    settings.SALT_KEY = settings.FERNET_KEYS
    row = ConnectionFactory(tenant=tenant, credentials={})
    legacy_json = LegacyField().get_prep_value({"password": SECRET})
    with db.cursor() as cursor:
        cursor.execute("UPDATE connectors_connection SET credentials = %s::jsonb WHERE id = %s", [legacy_json, row.pk])
    assert Connection.objects.get(pk=row.pk).credentials == {"password": SECRET}  # the fallback reads it

    migration = importlib.import_module("connectors.migrations.0005_credentials_keys_independent_of_secret_key")
    migration.reencrypt(django_apps, None)  # what `migrate` did on upgrade (rotate_keys does the same)
    assert "0 of 1 rows not under the first key" in rotate("--check")
    settings.SECRET_KEY = "a-new-secret-key-after-the-upgrade-0123456789"
    assert Connection.objects.get(pk=row.pk).credentials == {"password": SECRET}
    assert_no_secret(raw_credentials(row.pk))


@pytest.mark.django_db(transaction=True)
def test_rotation_waits_for_a_worker_holding_the_row_and_keeps_its_write(settings, tenant):
    settings.FERNET_KEYS = [K1]
    row = ConnectionFactory(tenant=tenant, credentials={"refresh_token": "before-ROTATION-1111"})
    settings.FERNET_KEYS = [K2, K1]
    locked, release = threading.Event(), threading.Event()
    errors = []

    def worker():  # an OAuth refresh: lock the row, call out, write the new token
        try:
            with transaction.atomic():
                current = Connection.objects.select_for_update().get(pk=row.pk)
                locked.set()
                release.wait(60)
                current.credentials = {"refresh_token": "written-BY-WORKER-2222"}
                current.save(update_fields=["credentials"])
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            db.close()

    def rotation():
        try:
            rotate()
        except Exception as exc:
            errors.append(exc)
        finally:
            db.close()

    threads = [threading.Thread(target=worker)]
    threads[0].start()
    assert locked.wait(30)
    threads.append(threading.Thread(target=rotation))
    threads[1].start()
    for _ in range(300):  # until the rotation waits for the worker's row lock
        with db.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                           "AND datname = current_database()")
            if cursor.fetchone()[0]:
                break
        threading.Event().wait(0.1)
    else:
        pytest.fail("the rotation did not wait for the row the worker holds")
    release.set()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    assert Connection.objects.get(pk=row.pk).credentials == {"refresh_token": "written-BY-WORKER-2222"}
    settings.FERNET_KEYS = [K2]
    assert Connection.objects.get(pk=row.pk).credentials == {"refresh_token": "written-BY-WORKER-2222"}


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
    data.update({"name": "Renamed by support"})  # options are read-only in the admin
    assert admin_client.post(change_url, data).status_code == 302
    admin_client.post(reverse("admin:connectors_connection_changelist"),
                      {"action": "test_connection", "_selected_action": [connection.pk]})
    history = admin_client.get(reverse("admin:connectors_connection_history", args=[connection.pk]))
    assert history.status_code == 200
    # both the edit and the action are in the history, in words
    assert "<td>Changed Name.</td>" in history.content.decode()
    assert "<td>Test queued</td>" in history.content.decode()
    assert Connection.objects.get(pk=connection.pk).name == "Renamed by support"
    for response in (changelist, change, history, admin_client.get(change_url),
                     admin_client.get(reverse("admin:tenants_tenant_change", args=[connection.tenant_id])),
                     admin_client.get(reverse("admin:connectors_connection_delete", args=[connection.pk])),
                     admin_client.get(reverse("admin:index"))):
        assert_no_secret(response.content.decode())
    assert Connection.objects.get(pk=connection.pk).credentials == {"password": SECRET}


def test_api_tokens_are_not_listed_in_the_admin_nor_printed(owner):
    from django.urls import NoReverseMatch

    from tenants.services import api_token_create

    with pytest.raises(NoReverseMatch):
        reverse("admin:authtoken_tokenproxy_changelist")
    with pytest.raises(NoReverseMatch):
        reverse("admin:tenants_apitoken_changelist")
    token = api_token_create(user=owner.user)
    assert token.key not in str(token)  # admin delete confirmations and logs print str(obj)


def test_api_responses_never_show_a_secret(owner_api, connection, q_sync):
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
        assert response.status_code in (200, 201, 202), response.content
        assert_no_secret(response.content.decode(), SECRET, PIPEDRIVE_TOKEN)
    assert responses[1].json()["credentials_masked"] == {"password": "••••9876"}
    assert "credentials" not in responses[1].json()
