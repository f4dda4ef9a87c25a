"""Tenant A never sees tenant B's connections: ORM selectors, portal, API and admin."""

import pytest
from django.contrib.auth.models import Permission
from django.http import Http404
from django.urls import reverse

from connectors.models import Connection
from connectors.selectors import connection_get, connection_list
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


# -- ORM selectors --------------------------------------------------------------------------

def test_selectors_only_return_the_tenants_own_connections(tenant, connection, other_connection):
    assert list(connection_list(tenant=tenant)) == [connection]
    assert connection_get(tenant=tenant, id=connection.pk) == connection
    with pytest.raises(Http404):
        connection_get(tenant=tenant, id=other_connection.pk)
    with pytest.raises(Http404):
        connection_get(tenant=tenant, id="not-a-number")


def test_selectors_without_a_tenant_return_nothing(connection):
    assert list(connection_list(tenant=None)) == []
    with pytest.raises(Http404):
        connection_get(tenant=None, id=connection.pk)


# -- portal ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name, method", [
    ("connection_detail", "get"), ("connection_update", "get"), ("connection_update", "post"),
    ("connection_delete", "get"), ("connection_delete", "post"), ("connection_ping", "post"),
])
def test_portal_returns_404_for_another_tenants_connection(owner_client, other_connection, name, method):
    url = reverse(name, kwargs={"id": other_connection.pk})
    response = getattr(owner_client, method)(url, {"name": "hijacked"} if method == "post" else None)
    assert response.status_code == 404
    other_connection.refresh_from_db()
    assert other_connection.name == "Globex Secret Sage"
    assert other_connection.last_ping_at is None


def test_portal_lists_only_the_tenants_own_connections(owner_client, connection, other_connection):
    for url in (reverse("connection_list"), reverse("dashboard")):
        page = owner_client.get(url).content.decode()
        assert "Acme Sage" in page
        assert "Globex Secret Sage" not in page


def test_portal_user_without_a_tenant_gets_no_data(client, other_connection):
    client.force_login(UserFactory())
    response = client.get(reverse("connection_list"))
    assert response.status_code == 403
    assert "Globex" not in response.content.decode()


# -- API ------------------------------------------------------------------------------------

def test_api_returns_404_for_another_tenants_connection(owner_api, connection, other_connection):
    detail = f"/api/connections/{other_connection.pk}/"
    assert owner_api.get(detail).status_code == 404
    assert owner_api.patch(detail, {"name": "hijacked"}, format="json").status_code == 404
    assert owner_api.put(detail, {"name": "hijacked"}, format="json").status_code == 404
    assert owner_api.post(f"{detail}ping/").status_code == 404
    assert owner_api.delete(detail).status_code == 404
    assert Connection.objects.filter(pk=other_connection.pk, name="Globex Secret Sage").exists()
    listed = owner_api.get("/api/connections/").json()
    assert [c["id"] for c in listed["results"]] == [connection.pk]


def test_api_user_without_a_tenant_is_refused(other_connection):
    from tests.factories import api_client_for

    api = api_client_for(UserFactory())
    assert api.get("/api/connections/").status_code == 403
    assert api.get(f"/api/connections/{other_connection.pk}/").status_code == 403


# -- admin ----------------------------------------------------------------------------------

def staff_client(client, *, tenant=None):
    user = UserFactory(is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(
        content_type__app_label__in=["connectors", "tenants"],
        codename__in=["view_connection", "change_connection", "delete_connection", "add_connection",
                      "view_tenant", "change_tenant", "view_membership", "change_membership"],
    ))
    if tenant is not None:
        MembershipFactory(user=user, tenant=tenant, role="viewer")
    client.force_login(user)
    client.staff_user = user
    return client


def admin_change_urls(connection):
    return [reverse(f"admin:connectors_connection_{view}", args=[connection.pk]) for view in ("change", "history", "delete")]


def test_staff_scoped_to_nothing_sees_no_connections(client, connection, other_connection):
    staff = staff_client(client)
    page = staff.get(reverse("admin:connectors_connection_changelist"))
    assert page.status_code == 200
    content = page.content.decode()
    assert "Acme Sage" not in content and "Globex Secret Sage" not in content
    assert "0 connections" in content
    for url in admin_change_urls(connection) + admin_change_urls(other_connection):
        assert staff.get(url).status_code == 404, url
    tenants_page = staff.get(reverse("admin:tenants_tenant_changelist")).content.decode()
    assert "Acme Ltd" not in tenants_page and "Globex" not in tenants_page


