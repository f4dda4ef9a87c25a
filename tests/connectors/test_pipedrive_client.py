"""The Pipedrive client against the sandbox over loopback HTTP: paging, errors, retries, ambiguity,
the daily budget, OAuth2 refresh (including two workers racing) and secrets staying secret."""

from __future__ import annotations

import logging
import re
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import yaml

from connectors.base import BudgetExhausted, ConnectorError, NotFound
from connectors.models import Connection
from connectors.pipedrive.client import PipedriveClient, oauth_exchange_code, operation_cost
from connectors.pipedrive.limiter import next_midnight_utc
from tests.conftest import free_port
from tests.processes import run_together

# -- helpers shared with the other test_pipedrive_* modules -------------------------------------------


def company_create(sandbox, **settings) -> dict:
    return sandbox.control("POST", "pipedrive/companies", json={"name": "Acme Sales", "plan": "ultimate", **settings})


def pipedrive_connection(tenant, sandbox, company: dict, **options) -> Connection:
    return Connection.objects.create(
        tenant=tenant, system=Connection.System.PIPEDRIVE, name="Pipedrive", base_url=sandbox.url,
        credentials={"api_token": company["api_token"]},
        options={"auth": "api_token", "plan": company["settings"]["plan"], "seats": 1,
                 "company_id": company["company_id"], **options},
    )


def oauth_connection(tenant, sandbox, company: dict, **options) -> Connection:
    """Authorise the company's OAuth app through the sandbox and store the tokens."""
    client = company["oauth_clients"][0]
    connection = Connection.objects.create(
        tenant=tenant, system=Connection.System.PIPEDRIVE, name="Pipedrive (OAuth)", base_url=sandbox.url,
        credentials={"client_secret": client["client_secret"]},
        options={"auth": "oauth", "client_id": client["client_id"], "oauth_url": sandbox.url,
                 "plan": company["settings"]["plan"], "seats": 1, "company_id": company["company_id"], **options},
    )
    resp = requests.get(f"{sandbox.url}/oauth/authorize", allow_redirects=False, timeout=10,
                        params={"client_id": client["client_id"], "redirect_uri": client["redirect_uri"]})
    code = parse_qs(urlsplit(resp.headers["Location"]).query)["code"][0]
    return oauth_exchange_code(connection=connection, code=code, redirect_uri=client["redirect_uri"])


def company_stats(sandbox, company: dict) -> dict:
    return sandbox.control("GET", f"pipedrive/companies/{company['company_id']}/stats")


@pytest.fixture
def fast_retries(settings):
    settings.PIPEDRIVE_RETRY_BASE_S = 0.01
    settings.PIPEDRIVE_RETRY_CAP_S = 0.05


@pytest.fixture
def company(sandbox):
    return company_create(sandbox)


@pytest.fixture
def client(db, tenant, sandbox, company, fast_retries) -> PipedriveClient:
    return PipedriveClient.from_connection(pipedrive_connection(tenant, sandbox, company))


# -- costs ---------------------------------------------------------------------------------------------


def concrete(template: str) -> str:
    def value(match: re.Match) -> str:
        name = match.group(1)
        if name == "field_code":
            return "0123456789abcdef0123456789abcdef01234567"
        if name in ("conversion_id",) or "uuid" in name:
            return "adf21d6e-1234-4b1a-9c1d-1234567890ab"
        return "42"

    return re.sub(r"\{(\w+)\}", value, template)


def test_token_costs_match_the_specs_x_token_cost(shared_dir):
    v2 = yaml.load((shared_dir / "specs/pipedrive/openapi-v2.yml").read_text(), Loader=yaml.CSafeLoader)
    for template, item in v2["paths"].items():
        for method, op in item.items():
            if isinstance(op, dict) and "x-token-cost" in op:
                cost, _ = operation_cost(method, "/api/v2" + concrete(template))
                assert cost == op["x-token-cost"], (method, template)
    v1 = yaml.load((shared_dir / "specs/pipedrive/openapi-v1.yml").read_text(), Loader=yaml.CSafeLoader)
    used = ["/notes", "/notes/{id}", "/users/me", "/webhooks", "/webhooks/{id}", "/organizationFields",
            "/organizationFields/{id}"]
    for template in used:
        for method, op in v1["paths"][template].items():
            if isinstance(op, dict) and "x-token-cost" in op:
                cost, _ = operation_cost(method, "/v1" + concrete(template))
                assert cost == op["x-token-cost"], (method, template)
    assert operation_cost("GET", "/api/v2/itemSearch/field") == (20, True)
    assert operation_cost("GET", "/api/v2/organizations/search") == (20, True)
    assert operation_cost("GET", "/api/v2/organizations") == (10, False)


