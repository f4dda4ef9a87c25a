"""The Pipedrive simulator behaves like the wire doc says Pipedrive does (real HTTP, no database)."""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

RATE_HEADERS = ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset",
                "x-daily-ratelimit-token-limit", "x-daily-ratelimit-token-remaining")
HASH = re.compile(r"^[0-9a-f]{40}$")


def make_company(sandbox, **settings):
    return sandbox.control("POST", "pipedrive/companies", json={"name": "Acme", **settings})


def client_for(company) -> requests.Session:
    session = requests.Session()
    session.headers["x-api-token"] = company["api_token"]
    return session


@pytest.fixture
def company(sandbox):
    return make_company(sandbox, unlimited=True)


@pytest.fixture
def pd(sandbox, company):
    """A session authenticated as `company`, with `.url(path)`."""
    session = client_for(company)
    session.url = lambda path: sandbox.url + path  # type: ignore[attr-defined]
    return session


def add_field(pd, entity, name, field_type, **extra):
    resp = pd.post(pd.url(f"/api/v2/{entity}Fields"), json={"field_name": name, "field_type": field_type, **extra})
    assert resp.status_code == 200, resp.text
    return resp.json()["data"]


def cid(company) -> int:
    return company["company_id"]


# -- auth ------------------------------------------------------------------------------------------

def test_unknown_or_missing_credentials_get_the_gateway_401(sandbox, company):
    expected = {"success": False, "error": "unauthorized access", "errorCode": 401,
                "error_info": "Please check developers.pipedrive.com"}
    for headers in ({}, {"x-api-token": "nope"}, {"Authorization": "Bearer nope"}):
        resp = requests.get(sandbox.url + "/api/v2/organizations", headers=headers, timeout=10)
        assert resp.status_code == 401 and resp.json() == expected
        assert "x-ratelimit-limit" not in resp.headers


def test_api_token_identifies_the_company(sandbox, company):
    other = make_company(sandbox, name="Globex")
    me = client_for(company).get(sandbox.url + "/v1/users/me").json()["data"]
    assert (me["company_id"], me["company_domain"], me["id"]) == (
        cid(company), company["company_domain"], company["user_id"])
    assert client_for(other).get(sandbox.url + "/api/v1/users/me").json()["data"]["company_id"] == cid(other)
    client_for(company).post(sandbox.url + "/api/v2/organizations", json={"name": "Mine"})
    assert client_for(other).get(sandbox.url + "/api/v2/organizations").json()["data"] == []


def _authorize(sandbox, client, state="xyz"):
    resp = requests.get(sandbox.url + "/oauth/authorize", params={
        "client_id": client["client_id"], "redirect_uri": client["redirect_uri"], "state": state},
        allow_redirects=False, timeout=10)
    assert resp.status_code == 302
    location = urlsplit(resp.headers["Location"])
    assert location._replace(query="").geturl() == client["redirect_uri"]
    query = parse_qs(location.query)
    assert query["state"] == [state]
    return query["code"][0]


def _token(sandbox, client, **form):
    basic = base64.b64encode(f"{client['client_id']}:{client['client_secret']}".encode()).decode()
    return requests.post(sandbox.url + "/oauth/token", data=form, headers={"Authorization": f"Basic {basic}"},
                         timeout=10)


def _me(sandbox, access_token):
    return requests.get(sandbox.url + "/api/v1/users/me", headers={"Authorization": f"Bearer {access_token}"},
                        timeout=10)