def test_staff_of_tenant_a_sees_only_tenant_a(client, tenant, other_tenant, connection, other_connection):
    staff = staff_client(client, tenant=tenant)
    content = staff.get(reverse("admin:connectors_connection_changelist")).content.decode()
    assert "Acme Sage" in content and "Globex Secret Sage" not in content
    # The tenant list filter offers only visible tenants.
    assert "Globex" not in content

    for url in admin_change_urls(connection):
        assert staff.get(url).status_code == 200, url
    for url in admin_change_urls(other_connection):
        assert staff.get(url).status_code == 404, url
    assert staff.post(admin_change_urls(other_connection)[0], {"name": "hijacked"}).status_code == 404
    assert staff.post(admin_change_urls(other_connection)[2], {"post": "yes"}).status_code == 404

    # Search does not reach across tenants either.
    searched = staff.get(reverse("admin:connectors_connection_changelist"), {"q": "Globex"}).content.decode()
    assert "Globex Secret Sage" not in searched

    # The tenant dropdown of the add form lists only the staff member's tenants.
    add_form = staff.get(reverse("admin:connectors_connection_add")).content.decode()
    assert "Acme Ltd" in add_form and "Globex" not in add_form

    # Tenants and memberships are scoped the same way.
    tenants_page = staff.get(reverse("admin:tenants_tenant_changelist")).content.decode()
    assert "Acme Ltd" in tenants_page and "Globex" not in tenants_page
    assert staff.get(reverse("admin:tenants_tenant_change", args=[other_tenant.pk])).status_code == 404


def test_staff_bulk_action_cannot_touch_another_tenant(client, tenant, connection, other_connection):
    staff = staff_client(client, tenant=tenant)
    staff.post(reverse("admin:connectors_connection_changelist"), {
        "action": "pause_connection", "_selected_action": [connection.pk, other_connection.pk],
    })
    connection.refresh_from_db()
    other_connection.refresh_from_db()
    assert connection.status == Connection.Status.PAUSED
    assert other_connection.status == Connection.Status.NEW
    staff.post(reverse("admin:connectors_connection_changelist"), {
        "action": "delete_selected", "_selected_action": [other_connection.pk], "post": "yes",
    })
    assert Connection.objects.filter(pk=other_connection.pk).exists()


def test_staff_cannot_move_a_connection_to_another_tenant(client, tenant, other_tenant):
    staff = staff_client(client, tenant=tenant)
    response = staff.post(reverse("admin:connectors_connection_add"), {
        "tenant": other_tenant.pk, "system": "sage300", "name": "Planted", "base_url": "https://x.example",
        "status": "new", "options": "{}",
    })
    assert response.status_code == 200  # form error: not a valid choice
    assert not Connection.objects.filter(name="Planted").exists()


def test_superuser_sees_every_tenant(admin_client, connection, other_connection):
    content = admin_client.get(reverse("admin:connectors_connection_changelist")).content.decode()
    assert "Acme Sage" in content and "Globex Secret Sage" in content
    assert admin_client.get(admin_change_urls(other_connection)[0]).status_code == 200


def test_staff_of_two_tenants_sees_both_once(client, tenant, other_tenant, connection, other_connection):
    staff = staff_client(client, tenant=tenant)
    MembershipFactory(user=staff.staff_user, tenant=other_tenant, role="viewer")
    content = staff.get(reverse("admin:connectors_connection_changelist")).content.decode()
    assert content.count(">Acme Sage<") == 1
    assert content.count(">Globex Secret Sage<") == 1


def test_staff_see_only_their_tenants_users(client, tenant, other_tenant, owner, other_owner):
    staff = staff_client(client, tenant=tenant)
    staff.staff_user.user_permissions.add(*Permission.objects.filter(codename__in=["view_user", "change_user"]))
    content = staff.get(reverse("admin:auth_user_changelist")).content.decode()
    assert "owner@acme.example" in content and "owner@globex.example" not in content
    assert staff.get(reverse("admin:auth_user_change", args=[other_owner.user.pk])).status_code == 404
    form = staff.get(reverse("admin:auth_user_change", args=[owner.user.pk])).content.decode()
    assert 'name="is_superuser"' not in form


def test_staff_can_bulk_delete_their_own_tenants_rows(client, tenant, connection):
    staff = staff_client(client, tenant=tenant)
    staff.post(reverse("admin:connectors_connection_changelist"), {
        "action": "delete_selected", "_selected_action": [connection.pk], "post": "yes",
    })
    assert not Connection.objects.filter(pk=connection.pk).exists()