# -- paging and CRUD -----------------------------------------------------------------------------------


def test_paging_follows_cursors_over_2000_records(client, sandbox, company):
    cid = company["company_id"]
    sandbox.control("POST", f"pipedrive/companies/{cid}/ui/organizations",
                    json=[{"name": f"Org {i:04d}"} for i in range(2_050)])
    pages = list(client.entity_pages("organizations"))
    names = [org["name"] for page in pages for org in page]
    assert len(names) == 2_050 and len(set(names)) == 2_050
    assert [len(page) for page in pages] == [500, 500, 500, 500, 50]
    assert names == sorted(names)  # sort_by=id ascending
    assert company_stats(sandbox, company)["calls_by_operation"]["getOrganizations"] == 5


def test_incremental_paging_with_updated_since(client, sandbox, company):
    cid = company["company_id"]
    sandbox.control("POST", f"pipedrive/companies/{cid}/ui/persons", json=[{"name": f"P{i}"} for i in range(5)])
    sandbox.control("POST", f"pipedrive/companies/{cid}/clock", json={"advance_s": 3600})
    since = datetime.fromisoformat(sandbox.control("POST", f"pipedrive/companies/{cid}/clock", json={})["now"])
    later = client.entity_create("persons", {"name": "Late Person"})
    pages = list(client.entity_pages("persons", updated_since=since, sort_by="update_time"))
    assert [p["id"] for page in pages for p in page] == [later["id"]]


def test_products_changed_since_are_read_newest_first_and_stop_at_the_first_older_one(client, sandbox, company):
    cid = company["company_id"]
    old = sandbox.control("POST", f"pipedrive/companies/{cid}/ui/products", json=[{"name": f"Old {i}"} for i in range(3)])
    sandbox.control("POST", f"pipedrive/companies/{cid}/clock", json={"advance_s": 3600})
    since = datetime.fromisoformat(sandbox.control("POST", f"pipedrive/companies/{cid}/clock", json={})["now"])
    client.entity_update("products", old[1]["id"], {"name": "Old 1 (changed)"})
    new = client.entity_create("products", {"name": "New"})
    pages = list(client.entity_pages("products", updated_since=since))
    assert [p["id"] for page in pages for p in page] == [new["id"], old[1]["id"]]


def test_create_get_update_delete_round_trip(client):
    org = client.entity_create("organizations", {"name": "Round Trip Ltd"})
    assert client.entity_get("organizations", org["id"])["name"] == "Round Trip Ltd"
    assert client.entity_update("organizations", org["id"], {"name": "Round Trip plc"})["name"] == "Round Trip plc"
    assert client.entity_delete("organizations", org["id"]) is True
    assert client.entity_delete("organizations", org["id"]) is False  # a retried DELETE is not an error
    assert client.entity_get("organizations", org["id"]) is None


def test_update_of_a_record_deleted_in_pipedrive_raises_not_found(client):
    with pytest.raises(NotFound) as caught:
        client.entity_update("deals", 999_999, {"title": "Gone"})
    assert caught.value.permanent and caught.value.status == 404
    assert client.entity_get("deals", 999_999) is None


def test_validation_error_is_permanent_with_pipedrives_words(client):
    with pytest.raises(ConnectorError) as caught:
        client.entity_create("organizations", {"name": "Top-level custom field", "a" * 40: "x"})
    exc = caught.value
    assert exc.permanent and exc.status == 400 and not getattr(exc, "ambiguous", False)
    assert "is not allowed for this request" in exc.message
    assert exc.code == "ERR_SCHEMA_VALIDATION_FAILED"


