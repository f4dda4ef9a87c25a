"""SAP S/4HANA flow kinds: business partners → organizations with their contact persons, and person
partners → persons. Take them in this order on first set-up (the persons flow links persons to the
organizations the first one made).

Why two flows: in S/4HANA a contact person is itself a person partner tied to its organization by a
BUR001 relationship, and that relationship (to_ContactRelationship) is where its work email and phone
live. So contact persons are children of the organization's plan — created, changed and removed with
it, each with its own link and hash, so a new email costs one person update and nothing else — while
the other person partners (category 1) are records of their own, linked to the organization they are
related to when there is one. The persons flow leaves contact persons to the organizations flow, so no
person is made twice.
"""

from __future__ import annotations

from typing import Any

from connectors.base import Children, FlowKind, MappingSpec, Reference

PARTNER_TYPES = {
    (True, True): "Customer and supplier",
    (True, False): "Customer",
    (False, True): "Supplier",
    (False, False): "",
}
ORGANIZATIONS_FLOW = "business_partners_to_organizations_and_persons"


def partner_derive(partner: dict[str, Any]) -> dict[str, Any]:
    """The organization's type from its roles (FLCU00/FLCU01 customer, FLVN00/FLVN01 supplier, as the
    client read them) and its first address on one line."""
    street = " ".join(
        str(partner.get(k) or "").strip() for k in ("AddressStreetName", "AddressHouseNumber")
    ).strip()
    town = " ".join(
        str(partner.get(k) or "").strip() for k in ("AddressPostalCode", "AddressCityName")
    ).strip()
    parts = [p for p in (street, town, str(partner.get("AddressCountry") or "").strip()) if p]
    return {
        "PartnerType": PARTNER_TYPES[(bool(partner.get("IsCustomer")), bool(partner.get("IsSupplier")))],
        "Address": ", ".join(parts),
    }


def organization_skip(partner: dict[str, Any]) -> str:
    if str(partner.get("BusinessPartnerCategory") or "") != "2":
        return "not an organization (category 2): the person partners flow syncs persons"
    return ""


def person_skip(partner: dict[str, Any]) -> str:
    if partner.get("ContactPersonOf"):
        return f"contact person of organization {partner['ContactPersonOf']}: synced with that organization"
    if str(partner.get("BusinessPartnerCategory") or "") != "1":
        return "not a person (category 1)"
    return ""


BUSINESS_PARTNERS = FlowKind(
    name=ORGANIZATIONS_FLOW,
    system="s4hana",
    label="SAP S/4HANA business partners → Pipedrive organizations (customer / supplier) and contact persons",
    source_object="business_partners",
    key_field="BusinessPartner",
    target_entity="organizations",
    external_id_field="SAP S/4HANA business partner",
    derive=partner_derive,
    skip=organization_skip,
    mappings=(
        MappingSpec(source="BusinessPartnerFullName", target="name", required=True),
        MappingSpec(source="Address", target="address"),
        MappingSpec(source="PartnerType", target="custom:Partner type"),
        MappingSpec(source="BusinessPartnerGrouping", target="custom:BP grouping"),
        MappingSpec(source="EmailAddress", target="custom:Email"),
        MappingSpec(source="PhoneNumber", target="custom:Phone", field_type="phone"),
    ),
    children=(
        Children(
            name="contacts",
            collection="ContactPersons",
            key_field="BusinessPartnerPerson",
            target_entity="persons",
            parent_field="org_id",
            external_id_field="SAP S/4HANA contact person",
            mappings=(
                MappingSpec(source="Name", target="name", required=True),
                MappingSpec(source="EmailAddress", target="emails"),
                MappingSpec(source="PhoneNumber", target="phones"),
            ),
        ),
    ),
)

PERSON_PARTNERS = FlowKind(
    name="person_partners_to_persons",
    system="s4hana",
    label="SAP S/4HANA person partners → Pipedrive persons (linked to their organization)",
    source_object="person_partners",
    key_field="BusinessPartner",
    target_entity="persons",
    external_id_field="SAP S/4HANA business partner",
    skip=person_skip,
    references=(
        Reference(
            target="org_id",
            source="RelatedOrganization",
            source_object="business_partners",
            required=False,
            label="organization",
        ),
    ),
    depends_on=(ORGANIZATIONS_FLOW,),
    mappings=(
        MappingSpec(source="BusinessPartnerFullName", target="name", required=True),
        MappingSpec(source="EmailAddress", target="emails"),
        MappingSpec(source="PhoneNumber", target="phones"),
    ),
)

FLOW_KINDS = {kind.name: kind for kind in (BUSINESS_PARTNERS, PERSON_PARTNERS)}
