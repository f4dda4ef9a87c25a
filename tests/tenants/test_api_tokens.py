"""API tokens (issue 8 §6): stored hashed, listed and revoked on the portal, revoked by a password change."""

import pytest
from django.core import mail
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection as db
from django.urls import reverse
from rest_framework.test import APIClient

from tenants.models import ApiToken
from tenants.services import api_token_create
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


def api_with(key: str) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return api


def test_the_database_holds_no_plaintext_token(owner_client, owner):
    created = owner_client.post(reverse("api_token"), {"name": "ERP job"})
    key = created.context["new_key"]
    assert key and key in created.content.decode()
    assert api_with(key).get("/api/connections/").status_code == 200
    with db.cursor() as cursor:
        cursor.execute("SELECT * FROM tenants_apitoken")
        rows = cursor.fetchall()
    assert len(rows) == 1
    assert not any(key in str(value) or key[12:] in str(value) for value in rows[0])
    assert key not in str(ApiToken.objects.get())
    later = owner_client.get(reverse("api_token")).content.decode()
    assert key not in later and key[:12] in later and "ERP job" in later


def test_the_portal_lists_tokens_with_created_and_last_used(owner_client, owner):
    token = api_token_create(user=owner.user, name="nightly")
    page = owner_client.get(reverse("api_token")).content.decode()
    assert "nightly" in page and "never" in page
    api_with(token.key).get("/api/connections/")
    token.refresh_from_db()
    assert token.last_used is not None


def test_a_revoked_token_is_401(owner_client, owner):
    keep = api_token_create(user=owner.user, name="keep")
    revoke = api_token_create(user=owner.user, name="revoke")
    assert api_with(revoke.key).get("/api/connections/").status_code == 200
    response = owner_client.post(reverse("api_token_revoke", kwargs={"id": revoke.pk}), follow=True)
    assert "Token revoked" in response.content.decode()
    assert api_with(revoke.key).get("/api/connections/").status_code == 401
    assert api_with(keep.key).get("/api/connections/").status_code == 200


def test_a_user_cannot_revoke_someone_elses_token(owner_client, other_owner):
    theirs = api_token_create(user=other_owner.user)
    owner_client.post(reverse("api_token_revoke", kwargs={"id": theirs.pk}))
    assert api_with(theirs.key).get("/api/connections/").status_code == 200


def test_a_password_reset_revokes_every_token(client, owner):
    tokens = [api_token_create(user=owner.user) for _ in range(2)]
    client.post(reverse("password_reset"), {"email": owner.user.email})
    link = next(line for line in mail.outbox[-1].body.splitlines() if "/password-reset/" in line)
    form = client.get(link.split("testserver", 1)[1], follow=True)
    client.post(form.redirect_chain[-1][0], {"new_password1": "Fresh-Meadow-Window-88",
                                             "new_password2": "Fresh-Meadow-Window-88"})
    owner.user.refresh_from_db()
    assert owner.user.check_password("Fresh-Meadow-Window-88")
    for token in tokens:
        assert api_with(token.key).get("/api/connections/").status_code == 401


def test_a_password_change_anywhere_revokes_tokens_but_a_sign_in_does_not(client, owner):
    token = api_token_create(user=owner.user)
    assert client.post(reverse("login"), {"username": owner.user.email, "password": PASSWORD}).status_code == 302
    assert api_with(token.key).get("/api/connections/").status_code == 200
    owner.user.set_password("Another-Good-Password-7")
    owner.user.save()
    assert api_with(token.key).get("/api/connections/").status_code == 401


def test_inactive_users_tokens_are_refused(owner):
    token = api_token_create(user=owner.user)
    owner.user.is_active = False
    owner.user.save()
    assert api_with(token.key).get("/api/connections/").status_code == 401


def test_demo_seed_refuses_without_debug(settings, tenant):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="only runs in development"):
        call_command("demo_seed", "--sandbox", "http://127.0.0.1:9")
    from django.contrib.auth import get_user_model

    assert not get_user_model().objects.filter(username="demo@example.com").exists()