def test_oauth_code_flow_refresh_rotation_and_expiry(sandbox):
    company = make_company(sandbox, oauth_client={"redirect_uri": "http://127.0.0.1:9/callback"})
    client = company["oauth_clients"][0]
    code = _authorize(sandbox, client)
    resp = _token(sandbox, client, grant_type="authorization_code", code=code, redirect_uri=client["redirect_uri"])
    assert resp.status_code == 200, resp.text
    tokens = resp.json()
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 3600
    assert tokens["api_domain"] == sandbox.url and tokens["scope"]
    me = _me(sandbox, tokens["access_token"])
    assert me.status_code == 200 and me.json()["data"]["company_id"] == cid(company)
    assert me.headers["x-ratelimit-limit"] == "160"  # growth plan, OAuth app: 4x the API-token burst

    # a code works once
    again = _token(sandbox, client, grant_type="authorization_code", code=code)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"

    # refresh rotates the refresh token and (grace 0 s) kills the old access token at once
    refreshed = _token(sandbox, client, grant_type="refresh_token", refresh_token=tokens["refresh_token"]).json()
    assert refreshed["refresh_token"] != tokens["refresh_token"]
    assert _me(sandbox, tokens["access_token"]).status_code == 401
    assert _me(sandbox, refreshed["access_token"]).status_code == 200
    reused = _token(sandbox, client, grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"

    # bad client credentials
    wrong = dict(client, client_secret="wrong")
    assert _token(sandbox, wrong, grant_type="refresh_token",
                  refresh_token=refreshed["refresh_token"]).status_code == 401

    # access tokens expire on the company clock; codes after 5 minutes
    sandbox.control("POST", f"pipedrive/companies/{cid(company)}/clock", json={"advance_s": 3601})
    assert _me(sandbox, refreshed["access_token"]).status_code == 401
    late_code = _authorize(sandbox, client)
    sandbox.control("POST", f"pipedrive/companies/{cid(company)}/clock", json={"advance_s": 301})
    late = _token(sandbox, client, grant_type="authorization_code", code=late_code)
    assert late.status_code == 400 and late.json()["error"] == "invalid_grant"


def test_oauth_refresh_grace_and_no_rotation_settings(sandbox):
    company = make_company(sandbox, refresh_grace_s=30, rotate_refresh_tokens=False,
                           oauth_client={"redirect_uri": "http://127.0.0.1:9/cb"})
    client = company["oauth_clients"][0]
    first = _token(sandbox, client, grant_type="authorization_code", code=_authorize(sandbox, client)).json()
    second = _token(sandbox, client, grant_type="refresh_token", refresh_token=first["refresh_token"]).json()
    assert second["refresh_token"] == first["refresh_token"]
    assert _me(sandbox, first["access_token"]).status_code == 200  # still inside the grace period
    sandbox.control("POST", f"pipedrive/companies/{cid(company)}/clock", json={"advance_s": 31})
    assert _me(sandbox, first["access_token"]).status_code == 401
    assert _me(sandbox, second["access_token"]).status_code == 200


# -- CRUD and envelopes ----------------------------------------------------------------------------

def test_organization_crud_envelopes_and_soft_delete(pd, sandbox, company):
    created = pd.post(pd.url("/api/v2/organizations"), json={
        "name": "Acme Ltd", "address": {"value": "Narva mnt 5", "locality": "Tallinn"}, "label_ids": [1]})
    assert created.status_code == 200
    body = created.json()
    assert body["success"] is True
    org = body["data"]
    assert org["name"] == "Acme Ltd" and org["owner_id"] == company["user_id"] and org["is_deleted"] is False
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", org["add_time"]) and org["update_time"] == org["add_time"]
    assert org["address"]["locality"] == "Tallinn" and org["address"]["route"] is None
    assert org["custom_fields"] == {} and org["label_ids"] == [1] and isinstance(org["visible_to"], int)

    got = pd.get(pd.url(f"/api/v2/organizations/{org['id']}")).json()
    assert got == {"success": True, "data": org}
    patched = pd.patch(pd.url(f"/api/v2/organizations/{org['id']}"), json={"name": "Acme Group"}).json()["data"]
    assert patched["name"] == "Acme Group" and patched["address"] == org["address"]

    deleted = pd.delete(pd.url(f"/api/v2/organizations/{org['id']}"))
    assert deleted.json() == {"success": True, "data": {"id": org["id"]}}
    missing = pd.get(pd.url(f"/api/v2/organizations/{org['id']}"))
    assert missing.status_code == 404
    assert missing.json() == {"success": False, "error": "Organization not found",
                              "error_info": "Please check developers.pipedrive.com", "data": None,
                              "additional_data": None}
    assert pd.patch(pd.url(f"/api/v2/organizations/{org['id']}"), json={"name": "x"}).status_code == 404
    assert pd.get(pd.url("/api/v2/organizations")).json()["data"] == []
    dump = sandbox.control("GET", f"pipedrive/companies/{cid(company)}/records/organizations")
    assert dump["count"] == 1 and dump["records"][0]["is_deleted"] is True


def test_persons_deals_products_shapes(pd):
    org = pd.post(pd.url("/api/v2/organizations"), json={"name": "Acme"}).json()["data"]
    person = pd.post(pd.url("/api/v2/persons"), json={
        "name": "Mari Maasikas", "org_id": org["id"],
        "emails": [{"value": "mari@example.com", "label": "work"}], "phones": [{"value": "+372 555"}]}).json()["data"]
    assert (person["first_name"], person["last_name"]) == ("Mari", "Maasikas")
    assert person["emails"] == [{"value": "mari@example.com", "primary": True, "label": "work"}]
    assert person["phones"][0]["primary"] is True and person["org_id"] == org["id"]

    deal = pd.post(pd.url("/api/v2/deals"), json={"title": "Big", "value": 100, "currency": "USD",
                                                  "org_id": org["id"], "person_id": person["id"]}).json()["data"]
    assert (deal["status"], deal["value"], deal["currency"], deal["won_time"]) == ("open", 100, "USD", None)
    assert deal["pipeline_id"] and deal["stage_id"]
    won = pd.patch(pd.url(f"/api/v2/deals/{deal['id']}"), json={"status": "won"}).json()["data"]
    assert won["won_time"] and won["close_time"] == won["won_time"]
    missing_org = pd.post(pd.url("/api/v2/deals"), json={"title": "x", "org_id": 999})
    assert missing_org.status_code == 400

    product = pd.post(pd.url("/api/v2/products"), json={"name": "Widget", "code": "W-1",
                                                        "prices": [{"currency": "EUR", "price": 9.5}]})
    assert product.status_code == 201
    product = product.json()["data"]
    assert product["prices"] == [{"product_id": product["id"], "price": 9.5, "currency": "EUR", "cost": 0,
                                  "direct_cost": 0, "notes": None}]
    replaced = pd.patch(pd.url(f"/api/v2/products/{product['id']}"),
                        json={"prices": [{"currency": "USD", "price": 11}]}).json()["data"]
    assert [p["currency"] for p in replaced["prices"]] == ["USD"]  # PATCH replaces the whole array
    default_price = pd.post(pd.url("/api/v2/products"), json={"name": "Plain"}).json()["data"]["prices"]
    assert default_price[0]["price"] == 0
    assert pd.post(pd.url("/api/v2/products"), json={"name": ""}).status_code == 400


def test_deal_products_update_the_deal_value(pd):
    deal = pd.post(pd.url("/api/v2/deals"), json={"title": "D"}).json()["data"]
    product = pd.post(pd.url("/api/v2/products"), json={"name": "P"}).json()["data"]
    base = pd.url(f"/api/v2/deals/{deal['id']}/products")
    line = pd.post(base, json={"product_id": product["id"], "item_price": 10, "quantity": 3})
    assert line.status_code == 201
    line = line.json()["data"]
    assert (line["sum"], line["name"], line["comments"], line["is_enabled"]) == (30, "P", "", True)
    assert pd.get(pd.url(f"/api/v2/deals/{deal['id']}")).json()["data"]["value"] == 30
    patched = pd.patch(f"{base}/{line['id']}", json={"quantity": 5, "discount": 10}).json()["data"]
    assert patched["sum"] == 45
    listed = pd.get(base).json()
    assert [d["id"] for d in listed["data"]] == [line["id"]] and listed["additional_data"]["next_cursor"] is None
    assert pd.delete(f"{base}/{line['id']}").json() == {"success": True, "data": {"id": line["id"]}}
    assert pd.get(base).json()["data"] == []
    assert pd.get(pd.url(f"/api/v2/deals/{deal['id']}")).json()["data"]["value"] == 0
    assert pd.post(base, json={"product_id": product["id"], "item_price": 1}).status_code == 400
    assert pd.patch(f"{base}/999", json={"quantity": 1}).status_code == 404


def test_malformed_json_and_unknown_parameters_are_400(pd):
    resp = pd.post(pd.url("/api/v2/organizations"), data=b"{not json", headers={"Content-Type": "application/json"})
    assert resp.status_code == 400 and resp.json()["success"] is False
    resp = pd.post(pd.url("/api/v2/organizations"), json={"name": "A", "website": "x"})
    assert resp.status_code == 400
    assert resp.json()["error"] == "Validation failed: website: Parameter 'website' is not allowed for this request"
    assert pd.post(pd.url("/api/v2/organizations"), json={"owner_id": "7", "name": "A"}).status_code == 400
    assert pd.post(pd.url("/api/v2/organizations"), json={}).status_code == 400
    assert pd.get(pd.url("/api/v2/nothing-here")).status_code == 404


# -- paging ------------------------------------------------------------------------------------------

def test_cursor_paging_over_2000_records(pd, sandbox, company):
    sandbox.control("POST", f"pipedrive/companies/{cid(company)}/ui/organizations",
                    json=[{"name": f"Org {i:04d}"} for i in range(2000)])
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 500, **({"cursor": cursor} if cursor else {})}
        body = pd.get(pd.url("/api/v2/organizations"), params=params).json()
        seen += [o["id"] for o in body["data"]]
        pages += 1
        cursor = body["additional_data"]["next_cursor"]
        if cursor is None:
            break
        assert isinstance(cursor, str) and len(body["data"]) == 500
    assert pages == 4 and seen == sorted(seen) and len(set(seen)) == 2000
    assert pd.get(pd.url("/api/v2/organizations")).json()["data"].__len__() == 100  # default limit
    assert pd.get(pd.url("/api/v2/organizations"), params={"limit": 501}).status_code == 400
    desc = pd.get(pd.url("/api/v2/organizations"), params={"limit": 3, "sort_direction": "desc"}).json()
    assert [o["id"] for o in desc["data"]] == [2000, 1999, 1998]
    second = pd.get(pd.url("/api/v2/organizations"), params={
        "limit": 3, "sort_direction": "desc", "cursor": desc["additional_data"]["next_cursor"]}).json()
    assert [o["id"] for o in second["data"]] == [1997, 1996, 1995]
    some = pd.get(pd.url("/api/v2/organizations"), params={"ids": "5,3,4000"}).json()["data"]
    assert [o["id"] for o in some] == [3, 5]
    assert pd.get(pd.url("/api/v2/organizations"), params={"cursor": "garbage!"}).status_code == 400


