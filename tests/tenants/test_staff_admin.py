"""Support staff cannot become superusers (issue 8 §2): user edits stay inside their tenants' reach,
the django-q2 admin is for superusers only, staff actions are recorded with who did them, and the
admin's sign-in locks out like the portal's."""

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.urls import reverse

from syncs.models import SyncRun
from tenants.selectors import LOGIN_FAILURE_LIMIT
from tests.factories import PASSWORD, MembershipFactory, UserFactory, make_record, make_run

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "Hijacked-Password-2026!"


def staff_with(client, tenant, *codenames):
    user = UserFactory(is_staff=True, email="support@example.com")
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    if tenant is not None:
        MembershipFactory(user=user, tenant=tenant, role="viewer")
    client.force_login(user)
    return user


def password_change(client, user):
    return client.post(reverse("admin:auth_user_password_change", args=[user.pk]),
                       {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"})


def test_staff_cannot_reset_a_superusers_password_even_in_their_tenant(client, tenant):
    """The issue's attack: staff with auth.change_user reset a superuser's password and logged in as them."""
    staff_with(client, tenant, "view_user", "change_user")
    root = get_user_model().objects.create_superuser("root@acme.example", "root@acme.example", PASSWORD)
    MembershipFactory(user=root, tenant=tenant, role="owner")

    assert password_change(client, root).status_code in (403, 404)
    assert client.get(reverse("admin:auth_user_password_change", args=[root.pk])).status_code in (403, 404)
    assert client.get(reverse("admin:auth_user_change", args=[root.pk])).status_code == 404
    assert "root@acme.example" not in client.get(reverse("admin:auth_user_changelist")).content.decode()
    root.refresh_from_db()
    assert root.check_password(PASSWORD) and not root.check_password(NEW_PASSWORD)


def test_staff_cannot_edit_a_user_who_also_belongs_to_another_tenant(client, tenant, other_tenant):
    staff_with(client, tenant, "view_user", "change_user")
    both = MembershipFactory(tenant=tenant, user__email="both@example.com").user
    MembershipFactory(user=both, tenant=other_tenant)
    assert password_change(client, both).status_code in (403, 404)
    both.refresh_from_db()
    assert both.check_password(PASSWORD)


def test_staff_cannot_edit_staff_holding_rights_they_lack(client, tenant):
    staff_with(client, tenant, "view_user", "change_user")
    wider = MembershipFactory(tenant=tenant, user__email="wider@example.com", user__is_staff=True).user
    wider.user_permissions.add(Permission.objects.get(codename="add_schedule"))
    assert password_change(client, wider).status_code in (403, 404)
    wider.refresh_from_db()
    assert wider.check_password(PASSWORD)


def test_staff_can_still_reset_a_plain_member_of_their_tenant(client, tenant):
    staff_with(client, tenant, "view_user", "change_user")
    member = MembershipFactory(tenant=tenant, user__email="member@acme.example").user
    response = password_change(client, member)
    assert response.status_code == 302
    member.refresh_from_db()
    assert member.check_password(NEW_PASSWORD)


def test_staff_cannot_grant_rights_to_a_user_they_may_edit(client, tenant):
    staff_with(client, tenant, "view_user", "change_user")
    member = MembershipFactory(tenant=tenant, user__email="member@acme.example").user
    form = client.get(reverse("admin:auth_user_change", args=[member.pk])).content.decode()
    for field in ("is_superuser", "is_staff", "user_permissions", "groups"):
        assert f'name="{field}"' not in form
    client.post(reverse("admin:auth_user_change", args=[member.pk]), {
        "username": member.username, "email": member.email, "is_active": "on", "is_staff": "on",
        "is_superuser": "on", "date_joined_0": "2026-01-01", "date_joined_1": "00:00:00"})
    member.refresh_from_db()
    assert not member.is_staff and not member.is_superuser


def test_groups_are_superuser_only(client, tenant, admin_client):
    staff_with(client, tenant, "view_group", "change_group", "add_group")
    group = Group.objects.create(name="support")
    assert client.get(reverse("admin:auth_group_changelist")).status_code == 403
    assert client.get(reverse("admin:auth_group_change", args=[group.pk])).status_code == 403
    assert admin_client.get(reverse("admin:auth_group_change", args=[group.pk])).status_code == 200


@pytest.mark.parametrize("url", [
    "admin:django_q_schedule_changelist", "admin:django_q_schedule_add", "admin:django_q_success_changelist",
    "admin:django_q_failure_changelist", "admin:django_q_ormq_changelist",
])
def test_django_q_admin_is_for_superusers_only(client, tenant, admin_client, url):
    codenames = [p.codename for p in Permission.objects.filter(content_type__app_label="django_q")]
    staff_with(client, tenant, *codenames)
    assert client.get(reverse(url)).status_code == 403
    assert "django_q" not in client.get(reverse("admin:index")).content.decode()
    assert admin_client.get(reverse(url)).status_code == 200


def test_staff_cannot_schedule_a_dotted_function(client, tenant):
    from django_q.models import Schedule

    codenames = [p.codename for p in Permission.objects.filter(content_type__app_label="django_q")]
    staff_with(client, tenant, *codenames)
    response = client.post(reverse("admin:django_q_schedule_add"), {
        "func": "os.system", "args": "'touch /tmp/pwned'", "schedule_type": "O", "repeats": "-1"})
    assert response.status_code == 403
    assert not Schedule.objects.filter(func="os.system").exists()


def test_staff_pause_and_resume_are_recorded_with_who_did_them(client, tenant, flow):
    staff = staff_with(client, tenant, "view_flow", "change_flow")
    client.post(reverse("admin:syncs_flow_changelist"), {"action": "pause_flows", "_selected_action": [flow.pk]})
    client.post(reverse("admin:syncs_flow_changelist"), {"action": "resume_flows", "_selected_action": [flow.pk]})
    entries = LogEntry.objects.filter(object_id=str(flow.pk), content_type__model="flow").order_by("id")
    assert [(e.user_id, e.get_change_message()) for e in entries] == [(staff.pk, "Paused"), (staff.pk, "Resumed")]
    history = client.get(reverse("admin:syncs_flow_history", args=[flow.pk])).content.decode()
    assert "support@example.com" in history and "Paused" in history


def test_staff_replay_is_recorded_with_who_asked(client, tenant, flow):
    """Queued (no worker runs here): the replay run exists at once, with who asked, in the admin."""
    staff = staff_with(client, tenant, "view_syncrecord", "view_syncrun")
    failed = make_record(make_run(flow), "C1", outcome="failed", error_kind="permanent", error_message="No name")
    client.post(reverse("admin:syncs_syncrecord_changelist"),
                {"action": "replay_records", "_selected_action": [failed.pk]})
    replay = SyncRun.objects.get(trigger="replay")
    assert replay.status == "queued" and replay.requested_by == staff
    assert LogEntry.objects.filter(user=staff, object_id=str(replay.pk), content_type__model="syncrun").exists()
    listing = client.get(reverse("admin:syncs_syncrun_changelist")).content.decode()
    assert "support@example.com" in listing


def test_staff_connection_test_is_recorded_with_who_asked(client, tenant, connection):
    staff = staff_with(client, tenant, "view_connection", "change_connection")
    client.post(reverse("admin:connectors_connection_changelist"),
                {"action": "test_connection", "_selected_action": [connection.pk]})
    entry = LogEntry.objects.get(object_id=str(connection.pk), content_type__model="connection")
    assert entry.user == staff and "Test" in entry.get_change_message()


# -- /admin/login/ throttling ---------------------------------------------------------------------

def test_admin_login_locks_out_after_repeated_failures_even_with_the_right_password(client):
    UserFactory(email="staff@example.com", is_staff=True, is_superuser=True)
    url = reverse("admin:login")
    for _ in range(LOGIN_FAILURE_LIMIT):
        client.post(url, {"username": "staff@example.com", "password": "wrong", "next": "/admin/"})
    locked = client.post(url, {"username": "staff@example.com", "password": PASSWORD, "next": "/admin/"})
    assert "Too many failed sign-in attempts" in locked.content.decode()
    assert not locked.wsgi_request.user.is_authenticated
    assert client.get(reverse("admin:index")).status_code == 302  # still signed out

    from django.core.cache import cache

    cache.clear()  # the window passed
    ok = client.post(url, {"username": "staff@example.com", "password": PASSWORD, "next": "/admin/"})
    assert ok.status_code == 302 and ok.wsgi_request.user.is_authenticated


def test_portal_and_admin_failures_count_against_the_same_lock(client):
    UserFactory(email="staff@example.com", is_staff=True, is_superuser=True)
    for _ in range(LOGIN_FAILURE_LIMIT):
        client.post(reverse("login"), {"username": "staff@example.com", "password": "wrong"})
    locked = client.post(reverse("admin:login"), {"username": "STAFF@example.com", "password": PASSWORD})
    assert "Too many failed sign-in attempts" in locked.content.decode()


