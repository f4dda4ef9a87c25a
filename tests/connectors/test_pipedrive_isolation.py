"""One tenant must not touch another's Pipedrive budget or field cache (issue 8 §3).

The limiter and the custom-field cache are shared per Pipedrive company. A company id is believed
only from Pipedrive's own hosts; any other base URL (here the sandbox) gets a key of its own
connection, and tenants cannot set the company id (or any unknown option) at all."""

import pytest

from connectors.base import BudgetExhausted, ConnectorError
from connectors.models import Connection
from connectors.pipedrive.client import PipedriveClient
from connectors.pipedrive.fields import FieldResolver
from connectors.pipedrive.keys import base_trusted, company_key_for
from connectors.pipedrive.models import PipedriveBudget, PipedriveFieldCache
from tests import factories
from tests.connectors.test_pipedrive_client import company_create

owner = factories.owner
owner_api = factories.owner_api
owner_client = factories.owner_client

pytestmark = pytest.mark.django_db


def pipedrive_row(tenant, sandbox, company: dict, **options) -> Connection:
    return Connection.objects.create(
        tenant=tenant, system="pipedrive", name="Pipedrive", base_url=sandbox.url,
        options={"auth": "api_token", "plan": "growth", "seats": 1, **options},
        credentials={"api_token": company["api_token"]})


# -- options: only known keys ------------------------------------------------------------------

def test_the_api_refuses_unknown_and_internal_options_and_saves_nothing(owner_api, tenant, sandbox):
    victim_id = 13_000_999
    create = owner_api.post("/api/connections/", {
        "system": "pipedrive", "name": "PD", "base_url": sandbox.url, "credentials": {"api_token": "tok-1234567890"},
        "options": {"auth": "api_token", "plan": "growth", "seats": 1, "company_id": victim_id},
    }, format="json")
    assert create.status_code == 400, create.content
    assert "company_id" in create.json()["fields"]["options"][0] and "cannot be changed" in create.json()["fields"]["options"][0]
    unknown = owner_api.post("/api/connections/", {
        "system": "sage300", "name": "Sage", "base_url": "https://sage.example.com", "credentials": {"password": "x"},
        "options": {"company": "SAMLTD", "user": "ADMIN", "daily_limit": 5, "api_domain": "https://x.pipedrive.com"},
    }, format="json")
    assert unknown.status_code == 400, unknown.content
    assert "Unknown options for Sage 300: api_domain, daily_limit" in unknown.json()["fields"]["options"][0]
    assert not Connection.objects.exists()

    company = company_create(sandbox)
    connection = pipedrive_row(tenant, sandbox, company, api_domain=sandbox.url)
    url = f"/api/connections/{connection.pk}/"
    for options in ({"company_id": victim_id}, {"api_domain": "https://victim.pipedrive.com"},
                    {"oauth_url": "http://127.0.0.1:9/"}, {"plan": "premium", "budget_reserve": 0}):
        refused = owner_api.patch(url, {"options": options}, format="json")
        assert refused.status_code == 400, (options, refused.content)
    connection.refresh_from_db()
    assert connection.options == {"auth": "api_token", "plan": "growth", "seats": 1, "api_domain": sandbox.url}

    # Echoing what the API showed (internal keys unchanged) is fine; they are kept.
    shown = owner_api.get(url).json()["options"]
    echoed = owner_api.patch(url, {"options": {**shown, "plan": "premium"}}, format="json")
    assert echoed.status_code == 200, echoed.content
    connection.refresh_from_db()
    assert connection.options == {"auth": "api_token", "plan": "premium", "seats": 1, "api_domain": sandbox.url}


def test_the_portal_form_cannot_set_the_company_id(owner_client, tenant, sandbox):
    from django.urls import reverse

    response = owner_client.post(reverse("connection_create", kwargs={"system": "pipedrive"}), {
        "name": "Pipedrive", "base_url": sandbox.url, "opt_auth": "api_token", "secret_api_token": "tok-1234567890",
        "opt_plan": "growth", "opt_seats": "1", "opt_company_id": "13000999", "company_id": "13000999",
    })
    assert response.status_code == 302
    assert Connection.objects.get(tenant=tenant).options == {"auth": "api_token", "plan": "growth", "seats": 1}


def test_a_new_url_or_token_forgets_the_learned_company_id(owner_api, tenant, sandbox):
    company = company_create(sandbox)
    connection = pipedrive_row(tenant, sandbox, company, company_id=company["company_id"], daily_limit_observed=40)
    response = owner_api.patch(f"/api/connections/{connection.pk}/", {"credentials": {"api_token": "another-token-1"}},
                               format="json")
    assert response.status_code == 200, response.content
    connection.refresh_from_db()
    assert "company_id" not in connection.options and "daily_limit_observed" not in connection.options


# -- the attack ----------------------------------------------------------------------------------

