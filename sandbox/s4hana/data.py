"""The S/4HANA simulator's data: one system (a tenant's S/4HANA) holding business partners, stored in
the shapes the $filter compiler compares (dates 'YYYY-MM-DDT00:00:00', times 'HH:MM:SS') and turned
into OData V2 JSON (`/Date(ms)/`, `PT14H30M00S`, `__metadata`, `__deferred`) when served.

Partners, deterministic per (seed, index):
- organizations (category '2'): customers (roles FLCU00 + FLCU01, `Customer` set), suppliers (FLVN00 +
  FLVN01, `Supplier` set) or both; grouping '0001' or '0002' (number ranges, not roles); one address
  with an email and a phone; 0..contacts_max contact persons;
- contact persons: person partners (category '1', numbers from 5000000) tied to their organization by a
  BUR001 relationship (`A_BusinessPartnerContact`), whose function data (`to_ContactRelationship`,
  A_BPContactToFuncAndDept) carries their work email, phone and mobile;
- other persons (category '1'): about half related to an organization as employees (relationship BUR011
  in A_BusinessPartnerContact), each with an address holding emails and phones.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sandbox.generator import FIRST_NAMES, POSITIONS, SURNAMES, company_record

SERVICE = "API_BUSINESS_PARTNER"
PERSON_BASE = 5_000_000
ORG_SHARE = 0.75
CONTACT = "BUR001"  # "has contact person"
EMPLOYEE = "BUR011"  # the simulator's "is employee of" (any relationship other than a contact person)
CUSTOMER_ROLES = ("FLCU00", "FLCU01")
SUPPLIER_ROLES = ("FLVN00", "FLVN01")
DEPARTMENTS = ("0001", "0002", "0003", "0004", "0005", "0006")
FUNCTIONS = ("0001", "0002", "0003", "0005", "0006", "0010")
INDUSTRIES = ("", "1000", "1010", "1020", "1030", "2000")


@dataclass
class System:
    client_id: str
    client_secret: str
    today: date
    clock: str = "08:00:00"
    partners: dict[str, dict[str, Any]] = field(default_factory=dict)
    contacts_max: int = 3
    seed: int = 0
    extension_fields: bool = False  # serve key-user extension fields (YY1_…) the connector does not know

    def stamp(self, partner: dict[str, Any]) -> None:
        partner["LastChangeDate"] = f"{self.today.isoformat()}T00:00:00"
        partner["LastChangeTime"] = self.clock
        partner["LastChangedByUser"] = "CB9980000012"
        partner["ETag"] = f"SAPCB9980000012{self.today:%Y%m%d}{self.clock.replace(':', '')}"[:26]

    def counts(self) -> dict[str, int]:
        parts = self.partners.values()
        orgs = [p for p in parts if p["BusinessPartnerCategory"] == "2"]
        return {
            "partners": len(self.partners),
            "organizations": len(orgs),
            "customers": sum(1 for p in orgs if p["Customer"] and not p["Supplier"]),
            "suppliers": sum(1 for p in orgs if p["Supplier"] and not p["Customer"]),
            "both": sum(1 for p in orgs if p["Supplier"] and p["Customer"]),
            "contact_persons": sum(len(p["_contacts"]) for p in orgs),
            "persons": sum(1 for p in parts if p["BusinessPartnerCategory"] == "1" and not p["_contact_of"]),
            "persons_related": sum(
                1 for p in parts if p["BusinessPartnerCategory"] == "1" and p["_employee_of"]
            ),
        }


def _day(value: date) -> str:
    return f"{value.isoformat()}T00:00:00"


def _slug(text: str) -> str:
    return "".join(c for c in text.lower() if c.isalnum()) or "x"


def _address(
    partner: str, n: int, rec: dict[str, Any], emails: list[str], phones: list[str]
) -> dict[str, Any]:
    return {
        "BusinessPartner": partner,
        "AddressID": str(20000 + n),
        "AddressUUID": str(uuid.UUID(int=n + 1)),
        "CityName": rec["city"],
        "PostalCode": rec["postal_code"],
        "StreetName": rec["address1"],
        "HouseNumber": "",
        "Country": rec["country_code"],
        "Region": rec["state"],
        "Language": "EN",
        "ValidityStartDate": "2000-01-01T00:00:00",
        "ValidityEndDate": "9999-12-31T00:00:00",
        "_emails": [
            {
                "AddressID": str(20000 + n),
                "Person": "",
                "OrdinalNumber": str(k + 1),
                "IsDefaultEmailAddress": k == 0,
                "EmailAddress": e,
                "SearchEmailAddress": e[:20].upper(),
            }
            for k, e in enumerate(emails)
        ],
        "_phones": [
            {
                "AddressID": str(20000 + n),
                "Person": "",
                "OrdinalNumber": str(k + 1),
                "DestinationLocationCountry": rec["country_code"],
                "IsDefaultPhoneNumber": k == 0,
                "PhoneNumber": p,
                "PhoneNumberExtension": "",
                "InternationalPhoneNumber": p,
                "PhoneNumberType": "1",
            }
            for k, p in enumerate(phones)
        ],
    }


def _partner(
    number: str, category: str, rec: dict[str, Any], rng: random.Random, today: date
) -> dict[str, Any]:
    created = rec["started"]  # never changed since created: SAP leaves LastChangeDate/Time empty
    return {
        "BusinessPartner": number,
        "Customer": "",
        "Supplier": "",
        "AcademicTitle": "",
        "AuthorizationGroup": "",
        "BusinessPartnerCategory": category,
        "BusinessPartnerFullName": "",
        "BusinessPartnerGrouping": "0001" if rng.random() < 0.7 else "0002",
        "BusinessPartnerName": "",
        "BusinessPartnerUUID": str(uuid.UUID(int=rng.getrandbits(128))),
        "CorrespondenceLanguage": "EN",
        "CreatedByUser": "CB9980000010",
        "CreationDate": _day(created),
        "CreationTime": "09:15:00",
        "FirstName": "",
        "FormOfAddress": "",
        "Industry": INDUSTRIES[int(rng.random() * len(INDUSTRIES))],
        "IsFemale": False,
        "IsMale": False,
        "IsNaturalPerson": "X" if category == "1" else "",
        "LastChangeDate": _day(rec["last_changed"]),
        "LastChangeTime": f"{8 + int(rng.random() * 9):02d}:"
        f"{int(rng.random() * 60):02d}:{int(rng.random() * 60):02d}",
        "LastChangedByUser": "CB9980000010",
        "LastName": "",
        "OrganizationBPName1": "",
        "OrganizationBPName2": "",
        "SearchTerm1": "",
        "SearchTerm2": "",
        "BusinessPartnerIsBlocked": False,
        "IsMarkedForArchiving": False,
        "BusinessPartnerType": "",
        "ETag": "",
        "Language": "EN",
        "ETagLegacy": "",
        "_roles": [],
        "_addresses": [],
        "_contacts": [],
        "_contact_of": "",
        "_employee_of": "",
    } | ({"LastChangeDate": None, "LastChangeTime": None} if rec["last_changed"] <= created else {})


def build(
    *, client_id: str, client_secret: str, partners: int, contacts_max: int, seed: int, today: date
) -> System:
    system = System(
        client_id=client_id, client_secret=client_secret, today=today, contacts_max=contacts_max, seed=seed
    )
    orgs: list[str] = []
    person_seq = 0
    for i in range(partners):
        rng = random.Random(f"s4:{seed}:{i}")
        rec = company_record(i, seed, today=today)
        number = str(1_000_000 + i)
        if i < 2 or rng.random() < ORG_SHARE:
            p = _partner(number, "2", rec, rng, today)
            name = rec["name"]
            p.update(
                BusinessPartnerFullName=name,
                BusinessPartnerName=name[:81],
                OrganizationBPName1=name[:40],
                OrganizationBPName2=name[40:80],
                SearchTerm1=name[:20].upper(),
            )
            roll = rng.random()
            kind = "customer" if roll < 0.45 else "supplier" if roll < 0.7 else "both"
            roles = (CUSTOMER_ROLES if kind != "supplier" else ()) + (
                SUPPLIER_ROLES if kind != "customer" else ()
            )
            p["_roles"] = [
                {
                    "BusinessPartner": number,
                    "BusinessPartnerRole": r,
                    "ValidFrom": "2000-01-01T00:00:00",
                    "ValidTo": "9999-12-31T23:59:59",
                    "AuthorizationGroup": "",
                }
                for r in ("000000", *roles)
            ]
            p["Customer"] = number if kind != "supplier" else ""
            p["Supplier"] = number if kind != "customer" else ""
            p["_addresses"] = [
                _address(number, i, rec, [rec["email"]] if rec["email"] else [], [rec["phone"]])
            ]
            for _ in range(int(rng.random() * (contacts_max + 1))):
                person = str(PERSON_BASE + person_seq)
                person_seq += 1
                system.partners[person] = _contact_person(person, number, rec, rng, today)
                p["_contacts"].append(_contact(number, person, rec, rng))
            orgs.append(number)
        else:
            p = _person_partner(number, rec, rng, today)
            if orgs and rng.random() < 0.5:
                org = orgs[int(rng.random() * len(orgs))]
                p["_employee_of"] = org
                p["_relationships"] = [
                    {
                        "RelationshipNumber": f"{i:012d}",
                        "BusinessPartnerCompany": org,
                        "BusinessPartnerPerson": number,
                        "ValidityEndDate": "9999-12-31T00:00:00",
                        "ValidityStartDate": "2000-01-01T00:00:00",
                        "IsStandardRelationship": False,
                        "RelationshipCategory": EMPLOYEE,
                    }
                ]
        system.partners[number] = p
    return system


def _names(rng: random.Random) -> tuple[str, str]:
    return FIRST_NAMES[int(rng.random() * len(FIRST_NAMES))], SURNAMES[int(rng.random() * len(SURNAMES))]


def _person_partner(number: str, rec: dict[str, Any], rng: random.Random, today: date) -> dict[str, Any]:
    first, last = _names(rng)
    p = _partner(number, "1", rec, rng, today)
    p.update(
        FirstName=first,
        LastName=last,
        BusinessPartnerFullName=f"{first} {last}",
        BusinessPartnerName=f"{first} {last}",
        SearchTerm1=last.upper()[:20],
        BusinessPartnerGrouping="0001",
        IsMale=rng.random() < 0.5,
    )
    p["IsFemale"] = not p["IsMale"]
    emails = [f"{_slug(first)}.{_slug(last)}@mail.example"] + (
        [f"{_slug(first)[:1]}{_slug(last)}@home.example"] if rng.random() < 0.4 else []
    )
    p["_addresses"] = [_address(number, int(number), rec, emails, [rec["phone"]])]
    p["_relationships"] = []
    return p


def _contact_person(
    number: str, org: str, rec: dict[str, Any], rng: random.Random, today: date
) -> dict[str, Any]:
    p = _person_partner(number, rec, rng, today)
    p["_addresses"] = []  # a contact person's work data lives in the relationship (to_ContactRelationship)
    p["_contact_of"] = org
    return p


def _contact(org: str, person: str, rec: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    domain = rec["email"].rpartition("@")[2] or "example.com"
    return {
        "RelationshipNumber": f"{int(person):012d}",
        "BusinessPartnerCompany": org,
        "BusinessPartnerPerson": person,
        "ValidityEndDate": "9999-12-31T00:00:00",
        "ValidityStartDate": "2000-01-01T00:00:00",
        "IsStandardRelationship": False,
        "RelationshipCategory": CONTACT,
        "_function": {
            "RelationshipNumber": f"{int(person):012d}",
            "BusinessPartnerCompany": org,
            "BusinessPartnerPerson": person,
            "ValidityEndDate": "9999-12-31T00:00:00",
            "ContactPersonFunction": FUNCTIONS[int(rng.random() * len(FUNCTIONS))],
            "ContactPersonDepartment": DEPARTMENTS[int(rng.random() * len(DEPARTMENTS))],
            "ContactPersonVIPType": "",
            "EmailAddress": f"p{person}@{domain}",
            "PhoneNumber": rec["phone"],
            "PhoneNumberExtension": str(100 + int(rng.random() * 800)),
            "FaxNumber": "",
            "FaxNumberExtension": "",
            "MobilePhoneNumber": "",
            "RelationshipCategory": CONTACT,
            "ContactPersonRemarkText": POSITIONS[int(rng.random() * len(POSITIONS))],
        },
    }
