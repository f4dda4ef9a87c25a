"""SAP Business One → Pipedrive over loopback HTTP: every flow shape of the plan engine, counted at the
sandbox (organizations + persons, products, notes, deals + deal products)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest

from connectors.models import Connection
from syncs.models import Flow, RecordLink, SyncRecord
from syncs.services import flow_create, flow_run

pytestmark = pytest.mark.django_db(transaction=True)  # the engine's threads commit on their own connections

DB = "SBODEMOUS"
KINDS = ("business_partners_to_organizations_and_persons", "items_to_products", "invoices_to_notes",
         "orders_to_deals")


@dataclass
class B1World:
    sandbox: Any
    tenant: Any
    b1: Connection
    pipedrive: Connection
    company_id: int
    flows: dict[str, Flow]

    @classmethod
    def build(cls, sandbox, tenant, *, partners=40, contacts_max=4, items=20, invoices=60, seed=3,
              kinds: tuple[str, ...] = KINDS) -> B1World:
        sandbox.control("POST", "sap_b1/companies", json={
            "company_db": DB, "user": "manager", "password": "b1-secret-pw", "partners": partners,
            "contacts_max": contacts_max, "items": items, "invoices": invoices, "seed": seed, "today": "2026-11-20"})
        company = sandbox.control("POST", "pipedrive/companies", json={
            "name": "B1 CRM", "plan": "ultimate", "unlimited": True})
        b1 = Connection.objects.create(
            tenant=tenant, system="sap_b1", name="SAP B1", base_url=f"{sandbox.url}/b1s/v1",
            options={"company_db": DB, "user": "manager"}, credentials={"password": "b1-secret-pw"})
        pipedrive = Connection.objects.create(
            tenant=tenant, system="pipedrive", name="Pipedrive", base_url=sandbox.url,
            options={"auth": "api_token", "plan": "ultimate", "seats": 1, "company_id": company["company_id"]},
            credentials={"api_token": company["api_token"]})
        flows = {kind: flow_create(tenant=tenant, source=b1, target=pipedrive, kind=kind) for kind in kinds}
        return cls(sandbox, tenant, b1, pipedrive, company["company_id"], flows)

    def run(self, kind: str):
        flow = Flow.objects.select_related("source", "target").get(pk=self.flows[kind].pk)
        return flow_run(flow=flow)

    def pd(self, method: str, path: str, **kwargs) -> Any:
        return self.sandbox.control(method, f"pipedrive/companies/{self.company_id}/{path}", **kwargs)

    def records(self, entity: str) -> list[dict]:
        return self.pd("GET", f"records/{entity}?include_deleted=0")["records"]

    def key(self, entity: str, name: str) -> str:
        return next(f["field_code"] for f in self.pd("GET", f"fields/{entity}")["fields"] if f["field_name"] == name)

    def by_external(self, entity: str, name: str) -> Counter:
        key = self.key(entity, name)
        return Counter((r.get("custom_fields") or {}).get(key) for r in self.records(entity))

    def b1ctl(self, method: str, path: str, **kwargs) -> Any:
        return self.sandbox.control(method, f"sap_b1/companies/{DB}/{path}", **kwargs)

    def b1_all(self, entity: str) -> list[dict]:
        from connectors.sap_b1.client import SapB1Client

        with SapB1Client.from_connection(self.b1) as client:
            return [r for page in client.changed_since(entity, {}) for r in page.records]

    def calls(self) -> dict:
        return self.pd("GET", "stats")["calls_by_operation"]


@pytest.fixture
def world(sandbox, tenant):
    return B1World.build(sandbox, tenant)


def expected_contacts(partners: list[dict]) -> set[str]:
    return {f"{p['CardCode']}/{c['InternalCode']}" for p in partners for c in p.get("ContactEmployees") or []
            if c.get("Active") != "tNO"}


def test_partners_become_organizations_with_their_contacts_as_persons_exactly_once(world):
    partners = world.b1_all("business_partners")
    result = world.run("business_partners_to_organizations_and_persons")
    assert result.status == "succeeded", result.error
    orgs = world.by_external("organizations", "SAP B1 card code")
    assert set(orgs) == {p["CardCode"] for p in partners} and set(orgs.values()) == {1}
    persons = world.by_external("persons", "SAP B1 contact id")
    assert set(persons) == expected_contacts(partners) and set(persons.values()) == {1}
    # every person hangs on its partner's organization
    org_ids = {link.external_id: link.target_id for link in RecordLink.objects.filter(source_object="business_partners")}
    key = world.key("persons", "SAP B1 contact id")
    for person in world.records("persons"):
        assert person["org_id"] == org_ids[person["custom_fields"][key].split("/")[0]]

    world.pd("POST", "stats/reset")
    again = world.run("business_partners_to_organizations_and_persons")
    assert again.status == "succeeded" and again.pipedrive_calls == 0
    assert world.calls() == {}


def test_a_removed_contact_deletes_only_the_person_we_created(world):
    world.run("business_partners_to_organizations_and_persons")
    ours_before = set(world.by_external("persons", "SAP B1 contact id"))
    # a person someone added by hand in Pipedrive, on one of our organizations
    org = world.records("organizations")[0]
    manual = world.pd("POST", "ui/persons", json={"name": "Added by hand", "org_id": org["id"]})
    changed = world.b1ctl("POST", "mutate", json={"remove_contacts": 3, "today": "2026-11-21", "time": "09:00:00"})
    removed = {f"{c['CardCode']}/{c['InternalCode']}" for c in changed["contacts_removed"]} & ours_before
    assert removed  # (an inactive contact removed in B1 was never in Pipedrive)
    world.pd("POST", "stats/reset")
    result = world.run("business_partners_to_organizations_and_persons")
    assert result.status == "succeeded", result.error
    persons = world.by_external("persons", "SAP B1 contact id")
    assert persons.pop(None) == 1  # the one added by hand, untouched
    assert not removed & set(persons)
    assert set(persons) == expected_contacts(world.b1_all("business_partners"))
    assert any(p["id"] == manual["id"] for p in world.records("persons"))
    assert world.calls().get("deletePerson") == len(removed)
    deletes = SyncRecord.objects.filter(run=result, action="delete", outcome="ok")
    assert {r.external_id for r in deletes} == removed


def test_a_session_timeout_mid_run_is_renewed_once_without_showing(sandbox, tenant):
    world = B1World.build(sandbox, tenant, partners=250, contacts_max=1, items=1, invoices=1)
    from connectors.sap_b1 import client as b1_client

    original = b1_client.SapB1Client.changed_since
    expired = []

    def expiring(self, obj, cursor):
        for n, page in enumerate(original(self, obj, cursor)):
            if n == 1 and not expired:
                expired.append(sandbox.control("POST", "sap_b1/expire_sessions")["expired"])
            yield page

    b1_client.SapB1Client.changed_since = expiring
    try:
        sandbox.control("DELETE", "sap_b1/stats")
        result = world.run("business_partners_to_organizations_and_persons")
    finally:
        b1_client.SapB1Client.changed_since = original
    assert expired == [1]
    assert result.status == "succeeded", result.error
    stats = sandbox.control("GET", "sap_b1/stats")
    assert stats["logins"] == 2 and stats["logouts"] == 1  # renewed once, logged off at the end
    assert len(world.by_external("organizations", "SAP B1 card code")) == 250


def test_items_become_products_with_base_prices_and_stock(world):
    items = world.b1_all("items")
    result = world.run("items_to_products")
    assert result.status == "succeeded", result.error
    products = world.records("products")
    key = world.key("products", "SAP B1 item code")
    stock_key = world.key("products", "Stock on hand")
    assert Counter(p["custom_fields"][key] for p in products) == Counter(i["ItemCode"] for i in items)
    item = items[0]
    product = next(p for p in products if p["custom_fields"][key] == item["ItemCode"])
    base = next(p for p in item["ItemPrices"] if p["PriceList"] == 1)
    assert [(p["price"], p["currency"]) for p in product["prices"]] == [(base["Price"], base["Currency"])]
    assert product["custom_fields"][stock_key] == sum(w["InStock"] for w in item["ItemWarehouseInfoCollection"])
    assert world.run("items_to_products").pipedrive_calls == 0


def test_invoices_become_one_note_each_on_the_customer_organization(world):
    early = world.run("invoices_to_notes")  # before the partners flow: nothing to hang them on yet
    assert early.failed == 60 and early.created == 0
    assert set(SyncRecord.objects.filter(run=early).values_list("error_kind", flat=True)) == {"transient"}
    world.run("business_partners_to_organizations_and_persons")
    result = world.run("invoices_to_notes")  # the transient failures are retried first
    invoices = world.b1_all("invoices")
    notes = world.records("notes")
    assert len(notes) == len(invoices) == 60
    org_ids = {link.external_id: link.target_id for link in RecordLink.objects.filter(source_object="business_partners")}
    for invoice in invoices:
        mark = f"ml-connector: invoices {invoice['DocEntry']}<"
        mine = [n for n in notes if mark in n["content"]]
        assert len(mine) == 1 and mine[0]["org_id"] == org_ids[invoice["CardCode"]]
        assert f"invoice {invoice['DocNum']}" in mine[0]["content"]
    assert result.status in ("succeeded", "partial")
    assert world.run("invoices_to_notes").pipedrive_calls == 0


def test_orders_become_deals_on_the_customer_with_lines_as_deal_products(world, sandbox):
    world.run("business_partners_to_organizations_and_persons")
    world.run("items_to_products")
    # orders are what B1 holds: post a few through the real API
    from connectors.sap_b1.client import SapB1Client

    partners = [p for p in world.b1_all("business_partners") if p["CardType"] == "cCustomer" and p["Frozen"] != "tYES"]
    items = world.b1_all("items")
    with SapB1Client.from_connection(world.b1) as client:
        for n, partner in enumerate(partners[:3]):
            client.order_create(card_code=partner["CardCode"], reference=f"PO-{n}", lines=[
                {"ItemCode": items[n]["ItemCode"], "Quantity": 2 + n, "UnitPrice": 10.0 + n},
                {"ItemCode": items[n + 1]["ItemCode"], "Quantity": 1, "UnitPrice": 99.5}])
        # an order our write-back made from a deal (NumAtCard PD-<deal id>) must not come back as a deal
        client.order_create(card_code=partners[0]["CardCode"], reference="PD-4242", lines=[
            {"ItemCode": items[0]["ItemCode"], "Quantity": 1, "UnitPrice": 5.0}])
    result = world.run("orders_to_deals")
    assert result.status == "succeeded", result.error
    assert (result.read, result.skipped) == (4, 1)
    deals = world.records("deals")
    assert len(deals) == 3
    product_ids = {link.external_id: link.target_id for link in RecordLink.objects.filter(source_object="items")}
    lines = RecordLink.objects.filter(source_object="orders.lines")
    assert lines.count() == 6
    assert {link.parent_target_id for link in lines} == {d["id"] for d in deals}
    assert world.calls().get("addDealProduct") == 6
    # an order line changed in B1 updates only that deal product
    order = world.b1_all("orders")[0]
    lines_now = order["DocumentLines"]
    lines_now[0]["Quantity"] = 7
    world.b1ctl("PATCH", f"records/Orders/{order['DocEntry']}", json={"DocumentLines": lines_now})
    world.pd("POST", "stats/reset")
    again = world.run("orders_to_deals")
    assert again.status == "succeeded", again.error
    assert world.calls() == {"updateDealProduct": 1}
    assert product_ids  # products were linked before the orders referenced them
