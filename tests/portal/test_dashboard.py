import pytest
from django.urls import reverse

from syncs.models import Flow, SyncRun
from tests.factories import ConnectionFactory

pytestmark = pytest.mark.django_db


def test_empty_dashboard_suggests_the_next_step(owner_client):
    page = owner_client.get(reverse("dashboard")).content.decode()
    assert "Acme Ltd" in page
    assert "Next step" in page and "add a connection" in page
    assert "No connections yet." in page and "No flows yet." in page


def test_dashboard_asks_for_pipedrive_once_an_erp_is_connected(owner_client, connection):
    page = owner_client.get(reverse("dashboard")).content.decode()
    assert "connect Pipedrive" in page
    assert reverse("connection_create", kwargs={"system": "pipedrive"}) in page


def test_dashboard_shows_connections_and_flows_with_their_last_run(owner_client, tenant, connection):
    pipedrive = ConnectionFactory(tenant=tenant, system="pipedrive", name="Acme Pipedrive",
                                  status="ok", last_ping_message="Connected as Acme.")
    flow = Flow.objects.create(tenant=tenant, name="Customers → organizations", kind="customers_to_organizations",
                               source=connection, target=pipedrive)
    SyncRun.objects.create(tenant=tenant, flow=flow, trigger="schedule", status="failed")
    SyncRun.objects.create(tenant=tenant, flow=flow, trigger="manual", status="partial", read=120, created=100,
                           updated=10, unchanged=7, failed=3)
    page = owner_client.get(reverse("dashboard")).content.decode()
    assert "Acme Sage" in page and "Acme Pipedrive" in page and "Working" in page
    assert "Customers → organizations" in page
    assert "Finished with failed records" in page
    assert "120 read, 100 created, 10 updated, 7 unchanged," in page and "3 failed" in page
    assert "Next step" not in page


def test_dashboard_queries_do_not_grow_with_flows(owner_client, tenant, connection, django_assert_max_num_queries):
    for n in range(5):
        flow = Flow.objects.create(tenant=tenant, name=f"Flow {n}", kind="k", source=connection, target=connection)
        SyncRun.objects.create(tenant=tenant, flow=flow, trigger="schedule", status="succeeded")
    with django_assert_max_num_queries(12):
        owner_client.get(reverse("dashboard"))


def test_api_token_page_creates_tokens_and_shows_each_key_once(owner_client, owner):
    url = reverse("api_token")
    assert "You have no API token yet." in owner_client.get(url).content.decode()
    created = owner_client.post(url)
    key = created.context["new_key"]
    assert key and key in created.content.decode()
    later = owner_client.get(url).content.decode()
    assert key not in later and f"{key[:12]}…" in later
    second = owner_client.post(url)
    assert second.context["new_key"] != key
    assert owner.user.api_tokens.count() == 2  # several integrations, each revocable on its own


def test_viewer_can_have_a_read_only_token(viewer_client):
    assert viewer_client.post(reverse("api_token")).status_code == 200


def test_pages_use_no_external_resources(owner_client, connection):
    for url in (reverse("dashboard"), reverse("connection_list"), reverse("api_token"),
                reverse("connection_detail", kwargs={"id": connection.pk})):
        page = owner_client.get(url).content.decode().replace(connection.base_url, "")
        assert "http://" not in page and "https://" not in page, url
        assert "/static/css/app.css" in page and "/static/vendor/htmx/htmx.min.js" in page