def test_search_by_custom_field_is_exact(client, sandbox, company):
    field = sandbox.control("POST", f"pipedrive/companies/{company['company_id']}/fields/organizations",
                            json={"field_name": "ERP number", "field_type": "varchar"})
    key = field["field_code"]
    client.entity_create("organizations", {"name": "Seventy", "custom_fields": {key: "70"}})
    wanted = client.entity_create("organizations", {"name": "Seven", "custom_fields": {key: "7"}})
    found = client.entity_search_field("organizations", key, "7")
    assert [item["id"] for item in found] == [wanted["id"]]
    assert client.entity_search_field("organizations", key, "") == []


def test_notes_webhooks_and_current_user_use_v1(client, sandbox, company):
    org = client.entity_create("organizations", {"name": "Noted"})
    note = client.note_create(content="<b>ERP</b> rejected the order", org_id=org["id"])
    assert note["org_id"] == org["id"]
    pages = list(client.iter_pages("/v1/notes", params={"org_id": org["id"]}))
    assert [n["id"] for page in pages for n in page] == [note["id"]]
    hook = client.webhook_create(subscription_url="http://127.0.0.1:9/hooks/pipedrive/x/", event_action="change",
                                 event_object="deal", http_auth_user="pipedrive",
                                 http_auth_password="a-long-random-password", name="ml-connector deals")
    assert [w["id"] for w in client.webhook_list()] == [hook["id"]]
    assert client.webhook_delete(hook["id"]) is True
    assert client.webhook_list() == []
    assert client.users_me()["company_id"] == company["company_id"]


def test_test_connection_names_company_user_plan_and_budget(db, tenant, sandbox, fast_retries):
    company = company_create(sandbox, plan="growth", seats=3)
    connection = pipedrive_connection(tenant, sandbox, company, seats=3)
    connection.options.pop("company_id")
    connection.save()
    result = PipedriveClient.from_connection(connection).test_connection()
    assert result.ok, result.message
    assert "Acme Sales" in result.message and "Acme Sales Admin" in result.message and "Growth" in result.message
    assert result.details["company_id"] == company["company_id"]
    assert result.details["company_domain"] == company["company_domain"]
    assert result.details["plan"] == "growth"
    assert result.details["budget_limit"] == 180_000
    assert result.details["budget_remaining"] == 180_000 - 2  # users/me costs 2
    connection.refresh_from_db()
    # Shown, but not kept for the shared limiter key: the sandbox is not Pipedrive's own host.
    assert "company_id" not in connection.options


def test_wrong_api_token_is_an_auth_error(db, tenant, sandbox, company, fast_retries):
    connection = pipedrive_connection(tenant, sandbox, company)
    connection.credentials = {"api_token": "0" * 40}
    connection.save()
    result = PipedriveClient.from_connection(connection).test_connection()
    assert not result.ok and result.details["kind"] == "auth" and result.details["status"] == 401


# -- transient failures, retries and ambiguity ----------------------------------------------------------


def test_injected_5xx_are_retried_for_reads(client, sandbox):
    org = client.entity_create("organizations", {"name": "Flaky"})
    sandbox.control("POST", "pipedrive/faults", json={"error_5xx": 0.4, "seed": 7})
    for _ in range(20):
        assert client.entity_get("organizations", org["id"])["name"] == "Flaky"
    assert sandbox.control("GET", "pipedrive/faults")["counts"]["5xx"] >= 3


def test_reads_give_up_after_a_few_retries_with_a_transient_error(client, sandbox, settings):
    settings.PIPEDRIVE_MAX_RETRIES = 3
    sandbox.control("POST", "pipedrive/faults", json={"error_5xx": 1.0})
    with pytest.raises(ConnectorError) as caught:
        client.entity_get("organizations", 1)
    assert not caught.value.permanent and caught.value.status == 503
    assert sandbox.control("GET", "pipedrive/faults")["counts"]["5xx"] == 4