def test_updated_since_and_sort_by_update_time(pd, sandbox, company):
    for name in ("A", "B", "C"):
        pd.post(pd.url("/api/v2/organizations"), json={"name": name})
    clock = sandbox.control("POST", f"pipedrive/companies/{cid(company)}/clock", json={"advance_s": 60})
    pd.patch(pd.url("/api/v2/organizations/2"), json={"name": "B2"})
    since = clock["now"]
    changed = pd.get(pd.url("/api/v2/organizations"), params={"updated_since": since}).json()["data"]
    assert [o["name"] for o in changed] == ["B2"]
    older = pd.get(pd.url("/api/v2/organizations"), params={"updated_until": since}).json()["data"]
    assert [o["name"] for o in older] == ["A", "C"]
    by_update = pd.get(pd.url("/api/v2/organizations"), params={"sort_by": "update_time", "limit": 2}).json()
    assert [o["name"] for o in by_update["data"]] == ["A", "C"]
    rest = pd.get(pd.url("/api/v2/organizations"), params={
        "sort_by": "update_time", "limit": 2, "cursor": by_update["additional_data"]["next_cursor"]}).json()
    assert [o["name"] for o in rest["data"]] == ["B2"] and rest["additional_data"]["next_cursor"] is None
    assert pd.get(pd.url("/api/v2/organizations"), params={"updated_since": "yesterday"}).status_code == 400


# -- custom fields -----------------------------------------------------------------------------------

def test_companies_start_without_custom_fields_and_keys_differ_per_company(sandbox, pd, company):
    standard = pd.get(pd.url("/api/v2/organizationFields")).json()["data"]
    codes = {f["field_code"] for f in standard}
    assert {"name", "address", "owner_id"} <= codes and not any(f["is_custom_field"] for f in standard)
    mine = add_field(pd, "organization", "ERP id", "varchar")
    other = client_for(make_company(sandbox, name="Other"))
    theirs = other.post(sandbox.url + "/api/v2/organizationFields",
                        json={"field_name": "ERP id", "field_type": "varchar"}).json()["data"]
    assert HASH.match(mine["field_code"]) and HASH.match(theirs["field_code"])
    assert mine["field_code"] != theirs["field_code"]
    assert mine["is_custom_field"] is True and mine["options"] is None
    enum = add_field(pd, "organization", "Tier", "enum", options=[{"label": "Gold"}, {"label": "Silver"}])
    assert [o["label"] for o in enum["options"]] == ["Gold", "Silver"]
    assert all(isinstance(o["id"], int) for o in enum["options"])
    assert pd.post(pd.url("/api/v2/organizationFields"), json={"field_name": "X", "field_type": "enum"}).status_code == 400
    assert pd.post(pd.url("/api/v2/organizationFields"), json={"field_name": "X", "field_type": "int"}).status_code == 400
    org = pd.post(pd.url("/api/v2/organizations"), json={"name": "A"}).json()["data"]
    assert org["custom_fields"] == {mine["field_code"]: None, enum["field_code"]: None}
    assert pd.delete(pd.url(f"/api/v2/organizationFields/{mine['field_code']}")).status_code == 200
    assert pd.get(pd.url(f"/api/v2/organizationFields/{mine['field_code']}")).status_code == 404
    # a deleted field is ignored on writes, like Pipedrive does
    ignored = pd.patch(pd.url(f"/api/v2/organizations/{org['id']}"),
                       json={"custom_fields": {mine["field_code"]: "x"}, "name": "B"})
    assert ignored.status_code == 200 and mine["field_code"] not in ignored.json()["data"]["custom_fields"]


