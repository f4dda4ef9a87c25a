import pytest
from django.urls import reverse

from connectors.models import Connection
from tests.factories import ConnectionFactory

pytestmark = pytest.mark.django_db


def create_url(system):
    return reverse("connection_create", kwargs={"system": system})


def test_system_picker_lists_every_system(owner_client):
    page = owner_client.get(reverse("connection_system_pick")).content.decode()
    for system in Connection.System.values:
        assert create_url(system) in page


@pytest.mark.parametrize("system, fields", [
    ("sage300", ["opt_company", "opt_user", "secret_password"]),
    ("pipedrive", ["opt_auth", "secret_api_token", "opt_client_id", "secret_client_secret", "opt_plan", "opt_seats"]),
    ("sap_b1", ["opt_company_db", "opt_user", "secret_password"]),
    ("syspro", ["opt_company_id", "opt_operator", "secret_password", "secret_company_password"]),
    ("ifs", ["opt_namespace", "opt_client_id", "secret_client_secret"]),
    ("s4hana", ["opt_client_id", "secret_client_secret", "opt_auth", "opt_company"]),
])
def test_create_form_has_the_systems_fields(owner_client, system, fields):
    page = owner_client.get(create_url(system)).content.decode()
    for field in fields:
        assert f'name="{field}"' in page
    assert 'name="tls_ca_bundle"' in page and 'name="tls_pinned_sha256"' in page


def test_unknown_system_is_404(owner_client):
    assert owner_client.get(create_url("dynamics")).status_code == 404


def test_create_sage300_connection(owner_client, tenant):
    response = owner_client.post(create_url("sage300"), {
        "name": "Sage UK", "base_url": "https://sage.example.com/Sage300WebApi/v1.0",
        "opt_company": "SAMLTD", "opt_user": "ADMIN", "secret_password": "portal-SECRET-1234",
    })
    connection = Connection.objects.get(tenant=tenant)
    assert response.status_code == 302
    assert response.url == reverse("connection_detail", kwargs={"id": connection.pk})
    assert connection.options == {"company": "SAMLTD", "user": "ADMIN"}
    assert connection.credentials == {"password": "portal-SECRET-1234"}


def test_create_shows_field_errors(owner_client):
    response = owner_client.post(create_url("sap_b1"), {"name": "", "base_url": "javascript:alert(1)"})
    assert response.status_code == 200
    content = response.content.decode()
    assert "must start with http:// or https://" in content
    assert "Company database is required." in content
    assert "Password is required." in content
    assert not Connection.objects.exists()


def test_edit_with_blank_secret_keeps_the_stored_one(owner_client, connection):
    url = reverse("connection_update", kwargs={"id": connection.pk})
    form = owner_client.get(url).content.decode()
    assert 'placeholder="stored: ••••9876"' in form
    response = owner_client.post(url, {
        "name": "Renamed", "base_url": connection.base_url, "opt_company": "SAMINC", "opt_user": "ADMIN",
        "secret_password": "",
    })
    assert response.status_code == 302
    connection.refresh_from_db()
    assert (connection.name, connection.options["company"]) == ("Renamed", "SAMINC")
    assert connection.credentials == {"password": "s3cret-Sage-PASSWORD-9876"}

    owner_client.post(url, {"name": "Renamed", "base_url": connection.base_url, "opt_company": "SAMINC",
                            "opt_user": "ADMIN", "secret_password": "brand-NEW-secret-0000"})
    connection.refresh_from_db()
    assert connection.credentials == {"password": "brand-NEW-secret-0000"}


def test_delete_needs_a_post_confirmation(owner_client, connection):
    url = reverse("connection_delete", kwargs={"id": connection.pk})
    assert "Yes, delete it" in owner_client.get(url).content.decode()
    assert Connection.objects.filter(pk=connection.pk).exists()
    response = owner_client.post(url, follow=True)
    assert not Connection.objects.filter(pk=connection.pk).exists()
    assert "Deleted “Acme Sage”." in response.content.decode()


def test_test_button_shows_a_plain_result(owner_client, tenant, q_sync):
    connection = ConnectionFactory(tenant=tenant, system="ifs",
                                   options={"namespace": "acme", "client_id": "cid"},
                                   credentials={"client_secret": "ifs-SECRET-value-4242"})
    url = reverse("connection_ping", kwargs={"id": connection.pk})
    assert owner_client.get(url).status_code == 405
    page = owner_client.post(url, follow=True).content.decode()
    assert "Not working</strong> — Cannot reach IFS Cloud" in page  # the factory's discard port
    assert "Traceback" not in page and "ifs-SECRET-value" not in page
    fragment = owner_client.post(url, HTTP_HX_REQUEST="true")
    assert fragment.status_code == 200
    assert 'id="ping-result"' in fragment.content.decode() and "<html" not in fragment.content.decode()


def test_viewer_reads_but_cannot_change(viewer_client, connection):
    assert viewer_client.get(reverse("connection_list")).status_code == 200
    detail = viewer_client.get(reverse("connection_detail", kwargs={"id": connection.pk}))
    assert detail.status_code == 200 and "Test connection" not in detail.content.decode()
    for url in (reverse("connection_system_pick"), create_url("sage300"),
                reverse("connection_update", kwargs={"id": connection.pk}),
                reverse("connection_delete", kwargs={"id": connection.pk})):
        assert viewer_client.get(url).status_code == 403, url
    assert viewer_client.post(reverse("connection_delete", kwargs={"id": connection.pk})).status_code == 403
    assert viewer_client.post(reverse("connection_ping", kwargs={"id": connection.pk})).status_code == 403
    assert Connection.objects.filter(pk=connection.pk).exists()


def test_anonymous_is_sent_to_login(client, connection):
    response = client.get(reverse("connection_list"))
    assert response.status_code == 302 and response.url.startswith(reverse("login"))
