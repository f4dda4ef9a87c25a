"""The Pipedrive sandbox against the official OpenAPI files: every request the tests send and every
response the sandbox gives is checked with spec_check (known spec errors: spec_check.KNOWN_SPEC_ERRORS)."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from sandbox.pipedrive.costs import BUILTIN

from .spec_check import (
    KNOWN_SPEC_ERRORS,
    fix_targets,
    load_spec,
    operation_for,
    validate_request,
    validate_response,
)


@pytest.fixture(scope="session")
def spec_v2(shared_dir):
    return load_spec(shared_dir / "specs" / "pipedrive" / "openapi-v2.yml")


@pytest.fixture(scope="session")
def spec_v1(shared_dir):
    return load_spec(shared_dir / "specs" / "pipedrive" / "openapi-v1.yml")


class CheckedClient:
    """Sends requests to the sandbox and records every mismatch with the spec."""

    def __init__(self, base: str, token: str, spec_v2: dict, spec_v1: dict):
        self.base, self.spec_v2, self.spec_v1 = base, spec_v2, spec_v1
        self.session = requests.Session()
        self.session.headers["x-api-token"] = token
        self.problems: list[str] = []
        self.operations: set[str] = set()

    def call(self, method: str, path: str, params: dict[str, Any] | None = None, json: Any = None,
             expect: int | None = None) -> Any:
        spec = self.spec_v2 if path.startswith("/api/v2/") else self.spec_v1
        op = operation_for(method, path, spec)
        label = f"{method} {path}"
        if op is None:
            self.problems.append(f"{label}: no such operation in the spec")
        else:
            self.operations.add(op.operation_id)
            label = f"{label} ({op.operation_id})"
            self.problems += [f"{label} request {p}" for p in validate_request(op, params, json)]
        resp = self.session.request(method, self.base + path, params=params, json=json, timeout=30)
        body = resp.json()
        if op is not None:
            self.problems += [f"{label} {p}" for p in validate_response(op, resp.status_code, body)]
        if expect is not None:
            assert resp.status_code == expect, f"{label} -> {resp.status_code} {body}"
        return body


@pytest.fixture
def client(sandbox, spec_v2, spec_v1):
    company = sandbox.control("POST", "pipedrive/companies", json={"name": "Spec Co", "unlimited": True})
    return CheckedClient(sandbox.url, company["api_token"], spec_v2, spec_v1)


def _fields(client: CheckedClient, entity: str) -> dict[str, str]:
    codes = {}
    for name, field_type, options in (("ERP id", "varchar", None), ("Score", "double", None),
                                      ("Tier", "enum", [{"label": "Gold"}, {"label": "Silver"}]),
                                      ("Tags", "set", [{"label": "a"}, {"label": "b"}]),
                                      ("Budget", "monetary", None), ("Since", "date", None),
                                      ("Billing address", "address", None)):
        body: dict[str, Any] = {"field_name": name, "field_type": field_type}
        if options:
            body["options"] = options
        data = client.call("POST", f"/api/v2/{entity}Fields", json=body, expect=200)["data"]
        codes[name] = data["field_code"]
        if options:
            codes[name + ":options"] = [o["id"] for o in data["options"]]
    return codes


def _custom(codes: dict[str, Any], n: int) -> dict[str, Any]:
    return {codes["ERP id"]: f"ERP-{n}", codes["Score"]: 4.5, codes["Tier"]: codes["Tier:options"][0],
            codes["Tags"]: codes["Tags:options"], codes["Budget"]: {"value": 100, "currency": "EUR"},
            codes["Since"]: "2026-01-31", codes["Billing address"]: {"value": "Main St 1, Tallinn"}}


def test_sandbox_traffic_conforms_to_the_v2_spec(client):
    org_codes = _fields(client, "organization")
    person_codes = _fields(client, "person")
    deal_codes = _fields(client, "deal")
    product_codes = _fields(client, "product")

    # fields
    client.call("GET", "/api/v2/organizationFields", params={"limit": 500}, expect=200)
    client.call("GET", "/api/v2/dealFields", params={"include_fields": "ui_visibility,important_fields"}, expect=200)
    client.call("GET", f"/api/v2/personFields/{person_codes['Tier']}", expect=200)
    client.call("PATCH", f"/api/v2/productFields/{product_codes['Score']}", json={"field_name": "Rating"}, expect=200)
    client.call("GET", "/api/v2/activityFields", expect=200)

    # organizations
    org = client.call("POST", "/api/v2/organizations", json={
        "name": "Acme Ltd", "address": {"value": "Narva mnt 5, Tallinn", "country": "Estonia"},
        "visible_to": 3, "label_ids": [], "custom_fields": _custom(org_codes, 1)}, expect=200)["data"]
    bare = client.call("POST", "/api/v2/organizations", json={"name": "Bare Org"}, expect=200)["data"]
    client.call("GET", "/api/v2/organizations", params={"limit": 1, "sort_by": "update_time",
                                                        "sort_direction": "desc"}, expect=200)
    page = client.call("GET", "/api/v2/organizations", params={"limit": 500, "custom_fields": org_codes["ERP id"],
                                                               "updated_since": "2020-01-01T00:00:00Z"}, expect=200)
    assert page["additional_data"]["next_cursor"] is None
    client.call("GET", f"/api/v2/organizations/{org['id']}", params={"include_option_labels": "true"}, expect=200)
    client.call("PATCH", f"/api/v2/organizations/{org['id']}",
                json={"name": "Acme Group", "custom_fields": {org_codes["Tags"]: None}}, expect=200)
    client.call("GET", "/api/v2/organizations/999999", expect=404)

    # persons
    person = client.call("POST", "/api/v2/persons", json={
        "name": "Mari Maasikas", "org_id": org["id"],
        "emails": [{"value": "mari@example.com", "primary": True, "label": "work"}],
        "phones": [{"value": "+372 5555 1234", "primary": True, "label": "mobile"}],
        "custom_fields": _custom(person_codes, 2)}, expect=200)["data"]
    client.call("POST", "/api/v2/persons", json={"name": "Cher"}, expect=200)
    client.call("GET", "/api/v2/persons", params={"org_id": org["id"], "limit": 100}, expect=200)
    client.call("GET", f"/api/v2/persons/{person['id']}", expect=200)
    client.call("PATCH", f"/api/v2/persons/{person['id']}", json={"name": "Mari Kask"}, expect=200)

    # products
    product = client.call("POST", "/api/v2/products", json={
        "name": "Widget", "code": "W-1", "unit": "pcs", "tax": 20,
        "prices": [{"currency": "EUR", "price": 12.5, "cost": 4}], "custom_fields": _custom(product_codes, 3)},
        expect=201)["data"]
    client.call("POST", "/api/v2/products", json={"name": "No code"}, expect=201)
    client.call("GET", "/api/v2/products", params={"sort_by": "name"}, expect=200)
    client.call("GET", f"/api/v2/products/{product['id']}", expect=200)
    client.call("PATCH", f"/api/v2/products/{product['id']}",
                json={"prices": [{"currency": "USD", "price": 14}]}, expect=200)

    # deals and their products
    deal = client.call("POST", "/api/v2/deals", json={
        "title": "Big deal", "org_id": org["id"], "person_id": person["id"], "value": 1000, "currency": "EUR",
        "expected_close_date": "2026-12-31", "custom_fields": _custom(deal_codes, 4)}, expect=200)["data"]
    lonely = client.call("POST", "/api/v2/deals", json={"title": "Lonely deal"}, expect=200)["data"]
    client.call("GET", "/api/v2/deals", params={"status": "open", "limit": 10}, expect=200)
    client.call("GET", f"/api/v2/deals/{lonely['id']}", expect=200)
    client.call("PATCH", f"/api/v2/deals/{deal['id']}", json={"status": "won"}, expect=200)
    line = client.call("POST", f"/api/v2/deals/{deal['id']}/products",
                       json={"product_id": product["id"], "item_price": 12.5, "quantity": 3}, expect=201)["data"]
    client.call("GET", f"/api/v2/deals/{deal['id']}/products", expect=200)
    client.call("PATCH", f"/api/v2/deals/{deal['id']}/products/{line['id']}",
                json={"quantity": 4, "discount": 10}, expect=200)
    client.call("DELETE", f"/api/v2/deals/{deal['id']}/products/{line['id']}", expect=200)
    many = client.call("POST", f"/api/v2/deals/{deal['id']}/products/bulk", json={"data": [
        {"product_id": product["id"], "item_price": 3, "quantity": n + 1} for n in range(7)]}, expect=201)["data"]
    assert len(many) == 7
    gone = client.call("DELETE", f"/api/v2/deals/{deal['id']}/products",
                       params={"ids": ",".join(str(m["id"]) for m in many[:6])}, expect=200)["data"]
    assert gone["ids"] == [m["id"] for m in many[:6]]
    refused = client.session.post(f"{client.base}/api/v2/deals/{deal['id']}/products/bulk", timeout=30,
                                  json={"data": [{"product_id": product["id"]}] * 2})  # all or none
    assert refused.status_code == 400 and "item_price" in refused.json()["error"]

    # activities
    activity = client.call("POST", "/api/v2/activities", json={
        "subject": "Call Mari", "type": "call", "deal_id": deal["id"], "due_date": "2026-12-01",
        "due_time": "10:00"}, expect=200)["data"]
    client.call("GET", f"/api/v2/activities/{activity['id']}", expect=200)

    # search
    client.call("GET", "/api/v2/itemSearch", params={"term": "acme", "item_types": "organization,deal"}, expect=200)
    client.call("GET", "/api/v2/itemSearch", params={"term": "ERP-1", "fields": "custom_fields",
                                                     "exact_match": "true", "limit": 100}, expect=200)
    client.call("GET", "/api/v2/itemSearch/field", params={"term": "ERP-1", "entity_type": "organization",
                                                           "field": org_codes["ERP id"], "match": "exact"}, expect=200)
    found = client.call("GET", "/api/v2/organizations/search", params={"term": "acme", "fields": "name"}, expect=200)
    assert found["data"]["items"]
    client.call("GET", "/api/v2/organizations/search", params={"term": "Bare Org", "exact_match": "true"}, expect=200)
    client.call("GET", "/api/v2/persons/search", params={"term": "mari@example.com", "fields": "email"}, expect=200)
    client.call("GET", "/api/v2/deals/search", params={"term": "deal", "status": "won"}, expect=200)
    client.call("GET", "/api/v2/products/search", params={"term": "W-1", "fields": "code"}, expect=200)
    client.call("GET", "/api/v2/products/search", params={"term": "no code"}, expect=200)

    # deletes and errors
    client.call("DELETE", f"/api/v2/activities/{activity['id']}", expect=200)
    client.call("DELETE", f"/api/v2/deals/{lonely['id']}", expect=200)
    client.call("DELETE", f"/api/v2/products/{product['id']}", expect=200)
    client.call("DELETE", f"/api/v2/persons/{person['id']}", expect=200)
    client.call("DELETE", f"/api/v2/organizations/{bare['id']}", expect=200)
    client.call("DELETE", f"/api/v2/organizationFields/{org_codes['Since']}", expect=200)
    client.call("GET", "/api/v2/deals", params={"limit": 501}, expect=400)

    wanted = {"getOrganizations", "getOrganization", "addOrganization", "updateOrganization", "deleteOrganization",
              "getPersons", "getPerson", "addPerson", "updatePerson", "deletePerson",
              "getDeals", "getDeal", "addDeal", "updateDeal", "deleteDeal",
              "getProducts", "getProduct", "addProduct", "updateProduct", "deleteProduct",
              "getOrganizationFields", "addOrganizationField", "searchItem", "searchItemByField",
              "searchOrganization", "getDealProducts", "addDealProduct", "updateDealProduct", "deleteDealProduct",
              "addManyDealProducts", "deleteManyDealProducts"}
    assert wanted <= client.operations, f"not exercised: {sorted(wanted - client.operations)}"
    assert not client.problems, "spec mismatches:\n" + "\n".join(client.problems)


def test_v1_endpoints_conform_to_the_v1_spec(client, sandbox):
    client.call("GET", "/v1/users/me", expect=200)
    org = client.call("POST", "/api/v2/organizations", json={"name": "Notes Org"}, expect=200)["data"]
    note = client.call("POST", "/v1/notes", json={"content": "<p>Hello</p>", "org_id": org["id"]}, expect=200)["data"]
    client.call("GET", "/v1/notes", params={"org_id": org["id"], "start": 0, "limit": 50}, expect=200)
    client.call("GET", f"/v1/notes/{note['id']}", expect=200)
    client.call("PUT", f"/v1/notes/{note['id']}", json={"content": "Changed"}, expect=200)
    client.call("DELETE", f"/v1/notes/{note['id']}", expect=200)
    hook = client.call("POST", "/v1/webhooks", json={
        "subscription_url": "http://127.0.0.1:9/hook", "event_action": "*", "event_object": "deal",
        "name": "deals", "http_auth_user": "u", "http_auth_password": "p"}, expect=201)["data"]
    client.call("GET", "/v1/webhooks", expect=200)
    client.call("DELETE", f"/v1/webhooks/{hook['id']}", expect=200)
    assert not client.problems, "spec mismatches:\n" + "\n".join(client.problems)


def test_known_spec_errors_are_documented_and_still_apply(spec_v2, spec_v1):
    for fix in KNOWN_SPEC_ERRORS:
        assert fix.section.startswith("§9") and fix.reason, fix
        targets = fix_targets(spec_v2, fix) + fix_targets(spec_v1, fix)
        assert targets > 0, f"stale allow-list entry (matches nothing in the specs): {fix}"


def test_validator_reports_bad_requests_and_responses(spec_v2):
    add = operation_for("POST", "/api/v2/organizations", spec_v2)
    hash_key = "a" * 40
    problems = validate_request(add, None, {"name": 5, hash_key: "x", "custom_fields": {"ERP": "1"}})
    text = "\n".join(problems)
    assert "body name: 5 is not of type 'string'" in text
    assert f"body {hash_key}: custom field hash at the top level" in text
    assert "body custom_fields/ERP: not a 40-character custom field key" in text
    assert validate_request(add, None, {"name": "Acme"}) == []
    assert validate_request(add, None, {"address": {"value": "x"}}) == ["body <root>: 'name' is a required property"]

    listing = operation_for("GET", "https://acme.pipedrive.com/api/v2/organizations?limit=2", spec_v2)
    problems = validate_request(listing, {"limit": "abc", "sort_by": "name", "foo": "1"})
    assert problems == ["query sort_by: 'name' is not one of ['add_time', 'id', 'update_time']",
                        "query limit: 'abc' is not an integer",
                        "query foo: not a parameter of getOrganizations"]
    fields = operation_for("GET", "/api/v2/dealFields", spec_v2)
    assert validate_request(fields, {"include_fields": "ui_visibility,required_fields"}) == []
    assert validate_request(fields, {"include_fields": "ui_visibility,bogus"}) != []

    get = operation_for("GET", "/api/v2/organizations/7", spec_v2)
    assert get.operation_id == "getOrganization" and get.path_params == {"id": "7"}
    assert operation_for("GET", "/api/v2/organizations/search", spec_v2).operation_id == "searchOrganization"
    assert validate_request(operation_for("GET", "/api/v2/organizations/x", spec_v2), {}) == [
        "path id: 'x' is not an integer"]
    assert validate_response(get, 200, {"success": True, "data": {"id": "7", "name": "x"}}) == [
        "response 200 data/id: '7' is not of type 'integer'"]
    assert validate_response(add, 201, {"success": True}) == [
        "status 201 is not documented for addOrganization (documented: ['200'])"]
    assert validate_response(get, 404, {"success": False, "error": "Organization not found"}) == []
    assert validate_response(get, 500, "oops") == ["response 500: error body is not a JSON object"]


def test_sandbox_token_costs_match_the_specs(spec_v2, spec_v1):
    for (method, api, template), (operation_id, cost) in BUILTIN.items():
        spec = spec_v2 if api == "v2" else spec_v1
        op = spec["paths"][template][method.lower()]
        assert (op["operationId"], op["x-token-cost"]) == (operation_id, cost), (method, api, template)
