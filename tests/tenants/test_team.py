"""Team: invitations by email (accept creates or attaches the user; expiry, resend, revoke), roles,
removal, and the last owner who can be neither removed nor demoted — in the portal and the API."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from django.utils import timezone

from tenants.models import Invite, Membership
from tests.factories import MembershipFactory, api_client_for

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a-long-and-unusual-passphrase-42"


def _link(message) -> str:
    return re.search(r"http://testserver(/invite/\S+/)", message.body).group(1)


def _invite(client, email="new@acme.example", role="admin"):
    response = client.post("/team/invite/", {"email": email, "role": role})
    assert response.status_code == 302, response.content.decode()[:2000]
    return _link(mail.outbox[-1])


def test_invite_accept_creates_the_user_with_the_role_and_signs_in(owner_client, tenant):
    link = _invite(owner_client)
    assert mail.outbox[-1].to == ["new@acme.example"] and "Acme Ltd" in mail.outbox[-1].subject
    assert "inv_" in link and Invite.objects.get().token_hash not in link  # only the hash is stored
    owner_client.logout()
    page = owner_client.get(link)
    assert (
        page.status_code == 200
        and "Join Acme Ltd" in page.content.decode()
        and "Admin" in page.content.decode()
    )
    joined = owner_client.post(link, {"password1": NEW_PASSWORD})
    assert joined.status_code == 302 and joined["Location"] == "/dashboard/"
    user = get_user_model().objects.get(email="new@acme.example")
    assert user.is_active and user.check_password(NEW_PASSWORD)
    assert Membership.objects.get(user=user, tenant=tenant).role == "admin"
    assert owner_client.get("/dashboard/").status_code == 200  # signed in as the new member
    owner_client.logout()
    assert owner_client.get(link).status_code == 404  # one use


def test_accept_attaches_an_existing_signed_in_user_and_checks_the_address(owner_client, tenant, other_owner):
    client = Client()  # the invitee's browser
    existing = MembershipFactory(
        tenant=other_owner.tenant, role="viewer", user__email="pat@globex.example"
    ).user
    link = _invite(owner_client, email="pat@globex.example", role="viewer")
    client.force_login(other_owner.user)  # someone else's account: refused, invite still open
    refused = client.post(link)
    assert refused.status_code == 400 and "for pat@globex.example" in refused.content.decode()
    client.force_login(existing)
    assert client.post(link).status_code == 302
    assert Membership.objects.get(user=existing, tenant=tenant).role == "viewer"
    # an account that exists but is not signed in must sign in first (no second account, no takeover)
    link2 = _invite(owner_client, email=other_owner.user.email, role="viewer")
    client.logout()
    page = client.post(link2, {"password1": NEW_PASSWORD})
    assert page.status_code == 400 and "sign in first" in page.content.decode()
    assert not Membership.objects.filter(user=other_owner.user, tenant=tenant).exists()


def test_expired_revoked_and_resent_links(owner_client):
    client = Client()
    link = _invite(owner_client, role="viewer")
    invite = Invite.objects.get()
    Invite.objects.filter(pk=invite.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    assert client.get(link).status_code == 404 and "expired" in client.get(link).content.decode()
    assert "expired" in owner_client.get("/team/").content.decode()
    assert owner_client.post(f"/team/invites/{invite.pk}/resend/").status_code == 302
    fresh = _link(mail.outbox[-1])
    assert fresh != link and client.get(link).status_code == 404 and client.get(fresh).status_code == 200
    assert owner_client.post(f"/team/invites/{invite.pk}/revoke/").status_code == 302
    assert client.get(fresh).status_code == 404
    assert client.post(fresh, {"password1": NEW_PASSWORD}).status_code == 404
    assert not get_user_model().objects.filter(email="new@acme.example").exists()


def test_roles_admins_cannot_touch_owners_and_the_last_owner_stays(client, owner, tenant):
    admin = MembershipFactory(tenant=tenant, role="admin", user__email="admin@acme.example")
    viewer = MembershipFactory(tenant=tenant, role="viewer", user__email="v@acme.example")
    client.force_login(admin.user)
    client.post(f"/team/members/{viewer.pk}/role/", {"role": "admin"})
    assert Membership.objects.get(pk=viewer.pk).role == "admin"
    client.post(f"/team/members/{viewer.pk}/role/", {"role": "owner"})  # only owners grant owner
    client.post(f"/team/members/{owner.pk}/role/", {"role": "viewer"})  # nor change an owner
    client.post(f"/team/members/{owner.pk}/remove/")
    assert (
        Membership.objects.get(pk=viewer.pk).role == "admin"
        and Membership.objects.get(pk=owner.pk).role == "owner"
    )
    assert client.post("/team/invite/", {"email": "boss@acme.example", "role": "owner"}).status_code == 403

    client.force_login(owner.user)
    page = client.post(f"/team/members/{owner.pk}/role/", {"role": "admin"}, follow=True).content.decode()
    assert "last owner cannot be demoted" in page
    client.post(f"/team/members/{owner.pk}/remove/")
    assert Membership.objects.get(pk=owner.pk).role == "owner"
    client.post(f"/team/members/{admin.pk}/role/", {"role": "owner"})  # a second owner: now the first may go
    client.post(f"/team/members/{owner.pk}/remove/")
    assert not Membership.objects.filter(pk=owner.pk).exists()
    assert Membership.objects.filter(tenant=tenant, role="owner").count() == 1


def test_team_api_members_invites_and_the_last_owner(owner, owner_api, tenant, other_owner):
    viewer = MembershipFactory(tenant=tenant, role="viewer", user__email="v@acme.example")
    members = owner_api.get("/api/team/members/").json()
    assert members["count"] == 2 and {m["email"] for m in members["results"]} == {
        "owner@acme.example",
        "v@acme.example",
    }
    assert owner_api.get(f"/api/team/members/{other_owner.pk}/").status_code == 404  # another tenant's
    demote = owner_api.patch(f"/api/team/members/{owner.pk}/", {"role": "viewer"})
    assert (
        demote.status_code == 409
        and demote.json()["code"] == "conflict"
        and "last owner" in demote.json()["detail"]
    )
    assert owner_api.delete(f"/api/team/members/{owner.pk}/").status_code == 409
    assert owner_api.patch(f"/api/team/members/{viewer.pk}/", {"role": "admin"}).json()["role"] == "admin"

    created = owner_api.post("/api/team/invites/", {"email": "NEW@acme.example", "role": "viewer"})
    assert created.status_code == 201 and created.json()["state"] == "pending"
    assert created.json()["email"] == "new@acme.example" and "token" not in str(created.json())
    invite_id = created.json()["id"]
    again = owner_api.post("/api/team/invites/", {"email": "v@acme.example", "role": "viewer"})
    assert again.status_code == 400 and "already a member" in again.json()["fields"]["email"][0]
    assert owner_api.post(f"/api/team/invites/{invite_id}/resend/").status_code == 200
    assert len(mail.outbox) == 2
    assert owner_api.delete(f"/api/team/invites/{invite_id}/").status_code == 204
    assert owner_api.post(f"/api/team/invites/{invite_id}/resend/").status_code == 409
    assert owner_api.get("/api/team/invites/").json()["count"] == 0
    assert owner_api.get("/api/team/invites/?open=false").json()["results"][0]["state"] == "revoked"

    assert owner_api.delete(f"/api/team/members/{viewer.pk}/").status_code == 204
    admin_api = api_client_for(
        MembershipFactory(tenant=tenant, role="admin", user__email="a@acme.example").user
    )
    refused = admin_api.patch(f"/api/team/members/{owner.pk}/", {"role": "admin"})
    assert refused.status_code == 403 and refused.json()["code"] == "permission_denied"


def test_an_invited_account_signs_in_with_its_email_and_password(owner_client):
    client = Client()
    link = _invite(owner_client, email="joiner@acme.example", role="viewer")
    client.post(link, {"password1": NEW_PASSWORD})
    client.logout()
    signed_in = client.post("/login/", {"username": "joiner@acme.example", "password": NEW_PASSWORD})
    assert signed_in.status_code == 302 and signed_in["Location"] == "/dashboard/"
