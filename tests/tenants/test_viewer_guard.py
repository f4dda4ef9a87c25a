"""Viewers change nothing: every URL pattern of the project is walked, portal and API, and every write
a viewer sends is refused with 403 and leaves the database as it was. A new view or endpoint that
forgets the guard fails here, unless it is listed below with its reason."""

from __future__ import annotations

import re

import pytest
from django.apps import apps
from django.urls import URLPattern, URLResolver, get_resolver

from alerts.models import Alert
from tenants.models import Membership
from tenants.services import api_token_create
from tenants.team import invite_create
from tests.factories import api_client_for, make_record, make_run

pytestmark = pytest.mark.django_db

# URL names a viewer may POST to, and why. Nothing else.
NOT_TENANT_DATA = {
    "login",
    "logout",
    "signup",
    "signup_sent",
    "signup_activate",
    "password_reset",
    "password_reset_done",
    "password_reset_confirm",
    "password_reset_complete",  # the account itself, before or outside a tenant
    "invite_accept",  # joining is done by the invited person, with the emailed token
    "api_token",
    "api_token_revoke",  # the member's own API tokens (a viewer's token reads only)
    "healthz",
    "metrics",  # operations endpoints, no tenant data
    "home",  # only redirects to the dashboard or the sign-in page
}
# Prefixes with their own authentication, tested where they live.
OWN_AUTH = ("admin/", "hooks/")  # staff-only admin (tests/tenants/test_staff_admin.py); Basic-auth webhooks

WRITE_METHODS = ("post", "put", "patch", "delete")


def _patterns(resolver=None, prefix=""):
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from _patterns(entry, route)
        elif isinstance(entry, URLPattern):
            yield route, entry


def _url(route: str, ids: dict[str, int], uuid: str) -> str:
    """A concrete URL for a route: ids of this tenant's real objects, chosen by the route's first segment."""
    segment = route.removeprefix("api/").split("/")[0]
    object_id = ids.get(segment, 1)

    def fill(match):
        converter = match.group(1) or "str"
        return {"int": str(object_id), "uuid": uuid, "slug": "sage300"}.get(converter, "run")

    path = re.sub(r"<(?:(\w+):)?\w+>", fill, route)
    return "/" + path.lstrip("^").rstrip("$").replace("\\Z", "")


def _snapshot() -> dict:
    """Every row of the product's own tables (a test database holds a few dozen)."""
    return {
        model._meta.label: sorted(map(repr, model.objects.values()))
        for model in apps.get_models()
        if model._meta.app_label in ("tenants", "connectors", "syncs", "alerts")
        and model._meta.model_name != "apitoken"
    }  # last_used is touched by every API read


@pytest.fixture
def world(tenant, owner, viewer, flow, pipedrive):
    run = make_run(flow, status="partial", failed=1)
    record = make_record(run, "BAD1", outcome="failed", error_kind="permanent")
    invite = invite_create(
        tenant=tenant, email="new@acme.example", role="viewer", actor=owner, base_url="http://testserver/"
    )
    Alert.objects.create(
        tenant=tenant,
        subject=f"flow:{flow.pk}",
        kind="flow_failing",
        level="problem",
        title="Flow failing",
        text="x",
    )
    ids = {
        "connections": flow.source_id,
        "flows": flow.pk,
        "runs": run.pk,
        "records": record.pk,
        "team": owner.pk,
        "members": owner.pk,
        "invites": invite.pk,
        "settings": api_token_create(user=owner.user).pk,
    }
    return {"ids": ids, "uuid": str(pipedrive.uuid)}


def test_every_portal_write_is_refused_to_viewers(client, viewer, world):
    client.force_login(viewer.user)
    checked = []
    for route, pattern in _patterns():
        if route.startswith(("api/", *OWN_AUTH)) or pattern.name in NOT_TENANT_DATA:
            continue
        url = _url(route, world["ids"], world["uuid"])
        before = _snapshot()
        response = client.post(url, {"role": "owner", "enabled": "0", "email": "x@example.com", "name": "x"})
        assert response.status_code in (403, 405), (
            f"{pattern.name} ({url}) answered {response.status_code} to a viewer"
        )
        assert _snapshot() == before, f"{pattern.name} ({url}) changed data for a viewer"
        checked.append(pattern.name)
    # The walk really covers the mutating views (a broken walk must not pass by checking nothing).
    assert {
        "connection_update",
        "flow_run_now",
        "record_replay",
        "team_invite",
        "team_member_role",
        "team_member_remove",
        "alert_settings",
        "team_alert_emails",
    } <= set(checked)


def test_every_api_write_is_refused_to_viewers(viewer, world):
    api = api_client_for(viewer.user)
    checked = []
    for route, pattern in _patterns():
        view_class = getattr(pattern.callback, "cls", None)
        if not route.startswith("api/") or view_class is None:
            continue
        url = _url(route, world["ids"], world["uuid"])
        for method in WRITE_METHODS:
            if not hasattr(view_class, method):
                continue
            before = _snapshot()
            response = getattr(api, method)(
                url, {"role": "owner", "name": "x", "email": "x@example.com"}, format="json"
            )
            assert response.status_code == 403, (
                f"{method.upper()} {url} answered {response.status_code} to a viewer"
            )
            assert response.json()["code"] == "permission_denied"
            assert _snapshot() == before, f"{method.upper()} {url} changed data for a viewer"
            checked.append(f"{method.upper()} {pattern.name}")
    assert {
        "POST api-connection-list",
        "DELETE api-connection-detail",
        "POST api-flows",
        "POST api-run-replay",
        "PATCH api-team-member",
        "POST api-team-invites",
        "PUT api-alert-settings",
    } <= set(checked)


def test_viewers_still_read_everything(client, viewer, world):
    client.force_login(viewer.user)
    for name in ("/dashboard/", "/connections/", "/flows/", "/runs/", "/records/", "/team/", "/alerts/"):
        assert client.get(name).status_code == 200, name
    assert Membership.objects.get(pk=viewer.pk).role == "viewer"
