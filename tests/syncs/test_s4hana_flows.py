"""SAP S/4HANA → Pipedrive over loopback HTTP, counted at the sandbox: organizations typed customer /
supplier / both with their contact persons, person partners linked to their organization, and the
changes that must cost exactly their own writes."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest

from connectors.models import Connection
from syncs.models import Flow, RecordLink, SyncRecord
from syncs.services import flow_create, flow_run

pytestmark = pytest.mark.django_db(transaction=True)  # the engine's threads commit on their own connections

CLIENT_ID = "ML_CONNECTOR_COMM"
SECRET = "s4-client-secret-3141"
ORGS = "business_partners_to_organizations_and_persons"
PERSONS = "person_partners_to_persons"
BP_FIELD = "SAP S/4HANA business partner"
CONTACT_FIELD = "SAP S/4HANA contact person"


@dataclass
class S4World:
    sandbox: Any
    tenant: Any
    s4: Connection
    pipedrive: Connection
    company_id: int
    flows: dict[str, Flow]
    info: dict

    @classmethod
    def build(
        cls, sandbox, tenant, *, partners=40, contacts_max=3, seed=5, auth="oauth", extension_fields=False
    ) -> S4World:
        info = sandbox.control(
            "POST",
            "s4hana/systems",
            json={
                "client_id": CLIENT_ID,
                "client_secret": SECRET,
                "partners": partners,
                "contacts_max": contacts_max,
                "seed": seed,
                "today": "2026-11-20",
                "time": "08:00:00",
                "extension_fields": extension_fields,
            },
        )
        company = sandbox.control(
            "POST", "pipedrive/companies", json={"name": "S4 CRM", "plan": "ultimate", "unlimited": True}
        )
        s4 = Connection.objects.create(
            tenant=tenant,
            system="s4hana",
            name="S/4HANA",
            base_url=sandbox.url,
            options={"client_id": CLIENT_ID, "auth": auth},
            credentials={"client_secret": SECRET},
        )
        pipedrive = Connection.objects.create(
            tenant=tenant,
            system="pipedrive",
            name="Pipedrive",
            base_url=sandbox.url,
            options={
                "auth": "api_token",
                "plan": "ultimate",
                "seats": 1,
                "company_id": company["company_id"],
            },
            credentials={"api_token": company["api_token"]},
        )
        flows = {
            kind: flow_create(tenant=tenant, source=s4, target=pipedrive, kind=kind)
            for kind in (ORGS, PERSONS)
        }
        return cls(sandbox, tenant, s4, pipedrive, company["company_id"], flows, info)

    def run(self, kind: str):
        flow = Flow.objects.select_related("source", "target").get(pk=self.flows[kind].pk)
        return flow_run(flow=flow)

    def pd(self, method: str, path: str, **kwargs) -> Any:
        return self.sandbox.control(method, f"pipedrive/companies/{self.company_id}/{path}", **kwargs)

    def records(self, entity: str) -> list[dict]:
        return self.pd("GET", f"records/{entity}?include_deleted=0")["records"]

    def key(self, entity: str, name: str) -> str:
        return next(
            f["field_code"] for f in self.pd("GET", f"fields/{entity}")["fields"] if f["field_name"] == name
        )

    def by_external(self, entity: str, name: str) -> Counter:
        key = self.key(entity, name)
        return Counter((r.get("custom_fields") or {}).get(key) for r in self.records(entity))

    def s4ctl(self, method: str, path: str, **kwargs) -> Any:
        return self.sandbox.control(method, f"s4hana/systems/{CLIENT_ID}/{path}", **kwargs)

    def partners(self, obj: str = "business_partners") -> list[dict]:
        """What S/4HANA holds, read through the real API (a separate token store: costs Pipedrive nothing)."""
        from connectors.s4hana.client import S4HanaClient

        with S4HanaClient(base_url=self.sandbox.url, client_id=CLIENT_ID, client_secret=SECRET) as client:
            return [r for page in client.changed_since(obj, {}) for r in page.records]

    def calls(self) -> dict:
        return self.pd("GET", "stats")["calls_by_operation"]

    def org_of(self) -> dict[str, int]:
        return dict(
            RecordLink.objects.filter(source_object="business_partners").values_list(
                "external_id", "target_id"
            )
        )


@pytest.fixture
def world(sandbox, tenant):
    # partners also carry extension fields and a navigation $metadata does not declare: ignored, not fatal
    return S4World.build(sandbox, tenant, extension_fields=True)


def expected_types(partners: list[dict]) -> dict[str, str]:
    return {
        p["BusinessPartner"]: {
            (True, True): "Customer and supplier",
            (True, False): "Customer",
            (False, True): "Supplier",
        }[(p["IsCustomer"], p["IsSupplier"])]
        for p in partners
    }


def test_partners_become_typed_organizations_with_contact_persons_then_persons_exactly_once(world):
    partners = world.partners()
    assert all(p["YY1_SalesRegion_bus"] == "EMEA" and "to_YY1_PartnerNotes" not in p for p in partners)
    counts = world.info["counts"]
    assert counts["customers"] and counts["suppliers"] and counts["both"] and counts["persons_related"]
    result = world.run(ORGS)
    assert result.status == "succeeded", result.error
    orgs = world.by_external("organizations", BP_FIELD)
    assert set(orgs) == {p["BusinessPartner"] for p in partners} and set(orgs.values()) == {1}
    type_key = world.key("organizations", "Partner type")
    got = {
        o["custom_fields"][world.key("organizations", BP_FIELD)]: o["custom_fields"].get(type_key)
        for o in world.records("organizations")
    }
    types = expected_types(partners)
    assert got == types and set(types.values()) == {"Customer", "Supplier", "Customer and supplier"}
    # contact persons: one person each, on its organization, with its work email
    contacts = {
        f"{p['BusinessPartner']}/{c['BusinessPartnerPerson']}": c
        for p in partners
        for c in p["ContactPersons"]
    }
    assert len(contacts) == counts["contact_persons"] > 0
    persons = world.by_external("persons", CONTACT_FIELD)
    assert set(persons) == set(contacts) and set(persons.values()) == {1}
    org_ids = world.org_of()
    contact_key = world.key("persons", CONTACT_FIELD)
    for person in world.records("persons"):
        ext = person["custom_fields"][contact_key]
        assert person["org_id"] == org_ids[ext.split("/")[0]]
        assert person["name"] == contacts[ext]["Name"] and not person["name"].startswith("Contact ")
        assert [e["value"] for e in person["emails"]] == [contacts[ext]["EmailAddress"]]

    # person partners: contact persons are left to the organizations flow; the others are persons,
    # linked to their organization where they are related to one
    people = world.partners("person_partners")
    standalone = [p for p in people if not p["ContactPersonOf"]]
    assert (
        len(standalone) == counts["persons"] and len(people) == counts["persons"] + counts["contact_persons"]
    )
    result = world.run(PERSONS)
    assert result.status == "succeeded", result.error
    assert (result.read, result.skipped) == (len(people), counts["contact_persons"])
    bp_key = world.key("persons", BP_FIELD)
    mine = {
        p["custom_fields"].get(bp_key): p for p in world.records("persons") if p["custom_fields"].get(bp_key)
    }
    assert set(mine) == {p["BusinessPartner"] for p in standalone}
    related = [p for p in standalone if p["RelatedOrganization"]]
    assert len(related) == counts["persons_related"] > 0
    for partner in standalone:
        expected = org_ids[partner["RelatedOrganization"]] if partner["RelatedOrganization"] else None
        assert mine[partner["BusinessPartner"]]["org_id"] == expected

    world.pd("POST", "stats/reset")
    assert world.run(ORGS).pipedrive_calls == 0 and world.run(PERSONS).pipedrive_calls == 0
    assert world.calls() == {}
    assert world.sandbox.control("GET", "s4hana/stats")["writes"] == 0


def test_changes_cost_exactly_their_own_writes(world):
    world.run(ORGS)
    partners = world.partners()
    with_contact = next(p for p in partners if p["ContactPersons"])
    supplier_too = next(p for p in partners if p["IsSupplier"] and p["IsCustomer"] and p is not with_contact)
    renamed = [p["BusinessPartner"] for p in partners if p not in (with_contact, supplier_too)][:3]

    # three renamed partners → exactly those three organizations updated
    world.s4ctl("POST", "change", json={"partners": renamed, "time": "09:00:00"})
    world.pd("POST", "stats/reset")
    result = world.run(ORGS)
    assert result.status == "succeeded", result.error
    assert world.calls() == {"updateOrganization": 3}
    assert {r.external_id for r in SyncRecord.objects.filter(run=result, action="update")} == set(renamed)

    # only a new email on a contact → one person written, nothing else
    person = with_contact["ContactPersons"][0]["BusinessPartnerPerson"]
    world.s4ctl(
        "POST",
        "contact_email",
        json={
            "partner": with_contact["BusinessPartner"],
            "person": person,
            "email": "new.address@example.org",
            "time": "09:30:00",
        },
    )
    world.pd("POST", "stats/reset")
    result = world.run(ORGS)
    assert result.status == "succeeded", result.error
    assert world.calls() == {"updatePerson": 1}
    ext = f"{with_contact['BusinessPartner']}/{person}"
    contact_key = world.key("persons", CONTACT_FIELD)
    updated = next(p for p in world.records("persons") if p["custom_fields"].get(contact_key) == ext)
    assert [e["value"] for e in updated["emails"]] == ["new.address@example.org"]

    # the contact person renamed on its own person partner → that person updated, nothing else
    world.s4ctl("POST", "change", json={"partners": [person], "time": "09:45:00"})
    world.pd("POST", "stats/reset")
    result = world.run(ORGS)
    assert result.status == "succeeded", result.error
    assert world.calls() == {"updatePerson": 1}
    renamed_person = next(p for p in world.records("persons") if p["custom_fields"].get(contact_key) == ext)
    assert renamed_person["name"].endswith(" Ltd")

    # losing the supplier role → only that organization's type changes
    world.s4ctl(
        "POST",
        "remove_role",
        json={"partner": supplier_too["BusinessPartner"], "kind": "supplier", "time": "10:00:00"},
    )
    world.pd("POST", "stats/reset")
    result = world.run(ORGS)
    assert result.status == "succeeded", result.error
    assert world.calls() == {"updateOrganization": 1}
    org = next(
        o
        for o in world.records("organizations")
        if o["id"] == world.org_of()[supplier_too["BusinessPartner"]]
    )
    assert org["custom_fields"][world.key("organizations", "Partner type")] == "Customer"

    # a contact relationship removed → the person we made for it is deleted, nothing else
    world.s4ctl(
        "POST",
        "remove_contact",
        json={"partner": with_contact["BusinessPartner"], "person": person, "time": "10:30:00"},
    )
    world.pd("POST", "stats/reset")
    result = world.run(ORGS)
    assert result.status == "succeeded", result.error
    assert world.calls() == {"deletePerson": 1}
    assert ext not in world.by_external("persons", CONTACT_FIELD)