def test_a_failed_create_is_ambiguous_and_not_retried(client, sandbox, company):
    sandbox.control("POST", "pipedrive/faults", json={"error_5xx": 1.0})
    with pytest.raises(ConnectorError) as caught:
        client.entity_create("organizations", {"name": "Maybe Ltd"})
    exc = caught.value
    assert exc.ambiguous is True and not exc.permanent and exc.status == 503
    assert "may or may not have been created" in exc.message
    assert sandbox.control("GET", "pipedrive/faults")["counts"]["5xx"] == 1  # sent once, never repeated


@pytest.mark.parametrize("mode", ["503", "drop"])
def test_a_create_that_pipedrive_committed_before_failing_is_ambiguous(client, sandbox, company, mode):
    sandbox.control("POST", "pipedrive/commit_faults", json={"fraction": 1.0, "mode": mode})
    with pytest.raises(ConnectorError) as caught:
        client.entity_create("organizations", {"name": "Committed Ltd"})
    assert caught.value.ambiguous is True
    sandbox.control("POST", "pipedrive/commit_faults", json={"fraction": 0})
    records = sandbox.control("GET", f"pipedrive/companies/{company['company_id']}/records/organizations")
    assert [r["name"] for r in records["records"]] == ["Committed Ltd"]  # exactly one: no blind retry


def test_a_create_is_retried_after_429_because_pipedrive_did_not_process_it(client, sandbox, company):
    sandbox.control("POST", "pipedrive/faults", json={"rate_429": 0.3, "seed": 3})
    for i in range(15):
        client.entity_create("organizations", {"name": f"Retried {i}"})
    assert company_stats(sandbox, company)["rate_limited_by_kind"]["injected"] >= 2
    records = sandbox.control("GET", f"pipedrive/companies/{company['company_id']}/records/organizations")
    assert sorted(r["name"] for r in records["records"]) == sorted(f"Retried {i}" for i in range(15))


def test_a_create_is_retried_when_the_connection_was_refused(db, settings):
    settings.PIPEDRIVE_MAX_RETRIES = 2
    slept = []
    client = PipedriveClient(base_url=f"http://127.0.0.1:{free_port()}", api_token="t" * 40, sleep=slept.append)
    with pytest.raises(ConnectorError) as caught:
        client.entity_create("organizations", {"name": "Never sent"})
    assert not getattr(caught.value, "ambiguous", False) and not caught.value.permanent
    assert len(slept) == 2


class StubPipedrive:
    """A loopback server answering every request with one canned response (for what the sandbox
    does not simulate: Cloudflare's HTML 403, a 429 without budget headers)."""

    def __init__(self, status: int, body: bytes, headers: dict[str, str]):
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's naming
                stub.hits += 1
                self.send_response(status)
                for key, value in {"Content-Length": str(len(body)), **headers}.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.hits = 0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_a_firewall_403_page_is_not_parsed_as_json_and_pauses_every_worker(db, settings):
    settings.PIPEDRIVE_MAX_WAIT_S = 5
    stub = StubPipedrive(403, b"<!DOCTYPE html><html><title>Attention Required! | Cloudflare</title></html>",
                         {"Content-Type": "text/html"})
    try:
        client = PipedriveClient(base_url=stub.url, api_token="t" * 40, company_id="firewalled")
        with pytest.raises(ConnectorError) as caught:
            client.entity_get("deals", 1)
        assert "blocked requests after repeated rate-limit errors" in caught.value.message
        assert not caught.value.permanent and caught.value.retry_after >= 60
        other = PipedriveClient(base_url=stub.url, api_token="t" * 40, company_id="firewalled")
        with pytest.raises(ConnectorError):
            other.entity_get("deals", 1)  # held back by the shared pause: Pipedrive never sees it
        assert stub.hits == 1
    finally:
        stub.close()


def test_a_429_asking_for_a_long_pause_pauses_the_flow_like_an_exhausted_budget(db):
    stub = StubPipedrive(429, b'{"success":false,"error":"Rate limit exceeded"}',
                         {"Content-Type": "application/json", "Retry-After": "7200"})
    try:
        client = PipedriveClient(base_url=stub.url, api_token="t" * 40, company_id="long-pause")
        with pytest.raises(BudgetExhausted) as caught:
            client.entity_get("deals", 1)
        assert 7000 < (caught.value.resets_at - datetime.now(UTC)).total_seconds() <= 7200
        assert stub.hits == 1
    finally:
        stub.close()