def test_top_level_custom_field_key_is_rejected_with_the_real_error(pd):
    field = add_field(pd, "deal", "ERP id", "varchar")
    deal = pd.post(pd.url("/api/v2/deals"), json={"title": "D"}).json()["data"]
    key = field["field_code"]
    resp = pd.patch(pd.url(f"/api/v2/deals/{deal['id']}"), json={key: "E-1"})
    assert resp.status_code == 400
    body = resp.json()
    assert body["success"] is False
    assert body["error"] == f"Validation failed: {key}: Parameter '{key}' is not allowed for this request"
    assert body["code"] == "ERR_SCHEMA_VALIDATION_FAILED"
    ok = pd.patch(pd.url(f"/api/v2/deals/{deal['id']}"), json={"custom_fields": {key: "E-1"}}).json()["data"]
    assert ok["custom_fields"][key] == "E-1"


def test_custom_field_values_are_type_checked(pd):
    f = {name: add_field(pd, "organization", name, field_type, **extra)["field_code"]
         for name, field_type, extra in (
             ("text", "varchar", {}), ("num", "double", {}), ("money", "monetary", {}), ("day", "date", {}),
             ("one", "enum", {"options": [{"label": "a"}, {"label": "b"}]}),
             ("many", "set", {"options": [{"label": "x"}, {"label": "y"}]}), ("where", "address", {}),
             ("who", "people", {}))}
    fields = {x["field_code"]: x for x in pd.get(pd.url("/api/v2/organizationFields")).json()["data"]}
    one_ids = [o["id"] for o in fields[f["one"]]["options"]]
    many_ids = [o["id"] for o in fields[f["many"]]["options"]]
    org = pd.post(pd.url("/api/v2/organizations"), json={"name": "A"}).json()["data"]
    url = pd.url(f"/api/v2/organizations/{org['id']}")

    def patch(value_by_name):
        return pd.patch(url, json={"custom_fields": {f[k]: v for k, v in value_by_name.items()}})

    good = patch({"text": "x" * 255, "num": 1.5, "money": {"value": 10, "currency": "USD"}, "day": "2026-02-28",
                  "one": one_ids[1], "many": many_ids, "where": {"value": "Main St 1"}, "who": 5})
    assert good.status_code == 200, good.text
    custom = good.json()["data"]["custom_fields"]
    assert custom[f["money"]] == {"value": 10, "currency": "USD"} and custom[f["many"]] == many_ids
    assert custom[f["where"]]["value"] == "Main St 1" and custom[f["where"]]["route"] is None
    for bad in ({"text": "x" * 256}, {"text": 5}, {"num": "12"}, {"num": True}, {"money": 10},
                {"money": {"currency": "EUR"}}, {"day": "28.02.2026"}, {"day": "2026-02-30"}, {"one": 999},
                {"one": str(one_ids[0])}, {"many": []}, {"many": [999]}, {"where": "Main St"},
                {"where": {"street": "x"}}, {"who": "5"}):
        resp = patch(bad)
        assert resp.status_code == 400, (bad, resp.text)
        assert resp.json()["error"].startswith("Validation failed: custom_fields.")
    unknown = pd.patch(url, json={"custom_fields": {"f" * 40: "x"}})
    assert unknown.status_code == 400
    cleared = patch({"many": None}).json()["data"]["custom_fields"]
    assert cleared[f["many"]] is None
    labelled = pd.get(url, params={"include_option_labels": "true", "custom_fields": f["one"]}).json()["data"]
    assert labelled["custom_fields"] == {f["one"]: {"id": one_ids[1], "label": "b"}}


# -- search ------------------------------------------------------------------------------------------

def test_search_exact_and_case_rules(pd):
    erp = add_field(pd, "organization", "ERP id", "varchar")["field_code"]
    for name, code in (("Acme Ltd", "K-100"), ("Acme Trading", "K-1001"), ("Other", "k-100")):
        pd.post(pd.url("/api/v2/organizations"), json={"name": name, "custom_fields": {erp: code}})

    def by_field(term, match="exact"):
        body = pd.get(pd.url("/api/v2/itemSearch/field"), params={
            "term": term, "entity_type": "organization", "field": erp, "match": match}).json()
        return sorted(d["id"] for d in body["data"])

    assert by_field("K-100") == [1]  # exact and case sensitive
    assert by_field("k-100") == [3]
    assert by_field("K-10", "beginning") == [1, 2]
    assert by_field("-100", "middle") == [1, 2, 3]

    def search(term, **params):
        body = pd.get(pd.url("/api/v2/organizations/search"), params={"term": term, **params}).json()
        return [i["item"]["id"] for i in body["data"]["items"]]

    assert search("acme ltd", exact_match="true") == [1]  # exact_match is not case sensitive
    assert search("acme", exact_match="true") == []
    assert sorted(search("acme")) == [1, 2]
    assert search("k-100", exact_match="true", fields="custom_fields") == [1, 3]
    assert search("k-100", exact_match="true", fields="name") == []
    assert pd.get(pd.url("/api/v2/organizations/search"), params={"term": "a"}).status_code == 400
    items = pd.get(pd.url("/api/v2/itemSearch"), params={"term": "acme", "limit": 100}).json()["data"]["items"]
    assert {i["item"]["type"] for i in items} == {"organization"}
    assert pd.get(pd.url("/api/v2/itemSearch"), params={"term": "acme", "limit": 101}).status_code == 400


