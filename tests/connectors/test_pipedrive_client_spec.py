"""Every request the client sends in a representative sync session conforms to the official
OpenAPI files (v2 for entities, fields and search; v1 for notes, users/me and webhooks)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from connectors.pipedrive.client import PipedriveClient
from connectors.pipedrive.fields import FieldResolver
from tests.connectors.test_pipedrive_client import company_create, pipedrive_connection

spec_check = pytest.importorskip("tests.sandbox.spec_check")


@pytest.fixture
def traffic(db, tenant, sandbox, settings):
    """A client whose every request and response is recorded (method, url, body, status, json)."""
    settings.PIPEDRIVE_RETRY_BASE_S = 0.01
    company = company_create(sandbox, plan="ultimate")
    client = PipedriveClient.from_connection(pipedrive_connection(tenant, sandbox, company))
    recorded: list[dict] = []

    def record(resp, *args, **kwargs):
        request = resp.request
        body = request.body
        if isinstance(body, bytes):
            body = body.decode()
        recorded.append({
            "method": request.method, "url": request.url, "body": json.loads(body) if body else None,
            "status": resp.status_code, "json": resp.json() if resp.content else None,
        })

    client.session.hooks["response"].append(record)
    return client, recorded


def representative_session(client: PipedriveClient) -> None:
    """What a customer/order sync does: ping, resolve and create fields, upsert, search, page, note, hook."""
    assert client.test_connection().ok
    fields = FieldResolver(client)
    erp_key = fields.ensure("organizations", "ERP customer number", "varchar")
    fields.ensure("organizations", "Credit limit", "monetary")
    fields.ensure("organizations", "Segment", "enum", options=["Retail", "Wholesale"])
    fields.ensure("organizations", "Regions", "set", options=["North", "South"])
    fields.ensure("organizations", "Customer since", "date")
    fields.ensure("deals", "ERP order number", "varchar")
    fields.ensure("persons", "ERP contact id", "varchar")
    fields.ensure("products", "ERP item code", "varchar")
    custom = fields.custom_fields("organizations", {
        "ERP customer number": "C-1001", "Credit limit": ("25000.00", "EUR"), "Segment": "Retail",
        "Regions": ["North", "South"], "Customer since": date(2019, 5, 1),
    })
    assert client.entity_search_field("organizations", erp_key, "C-1001") == []
    org = client.entity_create("organizations", {"name": "Acme GmbH", "address": {"value": "1 Main St"},
                                                  "custom_fields": custom})
    client.entity_update("organizations", org["id"], {"custom_fields": {
        fields.key("organizations", "Regions"): fields.value_for("organizations", "Regions", []),
        fields.key("organizations", "Credit limit"): fields.value_for("organizations", "Credit limit",
                                                                      {"value": 30000, "currency": "EUR"}),
    }})
    person = client.entity_create("persons", {
        "name": "Jane Buyer", "org_id": org["id"], "emails": [{"value": "jane@example.com", "primary": True}],
        "custom_fields": fields.custom_fields("persons", {"ERP contact id": "P-1"})})
    product = client.entity_create("products", {
        "name": "Widget", "code": "W-1", "prices": [{"currency": "EUR", "price": 9.5}],
        "custom_fields": fields.custom_fields("products", {"ERP item code": "W-1"})})
    deal = client.entity_create("deals", {
        "title": "Order 5001", "org_id": org["id"], "person_id": person["id"], "value": 950, "currency": "EUR",
        "custom_fields": fields.custom_fields("deals", {"ERP order number": "5001"})})
    client.entity_update("deals", deal["id"], {"status": "won"})
    added = client.deal_products_add_many(deal["id"], [
        {"product_id": product["id"], "item_price": 9.5, "quantity": n + 1} for n in range(6)])
    assert [a["quantity"] for a in added] == [1, 2, 3, 4, 5, 6]
    assert client.deal_products_delete_many(deal["id"], [a["id"] for a in added[:4]]) == [a["id"] for a in added[:4]]
    client.entity_get("deals", deal["id"])
    client.entity_get("products", product["id"])
    since = datetime.now(UTC) - timedelta(days=1)
    for entity in ("organizations", "persons", "deals", "products"):
        list(client.entity_pages(entity, updated_since=since, sort_by="update_time"))
    list(client.entity_pages("organizations", custom_field_keys=[erp_key]))
    client.note_create(content="ERP rejected the order: <i>credit hold</i>", deal_id=deal["id"])
    list(client.iter_pages("/v1/notes", params={"deal_id": deal["id"]}))
    hook = client.webhook_create(subscription_url="http://127.0.0.1:9/hooks/pipedrive/abc/", event_action="change",
                                 event_object="deal", http_auth_user="pipedrive", http_auth_password="s3cret-pass",
                                 name="ml-connector deals")
    client.webhook_list()
    client.webhook_delete(hook["id"])
    client.entity_delete("persons", person["id"])
    assert client.entity_get("persons", person["id"]) is None  # a 404 is part of the session too


def test_every_request_of_a_sync_session_conforms_to_the_official_spec(traffic, shared_dir):
    client, recorded = traffic
    representative_session(client)
    specs = {
        "v2": spec_check.load_spec(shared_dir / "specs/pipedrive/openapi-v2.yml"),
        "v1": spec_check.load_spec(shared_dir / "specs/pipedrive/openapi-v1.yml"),
    }
    problems = []
    operations = set()
    for entry in recorded:
        path = urlsplit(entry["url"]).path
        spec = specs["v2" if path.startswith("/api/v2/") else "v1"]
        op = spec_check.operation_for(entry["method"], path, spec)
        if op is None:
            problems.append(f"{entry['method']} {path}: no such operation in the spec")
            continue
        operations.add(op.operation_id)
        params = {k: v[-1] for k, v in parse_qs(urlsplit(entry["url"]).query, keep_blank_values=True).items()}
        for problem in spec_check.validate_request(op, params, entry["body"]):
            problems.append(f"{op.operation_id} request: {problem}")
    assert not problems, "\n".join(problems)
    assert {"getCurrentUser", "getOrganizationFields", "addOrganizationField", "searchItemByField",
            "addOrganization", "updateOrganization", "addPerson", "addProduct", "addDeal", "updateDeal", "getDeal",
            "getOrganizations", "addNote", "getNotes", "addWebhook", "getWebhooks", "deleteWebhook",
            "deletePerson", "getPerson", "addManyDealProducts", "deleteManyDealProducts"} <= operations
    assert len(recorded) >= 30