# -- daily budget ---------------------------------------------------------------------------------------


def test_daily_budget_exhaustion_raises_budget_exhausted_and_nothing_else(db, tenant, sandbox, fast_retries):
    company = company_create(sandbox, plan="lite", topup_tokens=-29_960)  # a 40-token day
    connection = pipedrive_connection(tenant, sandbox, company)
    client = PipedriveClient.from_connection(connection)
    org = client.entity_create("organizations", {"name": "Budget"})  # 5 tokens; headers: limit 40
    connection.refresh_from_db()
    assert connection.options["daily_limit_observed"] == 40
    with pytest.raises(BudgetExhausted) as caught:
        for _ in range(100):
            client.entity_get("organizations", org["id"])
    exc = caught.value
    # midnight by Pipedrive's clock (its Date header, whole seconds), on ours
    assert abs((exc.resets_at - next_midnight_utc(datetime.now(UTC))).total_seconds()) < 5
    assert exc.remaining is not None and exc.remaining <= 1  # a GET costs 1; the reserve (2 % of 40) is 0
    assert company_stats(sandbox, company)["rate_limited"] == 0  # stopped before Pipedrive had to say no
    remaining, limit, resets_at = client.budget()
    assert limit == 40 and remaining <= 1 and resets_at == exc.resets_at


def test_a_budget_429_from_pipedrive_is_not_retried(db, tenant, sandbox, fast_retries):
    company = company_create(sandbox, plan="lite", topup_tokens=-29_980)  # a 20-token day
    spender = PipedriveClient(base_url=sandbox.url, api_token=company["api_token"], plan="lite",
                              company_id="someone-else")  # another integration on the same company
    stale = PipedriveClient.from_connection(pipedrive_connection(tenant, sandbox, company))
    for _ in range(4):
        spender.entity_create("organizations", {"name": "Spent"})
    with pytest.raises(BudgetExhausted) as caught:
        stale.entity_create("organizations", {"name": "Too late"})
    assert caught.value.remaining == 0
    stats = company_stats(sandbox, company)
    assert stats["rate_limited_by_kind"] == {"daily": 1}  # one 429, no retry storm
    with pytest.raises(BudgetExhausted):
        stale.entity_get("organizations", 1)  # the limiter now knows: no request at all
    assert company_stats(sandbox, company)["requests"] == stats["requests"]


# -- OAuth2 ---------------------------------------------------------------------------------------------


@pytest.fixture
def oauth_company(sandbox):
    return company_create(sandbox, plan="growth", oauth_client={"redirect_uri": "http://127.0.0.1/callback"})


def test_oauth_connect_then_refresh_before_expiry(db, tenant, sandbox, oauth_company, fast_retries):
    connection = oauth_connection(tenant, sandbox, oauth_company)
    assert connection.credentials_version == 1 and connection.options["api_domain"] == sandbox.url
    first = dict(connection.credentials)
    connection.credentials = {**first, "expires_at": int(datetime.now(UTC).timestamp()) + 30}  # inside the margin
    connection.save()
    client = PipedriveClient.from_connection(connection)
    assert client.users_me()["company_id"] == oauth_company["company_id"]
    connection.refresh_from_db()
    assert connection.credentials_version == 2
    assert connection.credentials["access_token"] != first["access_token"]
    assert connection.credentials["refresh_token"] != first["refresh_token"]  # the sandbox rotates them


def test_oauth_401_refreshes_once_and_retries(db, tenant, sandbox, oauth_company, fast_retries):
    connection = oauth_connection(tenant, sandbox, oauth_company)
    client = PipedriveClient.from_connection(connection)
    sandbox.control("POST", f"pipedrive/companies/{oauth_company['company_id']}/oauth/expire")
    assert client.users_me()["company_id"] == oauth_company["company_id"]
    connection.refresh_from_db()
    assert connection.credentials_version == 2