def test_search_index_lags_writes_by_the_configured_delay(pd, sandbox, company):
    sandbox.control("POST", f"pipedrive/companies/{cid(company)}/settings", json={"search_index_delay_s": 30})
    org = pd.post(pd.url("/api/v2/organizations"), json={"name": "Fresh Org"}).json()["data"]

    def found(term):
        body = pd.get(pd.url("/api/v2/organizations/search"), params={"term": term}).json()
        return [(i["item"]["id"], i["item"]["name"]) for i in body["data"]["items"]]

    assert found("Fresh") == []  # not indexed yet ...
    assert pd.get(pd.url(f"/api/v2/organizations/{org['id']}")).status_code == 200  # ... but list/get are current
    sandbox.control("POST", f"pipedrive/companies/{cid(company)}/clock", json={"advance_s": 31})
    assert found("Fresh") == [(org["id"], "Fresh Org")]
    pd.patch(pd.url(f"/api/v2/organizations/{org['id']}"), json={"name": "Renamed Org"})
    assert found("Fresh") == [(org["id"], "Fresh Org")] and found("Renamed") == []  # old values for now
    sandbox.control("POST", f"pipedrive/companies/{cid(company)}/clock", json={"advance_s": 31})
    assert found("Fresh") == [] and found("Renamed") == [(org["id"], "Renamed Org")]


# -- rate limits -------------------------------------------------------------------------------------

def test_every_authenticated_response_carries_the_rate_limit_headers(sandbox):
    company = make_company(sandbox, plan="lite", seats=3)
    pd = client_for(company)
    responses = [
        pd.post(sandbox.url + "/api/v2/organizations", json={"name": "A"}),  # 200
        pd.post(sandbox.url + "/api/v2/products", json={"name": "P"}),  # 201
        pd.post(sandbox.url + "/api/v2/organizations", json={}),  # 400
        pd.get(sandbox.url + "/api/v2/organizations/99"),  # 404
        pd.get(sandbox.url + "/api/v2/nothing"),  # 404, unknown route
        pd.get(sandbox.url + "/v1/users/me"),  # v1
    ]
    for resp in responses:
        missing = [h for h in RATE_HEADERS if h not in resp.headers]
        assert not missing, (resp.status_code, resp.request.url, missing)
    assert responses[0].headers["x-daily-ratelimit-token-limit"] == "90000"  # 30,000 x 1 (lite) x 3 seats
    assert responses[0].headers["x-ratelimit-limit"] == "20"


def test_burst_limit_answers_429_and_rejected_calls_cost_nothing(sandbox):
    company = make_company(sandbox, plan="lite")  # API token: 20 requests per rolling 2 s
    pd = client_for(company)
    results = [pd.get(sandbox.url + "/api/v2/organizations/1") for _ in range(25)]
    statuses = [r.status_code for r in results]
    assert statuses[:20] == [404] * 20 and 429 in statuses[20:]
    assert [r.headers["x-ratelimit-remaining"] for r in results[:3]] == ["19", "18", "17"]
    limited = next(r for r in results if r.status_code == 429)
    body = limited.json()
    assert (body["success"], body["error"], body["errorCode"]) == (False, "Rate limit exceeded", 429)
    assert limited.headers["x-ratelimit-remaining"] == "0"
    assert 1 <= int(limited.headers["x-ratelimit-reset"]) <= 2
    assert int(limited.headers["Retry-After"]) >= 1
    assert int(limited.headers["x-daily-ratelimit-token-remaining"]) > 0
    stats = sandbox.control("GET", f"pipedrive/companies/{cid(company)}/stats")
    admitted = statuses.count(404)
    assert stats["tokens_used_today"] == admitted * 1  # getOrganization costs 1; 429s cost nothing
    assert stats["rate_limited_by_kind"]["burst"] == 25 - admitted
    assert stats["max_2s_window"] == 20 and stats["calls_by_operation"]["getOrganization"] == admitted
    time.sleep(int(limited.headers["x-ratelimit-reset"]) + 0.1)
    assert pd.get(sandbox.url + "/api/v2/organizations/1").status_code == 404


def test_a_company_burst_limit_replaces_the_plans_for_api_tokens(sandbox):
    company = make_company(sandbox, plan="lite", burst_limit=5)  # benchmarks raise it; here it is lowered
    pd = client_for(company)
    statuses = [pd.get(sandbox.url + "/api/v2/organizations/1") for _ in range(7)]
    assert [r.status_code for r in statuses] == [404] * 5 + [429] * 2
    assert statuses[0].headers["x-ratelimit-limit"] == "5"
    assert company["settings"]["burst_limit"] == 5


def test_search_burst_is_10_per_2_seconds(sandbox):
    pd = client_for(make_company(sandbox, plan="ultimate"))
    statuses = [pd.get(sandbox.url + "/api/v2/itemSearch", params={"term": "acme"}) for _ in range(12)]
    assert [r.status_code for r in statuses[:10]] == [200] * 10
    assert statuses[10].status_code == 429 and statuses[10].headers["x-ratelimit-limit"] == "10"
    assert pd.get(sandbox.url + "/api/v2/organizations").status_code == 200  # other calls are unaffected