def test_a_tenant_claiming_anothers_company_id_changes_nothing_for_it(
        db, tenant, other_tenant, owner_api, sandbox, settings):
    settings.PIPEDRIVE_MAX_RETRIES = 0
    victim_company = company_create(sandbox, name="Victim CRM", plan="growth")
    attacker_company = company_create(sandbox, name="Attacker CRM", plan="growth")
    victim_id = victim_company["company_id"]

    # B, the victim: its connection knows its company id; its field definitions are cached.
    victim = pipedrive_row(other_tenant, sandbox, victim_company, company_id=victim_id)
    victim_client = PipedriveClient.from_connection(victim)
    FieldResolver(victim_client).ensure("organizations", "ERP customer number", "varchar")
    victim_cache = {(row.company_key, row.entity): row.fields for row in PipedriveFieldCache.objects.all()}
    assert victim_cache

    # A cannot set B's company id through the API ...
    refused = owner_api.post("/api/connections/", {
        "system": "pipedrive", "name": "Mine", "base_url": sandbox.url,
        "credentials": {"api_token": attacker_company["api_token"]},
        "options": {"auth": "api_token", "plan": "growth", "seats": 1, "company_id": victim_id},
    }, format="json")
    assert refused.status_code == 400
    # ... and even holding it (as a users/me answer from A's own server could claim), A's key is its own.
    attacker = pipedrive_row(tenant, sandbox, attacker_company, company_id=victim_id)
    attacker_client = PipedriveClient.from_connection(attacker)
    assert attacker_client.company_key == f"conn:{attacker.uuid}" != victim_client.company_key

    # A plants field definitions, then sends "0 tokens remaining" through its own client.
    FieldResolver(attacker_client).ensure("organizations", "ERP customer number", "varchar")
    FieldResolver(attacker_client).ensure("organizations", "Planted", "varchar")
    sandbox.control("POST", f"pipedrive/companies/{attacker_company['company_id']}/settings",
                    json={"daily_token_limit": 0})
    with pytest.raises(ConnectorError):
        for _ in range(3):
            attacker_client.users_me()
    assert attacker_client.budget()[0] == 0

    # B: its budget untouched, its calls go through, its cached field keys are its own.
    fresh = PipedriveClient.from_connection(Connection.objects.get(pk=victim.pk))
    try:
        assert fresh.users_me()["company_id"] == victim_id
    except BudgetExhausted as exc:  # what B saw before the fix: its flows paused until midnight
        pytest.fail(f"the victim's budget was exhausted by another tenant: {exc.message}")
    remaining, limit, _ = fresh.budget()
    assert remaining > limit // 2
    assert not PipedriveBudget.objects.filter(key=f"company:{victim_id}", daily_remaining=0).exists()
    for (key, entity), fields in victim_cache.items():
        assert PipedriveFieldCache.objects.get(company_key=key, entity=entity).fields == fields
    assert all("Planted" not in str(fields) for fields in
               PipedriveFieldCache.objects.filter(company_key=victim_client.company_key).values_list("fields",
                                                                                                     flat=True))


# -- key derivation (no traffic) -----------------------------------------------------------------

@pytest.mark.parametrize(("base_url", "oauth", "trusted"), [
    ("https://api.pipedrive.com", False, True),
    ("https://API.pipedrive.com/", False, True),
    ("https://acme.pipedrive.com", True, True),  # an OAuth grant's api_domain
    ("https://acme.pipedrive.com", False, False),  # typed by the tenant: not the official host
    ("http://api.pipedrive.com", False, False),
    ("https://api.pipedrive.com:8443", False, False),
    ("https://api.pipedrive.com.evil.example", True, False),
    ("https://api.pipedrive.com@127.0.0.1", True, False),
    ("https://evilpipedrive.com", True, False),
    ("https://a.b.pipedrive.com", True, False),
    ("http://127.0.0.1:8100", True, False),
])
def test_only_pipedrive_hosts_are_trusted(base_url, oauth, trusted):
    assert base_trusted(base_url, oauth_api_domain=oauth) is trusted


def test_the_company_key_is_used_on_the_official_host_and_nowhere_else(monkeypatch, tenant):
    from connectors import http

    def no_resolving(*args, **kwargs):
        raise AssertionError("no traffic in this test")

    monkeypatch.setattr(http, "url_check", lambda *args, **kwargs: None)
    monkeypatch.setattr("socket.getaddrinfo", no_resolving)
    official = Connection.objects.create(
        tenant=tenant, system="pipedrive", name="PD", base_url="https://api.pipedrive.com",
        options={"auth": "api_token", "plan": "growth", "seats": 1, "company_id": 4242},
        credentials={"api_token": "t" * 40})
    assert PipedriveClient.from_connection(official).company_key == "company:4242"
    oauth = Connection.objects.create(
        tenant=tenant, system="pipedrive", name="PD OAuth", base_url="https://api.pipedrive.com",
        options={"auth": "oauth", "client_id": "cid", "api_domain": "https://acme-sales.pipedrive.com",
                 "company_id": 4242}, credentials={"access_token": "a" * 40, "refresh_token": "r" * 40,
                                                   "client_secret": "s" * 20})
    assert PipedriveClient.from_connection(oauth).company_key == "company:4242"
    for url in ("https://acme-sales.pipedrive.com", "http://127.0.0.1:8100", "https://api.pipedrive.com.evil.example"):
        Connection.objects.filter(pk=official.pk).update(base_url=url)
        official.refresh_from_db()
        assert PipedriveClient.from_connection(official).company_key == f"conn:{official.uuid}"
    assert company_key_for(base_url="https://api.pipedrive.com", company_id=None, oauth_api_domain=False,
                           connection_uuid="u", fallback="token:x") == "token:x"