def test_oauth_with_a_revoked_refresh_token_is_an_auth_error(db, tenant, sandbox, oauth_company, fast_retries):
    connection = oauth_connection(tenant, sandbox, oauth_company)
    connection.credentials = {**connection.credentials, "refresh_token": "revoked", "expires_at": 0}
    connection.save()
    with pytest.raises(ConnectorError) as caught:
        PipedriveClient.from_connection(connection).users_me()
    assert caught.value.auth and "reconnect Pipedrive" in caught.value.message


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("trigger", ["expiry", "401"])
def test_two_workers_refreshing_at_once_share_one_token(tenant, sandbox, oauth_company, fast_retries, trigger):
    connection = oauth_connection(tenant, sandbox, oauth_company)
    if trigger == "expiry":
        connection.credentials = {**connection.credentials, "expires_at": 0}
        connection.save()
    else:
        sandbox.control("POST", f"pipedrive/companies/{oauth_company['company_id']}/oauth/expire")

    def work(barrier) -> PipedriveClient:
        client = PipedriveClient.from_connection(Connection.objects.get(pk=connection.pk))  # own DB connection
        barrier.wait(timeout=10)
        client.users_me()
        return client

    clients = run_together(work)
    connection.refresh_from_db()
    assert connection.credentials_version == 2  # exactly one refresh
    assert {c.access_token for c in clients} == {connection.credentials["access_token"]}
    for client in clients:
        assert client.users_me()["company_id"] == oauth_company["company_id"]
    # the stored refresh token is the live one: a third worker can still renew
    third = PipedriveClient.from_connection(Connection.objects.get(pk=connection.pk))
    third._refresh(stale_token=third.access_token)
    connection.refresh_from_db()
    assert connection.credentials_version == 3
    assert third.users_me()["company_id"] == oauth_company["company_id"]


# -- secrets --------------------------------------------------------------------------------------------


def test_secrets_never_appear_in_errors_or_logs(db, tenant, sandbox, oauth_company, caplog, fast_retries):
    caplog.set_level(logging.DEBUG)
    connection = oauth_connection(tenant, sandbox, oauth_company)
    secrets = [oauth_company["api_token"], oauth_company["oauth_clients"][0]["client_secret"],
               connection.credentials["access_token"], connection.credentials["refresh_token"], "a-long-random-password"]
    failures: list[ConnectorError] = []
    client = PipedriveClient.from_connection(connection)
    sandbox.control("POST", f"pipedrive/companies/{oauth_company['company_id']}/oauth/expire")
    client.users_me()  # 401 → refresh → retry
    secrets += [client.access_token, client.refresh_token]
    token_client = PipedriveClient(base_url=sandbox.url, api_token=oauth_company["api_token"], plan="growth")
    try:
        token_client.webhook_create(subscription_url="https://example.invalid/hook", event_action="change",
                                    event_object="deal", http_auth_user="u", http_auth_password="a-long-random-password",
                                    name="hook")
    except ConnectorError as exc:
        failures.append(exc)
    sandbox.control("POST", "pipedrive/faults", json={"error_5xx": 1.0})
    for call in (lambda: token_client.entity_get("deals", 1),
                 lambda: token_client.entity_create("deals", {"title": "x"})):
        try:
            call()
        except ConnectorError as exc:
            failures.append(exc)
    sandbox.control("POST", "pipedrive/faults", json={"error_5xx": 0})
    bad = PipedriveClient(base_url=sandbox.url, api_token=oauth_company["api_token"][::-1])
    secrets.append(oauth_company["api_token"][::-1])
    connection.credentials = {**connection.credentials, "refresh_token": connection.credentials["refresh_token"][::-1],
                              "expires_at": 0}
    connection.save()
    secrets.append(connection.credentials["refresh_token"])
    for call in (bad.users_me, PipedriveClient.from_connection(connection).users_me):
        try:
            call()
        except ConnectorError as exc:
            failures.append(exc)
    assert len(failures) == 5
    texts = [caplog.text] + [f"{exc} {exc!r} {exc.args} {exc.__cause__!r}" for exc in failures]
    for secret in secrets:
        for text in texts:
            assert secret not in text