def test_daily_budget_exhaustion_and_reset_at_midnight(sandbox):
    company = make_company(sandbox, daily_token_limit=25)
    pd = client_for(company)
    sandbox.control("POST", f"pipedrive/companies/{cid(company)}/clock", json={"set": "2026-11-23T23:59:50Z"})
    first = pd.get(sandbox.url + "/api/v2/organizations")  # 10 tokens
    assert first.headers["x-daily-ratelimit-token-remaining"] == "15"
    assert pd.get(sandbox.url + "/api/v2/organizations").status_code == 200  # 5 left
    refused = pd.get(sandbox.url + "/api/v2/organizations")
    assert refused.status_code == 429
    assert refused.headers["x-daily-ratelimit-token-remaining"] == "0"
    assert 1 <= int(refused.headers["Retry-After"]) <= 10  # seconds to midnight
    assert pd.get(sandbox.url + "/api/v2/organizations/1").status_code == 404  # 1 token still fits
    sandbox.control("POST", f"pipedrive/companies/{cid(company)}/clock", json={"advance_s": 11})
    after = pd.get(sandbox.url + "/api/v2/organizations")
    assert after.status_code == 200 and after.headers["x-daily-ratelimit-token-remaining"] == "15"
    stats = sandbox.control("GET", f"pipedrive/companies/{cid(company)}/stats")
    assert stats["rate_limited_by_kind"] == {"daily": 1} and stats["tokens_used_total"] == 31


def test_unlimited_companies_are_never_refused(sandbox):
    pd = client_for(make_company(sandbox, plan="lite", unlimited=True, daily_token_limit=1))
    assert {pd.get(sandbox.url + "/api/v2/organizations").status_code for _ in range(40)} == {200}


def test_injected_429_fault_looks_like_a_burst_limit(sandbox, pd, company):
    sandbox.control("POST", "pipedrive/faults", json={"rate_429": 1.0})
    resp = pd.get(pd.url("/api/v2/organizations"))
    assert resp.status_code == 429 and resp.json()["error"] == "Rate limit exceeded"
    assert all(h in resp.headers for h in (*RATE_HEADERS, "Retry-After"))
    assert resp.headers["x-ratelimit-remaining"] == "0"
    stats = sandbox.control("GET", f"pipedrive/companies/{cid(company)}/stats")
    assert stats["tokens_used_today"] == 0 and stats["rate_limited_by_kind"] == {"injected": 1}


def test_fault_after_commit_applies_the_write_then_fails(sandbox, pd, company):
    sandbox.control("POST", "pipedrive/commit_faults", json={"fault_after_commit": 1.0, "mode": "503"})
    resp = pd.post(pd.url("/api/v2/organizations"), json={"name": "Ghost 1"})
    assert resp.status_code == 503 and resp.json()["success"] is False
    sandbox.control("POST", "pipedrive/commit_faults", json={"mode": "drop"})
    with pytest.raises(requests.ConnectionError):
        pd.post(pd.url("/api/v2/organizations"), json={"name": "Ghost 2"})
    assert pd.get(pd.url("/api/v2/organizations")).status_code == 200  # reads are not affected
    sandbox.control("POST", "pipedrive/commit_faults", json={"fraction": 0})
    names = [r["name"] for r in sandbox.control("GET", f"pipedrive/companies/{cid(company)}/records/organizations")
             ["records"]]
    assert names == ["Ghost 1", "Ghost 2"]  # Pipedrive did it, we never heard
    assert sandbox.control("GET", f"pipedrive/companies/{cid(company)}/stats")["after_commit_faults"] == 2


def test_commit_then_timeout_and_fault_counts_by_method(sandbox, pd, company):
    sandbox.control("POST", "pipedrive/commit_faults", json={"fraction": 1.0, "mode": "timeout",
                                                             "timeout_seconds": 1.0})
    with pytest.raises(requests.ConnectionError):  # held past the client's patience, then dropped
        pd.post(pd.url("/api/v2/organizations"), json={"name": "Ghost"}, timeout=5)
    org = sandbox.control("GET", f"pipedrive/companies/{cid(company)}/records/organizations")["records"][0]
    sandbox.control("POST", "pipedrive/commit_faults", json={"mode": "503"})
    assert pd.patch(pd.url(f"/api/v2/organizations/{org['id']}"), json={"name": "Ghost 2"}).status_code == 503
    assert sandbox.control("GET", "pipedrive/commit_faults")["counts"] == {"POST": {"timeout": 1}, "PATCH": {"503": 1}}
    sandbox.control("POST", "pipedrive/commit_faults", json={"fraction": 0})
    sandbox.control("POST", "pipedrive/faults", json={"timeout": 1.0, "timeout_seconds": 2.0})
    with pytest.raises(requests.Timeout):
        pd.patch(pd.url(f"/api/v2/organizations/{org['id']}"), json={"name": "Never"}, timeout=0.5)
    sandbox.control("POST", "pipedrive/faults", json={"timeout": 0, "error_5xx": 1.0})
    assert pd.get(pd.url("/api/v2/organizations")).status_code == 503
    faults = sandbox.control("GET", "pipedrive/faults")
    assert faults["counts"] == {"timeout": 1, "5xx": 1}
    assert faults["counts_by_method"] == {"timeout": {"PATCH": 1}, "5xx": {"GET": 1}}
    sandbox.control("POST", "pipedrive/faults", json={"error_5xx": 0})
    names = [r["name"] for r in sandbox.control("GET", f"pipedrive/companies/{cid(company)}/records/organizations")
             ["records"]]
    assert names == ["Ghost 2"]  # the timed-out PATCH never reached the simulator


@pytest.mark.parametrize("answer", ["404", "200"])
def test_a_patch_to_a_deleted_organization_gets_the_answer_the_company_is_set_to(sandbox, answer):
    company = make_company(sandbox, unlimited=True, deleted_patch=answer)
    pd = client_for(company)
    org = pd.post(sandbox.url + "/api/v2/organizations", json={"name": "Gone"}).json()["data"]
    assert pd.delete(sandbox.url + f"/api/v2/organizations/{org['id']}").status_code == 200
    resp = pd.patch(sandbox.url + f"/api/v2/organizations/{org['id']}", json={"name": "Back?"})
    assert resp.status_code == int(answer)
    if answer == "200":
        assert resp.json()["data"]["is_deleted"] is True and resp.json()["data"]["name"] == "Gone"


def test_date_header_is_the_company_clock_and_daily_headers_can_be_missing(sandbox):
    from email.utils import parsedate_to_datetime

    company = make_company(sandbox, plan="lite", daily_headers=False)
    sandbox.control("POST", f"pipedrive/companies/{cid(company)}/clock", json={"set": "2026-11-20T23:59:30Z"})
    resp = client_for(company).get(sandbox.url + "/api/v2/organizations")
    assert resp.status_code == 200
    assert not [h for h in resp.headers if h.lower().startswith("x-daily-")]
    assert "x-ratelimit-limit" in resp.headers
    server_now = parsedate_to_datetime(resp.headers["Date"])
    assert server_now.strftime("%Y-%m-%d %H:%M") == "2026-11-20 23:59"
    assert len(resp.raw.headers.getlist("Date")) == 1


# -- webhooks ------------------------------------------------------------------------------------------

class Receiver:
    """A local webhook endpoint; answers with the queued statuses (then 200) and records requests."""

    def __init__(self):
        self.requests: list[dict] = []
        self.statuses: list[int] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    receiver.requests.append({"path": self.path, "headers": dict(self.headers),
                                              "json": json.loads(body), "at": time.monotonic()})
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/pipedrive"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def wait(self, count: int, timeout: float = 10) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.requests) >= count:
                    return list(self.requests)
            time.sleep(0.02)
        raise AssertionError(f"expected {count} deliveries, got {len(self.requests)}")


@pytest.fixture
def receiver():
    rec = Receiver()
    yield rec
    rec.server.shutdown()
    rec.server.server_close()


def subscribe(pd, receiver, **extra):
    resp = pd.post(pd.url("/v1/webhooks"), json={
        "subscription_url": receiver.url, "event_action": "*", "event_object": "organization", "name": "sync",
        "http_auth_user": "hook", "http_auth_password": "s3cret", **extra})
    assert resp.status_code == 201, resp.text
    return resp.json()["data"]


def test_webhooks_v2_are_delivered_with_basic_auth(sandbox, pd, company, receiver):
    hook = subscribe(pd, receiver)
    assert hook["version"] == "2.0" and hook["event_action"] == "*"
    org = pd.post(pd.url("/api/v2/organizations"), json={"name": "Acme"}).json()["data"]
    sandbox.control("PATCH", f"pipedrive/companies/{cid(company)}/ui/organizations/{org['id']}",
                    json={"name": "Acme Ltd"})
    sandbox.control("DELETE", f"pipedrive/companies/{cid(company)}/ui/organizations/{org['id']}")
    pd.post(pd.url("/api/v2/persons"), json={"name": "Not subscribed"})
    got = receiver.wait(3)
    time.sleep(0.2)
    assert len(receiver.requests) == 3
    got.sort(key=lambda r: ["create", "change", "delete"].index(r["json"]["meta"]["action"]))
    create, change, delete = (r["json"] for r in got)
    for request in got:
        assert request["headers"]["Authorization"] == "Basic " + base64.b64encode(b"hook:s3cret").decode()
        assert request["headers"]["User-Agent"] == "Pipedrive-Webhook"
        assert request["path"] == "/hooks/pipedrive"
    meta = change["meta"]
    assert (meta["action"], meta["entity"], meta["entity_id"], meta["version"], meta["attempt"]) == (
        "change", "organization", str(org["id"]), "2.0", 1)
    assert meta["change_source"] == "app" and create["meta"]["change_source"] == "api"
    assert meta["company_id"] == str(cid(company)) and meta["webhook_id"] == str(hook["id"])
    assert re.fullmatch(r"[0-9a-f-]{36}", meta["id"]) and meta["host"] == f"{company['company_domain']}.pipedrive.com"
    assert change["data"]["name"] == "Acme Ltd" and change["previous"] == {"name": "Acme"}
    assert create["previous"] is None and create["data"]["id"] == org["id"]
    assert delete["data"] is None and delete["previous"]["name"] == "Acme Ltd"
    log = sandbox.control("GET", f"pipedrive/companies/{cid(company)}/webhooks/deliveries")
    assert [(d["status"], d["attempt"], d["outcome"]) for d in log["deliveries"]] == [(200, 1, "delivered")] * 3


def test_webhook_custom_fields_are_typed(sandbox, pd, company, receiver):
    tier = add_field(pd, "organization", "Tier", "enum", options=[{"label": "Gold"}])
    subscribe(pd, receiver, event_action="create")
    pd.post(pd.url("/api/v2/organizations"), json={
        "name": "A", "custom_fields": {tier["field_code"]: tier["options"][0]["id"]}})
    data = receiver.wait(1)[0]["json"]["data"]
    assert data["custom_fields"][tier["field_code"]] == {"type": "enum", "id": tier["options"][0]["id"]}


def test_failed_webhooks_are_retried_after_scaled_delays(sandbox, pd, company, receiver):
    sandbox.control("POST", f"pipedrive/companies/{cid(company)}/settings", json={"webhook_time_factor": 0.02})
    receiver.statuses = [500, 503]  # two failures, then 200
    subscribe(pd, receiver, event_action="create")
    pd.post(pd.url("/api/v2/organizations"), json={"name": "Retry me"})
    got = receiver.wait(3)
    assert [r["json"]["meta"]["attempt"] for r in got] == [1, 2, 3]
    assert got[1]["at"] - got[0]["at"] >= 3 * 0.02 * 0.9  # retries after 3, 30 (, 150) s x factor
    assert got[2]["at"] - got[1]["at"] >= 30 * 0.02 * 0.9
    assert len({r["json"]["meta"]["id"] for r in got}) == 1  # the same event each time
    log = sandbox.control("GET", f"pipedrive/companies/{cid(company)}/webhooks/deliveries")["deliveries"]
    assert [(d["attempt"], d["status"], d["outcome"]) for d in log] == [
        (1, 500, "failed"), (2, 503, "failed"), (3, 200, "delivered")]
    assert {d["url"] for d in log} == {receiver.url}


def test_webhook_gives_up_after_four_attempts(sandbox, pd, company, receiver):
    sandbox.control("POST", f"pipedrive/companies/{cid(company)}/settings", json={"webhook_time_factor": 0.002})
    receiver.statuses = [500] * 10
    subscribe(pd, receiver, event_action="create")
    pd.post(pd.url("/api/v2/organizations"), json={"name": "Never"})
    receiver.wait(4)
    sandbox.control("POST", "pipedrive/webhooks/drain", json={"timeout_s": 5})
    log = sandbox.control("GET", f"pipedrive/companies/{cid(company)}/webhooks/deliveries")["deliveries"]
    assert [d["attempt"] for d in log] == [1, 2, 3, 4]


def test_webhook_without_a_success_for_three_days_is_deleted(sandbox, pd, company, receiver):
    sandbox.control("POST", f"pipedrive/companies/{cid(company)}/settings", json={"webhook_time_factor": 0.001})
    receiver.statuses = [200, 500, 500, 500, 500, 500]
    hook = subscribe(pd, receiver, event_action="create")
    pd.post(pd.url("/api/v2/organizations"), json={"name": "Delivered"})
    sandbox.control("POST", "pipedrive/webhooks/drain", json={"timeout_s": 5})
    sandbox.control("POST", f"pipedrive/companies/{cid(company)}/clock", json={"advance_s": 3 * 86_400 - 60})
    pd.post(pd.url("/api/v2/organizations"), json={"name": "Failing, kept"})
    sandbox.control("POST", "pipedrive/webhooks/drain", json={"timeout_s": 5})
    assert [h["id"] for h in pd.get(pd.url("/v1/webhooks")).json()["data"]] == [hook["id"]]

    sandbox.control("POST", f"pipedrive/companies/{cid(company)}/clock", json={"advance_s": 120})
    pd.post(pd.url("/api/v2/organizations"), json={"name": "Failing, three days after the last success"})
    sandbox.control("POST", "pipedrive/webhooks/drain", json={"timeout_s": 5})
    assert pd.get(pd.url("/v1/webhooks")).json()["data"] == []
    log = sandbox.control("GET", f"pipedrive/companies/{cid(company)}/webhooks/deliveries")["deliveries"]
    assert log[-1]["outcome"] == "deleted" and [d["outcome"] for d in log].count("delivered") == 1


def test_webhook_v1_payload(sandbox, pd, company, receiver):
    subscribe(pd, receiver, version="1.0", event_action="change")
    org = pd.post(pd.url("/api/v2/organizations"), json={"name": "Old"}).json()["data"]
    sandbox.control("PATCH", f"pipedrive/companies/{cid(company)}/ui/organizations/{org['id']}", json={"name": "New"})
    payload = receiver.wait(1)[0]["json"]
    assert payload["v"] == 1 and payload["event"] == "updated.organization" and payload["retry"] == 0
    assert (payload["meta"]["action"], payload["meta"]["object"], payload["meta"]["id"]) == (
        "updated", "organization", org["id"])
    assert payload["meta"]["change_source"] == "app"
    assert payload["current"]["name"] == "New" and payload["previous"]["name"] == "Old"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", payload["current"]["update_time"])


def test_webhook_subscription_rules(sandbox, pd, company, receiver):
    outside = pd.post(pd.url("/v1/webhooks"), json={
        "subscription_url": "https://example.com/hook", "event_action": "*", "event_object": "*", "name": "x"})
    assert outside.status_code == 400 and outside.json()["success"] is False
    for i in range(40):
        subscribe(pd, receiver, name=f"hook {i}")
    over = pd.post(pd.url("/v1/webhooks"), json={
        "subscription_url": receiver.url, "event_action": "*", "event_object": "*", "name": "41st"})
    assert over.status_code == 422 and over.json()["error"] == "Webhooks limit reached"
    hooks = pd.get(pd.url("/v1/webhooks")).json()["data"]
    assert len(hooks) == 40
    assert pd.delete(pd.url(f"/v1/webhooks/{hooks[0]['id']}")).json() == {"status": "ok", "success": True}
    assert pd.delete(pd.url(f"/v1/webhooks/{hooks[0]['id']}")).status_code == 404


# -- v1 notes ----------------------------------------------------------------------------------------

def test_notes_v1_offset_paging_and_crud(pd):
    org = pd.post(pd.url("/api/v2/organizations"), json={"name": "Acme"}).json()["data"]
    for i in range(5):
        assert pd.post(pd.url("/v1/notes"), json={"content": f"note {i}", "org_id": org["id"]}).status_code == 200
    first = pd.get(pd.url("/v1/notes"), params={"org_id": org["id"], "limit": 2}).json()
    assert [n["content"] for n in first["data"]] == ["note 0", "note 1"]
    assert first["additional_data"]["pagination"] == {"start": 0, "limit": 2, "more_items_in_collection": True,
                                                      "next_start": 2}
    last = pd.get(pd.url("/api/v1/notes"), params={"start": 4, "limit": 2}).json()
    assert last["additional_data"]["pagination"] == {"start": 4, "limit": 2, "more_items_in_collection": False}
    note = first["data"][0]
    assert note["organization"] == {"name": "Acme"} and re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d",
                                                                     note["add_time"])
    updated = pd.put(pd.url(f"/v1/notes/{note['id']}"), json={"content": "changed"}).json()["data"]
    assert updated["content"] == "changed"
    assert pd.delete(pd.url(f"/v1/notes/{note['id']}")).json() == {"success": True, "data": True}
    assert pd.get(pd.url(f"/v1/notes/{note['id']}")).status_code == 404
    assert pd.post(pd.url("/v1/notes"), json={"content": "orphan"}).status_code == 400
