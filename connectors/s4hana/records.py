"""S/4HANA business partners as the flows map them: V2 values read, roles, default email and phone, and
contact persons made flat; the change filter and the moments the cursor is built from."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from connectors import odata

SYSTEM = "SAP S/4HANA"
CUSTOMER_ROLES = ("FLCU00", "FLCU01")
SUPPLIER_ROLES = ("FLVN00", "FLVN01")
CONTACT_RELATIONSHIP = "BUR001"


def change_filter(start: datetime | None) -> str:
    """Partners changed — or, never changed, created — at or after `start` (V2 literals, no zone)."""
    if start is None:
        return ""
    day = odata.literal_datetime_v2(start.replace(hour=0, minute=0, second=0, microsecond=0))
    clock = odata.literal_time_v2(start.time())
    return " or ".join(
        (
            f"(LastChangeDate eq {day} and LastChangeTime ge {clock})",
            f"LastChangeDate gt {day}",
            f"(LastChangeDate eq null and CreationDate ge {day})",
        )
    )


def record_moment(row: dict[str, Any]) -> datetime | None:
    moment = moment_of(row.get("LastChangeDate"), row.get("LastChangeTime"))
    return moment or moment_of(row.get("CreationDate"), row.get("CreationTime"))


def partner_flatten(row: dict[str, Any]) -> dict[str, Any]:
    """The partner with V2 values read (dates ISO) and the fields the flows map made flat: role codes,
    the default email and phone of its addresses, and its contact persons with their work email and
    phones. Properties we do not know stay as they came and are ignored by the mappings."""
    record = dict(row)
    for name in ("CreationDate", "LastChangeDate"):
        parsed = odata.parse_datetime(row.get(name))
        record[name] = parsed.date().isoformat() if parsed else None
    for name in ("CreationTime", "LastChangeTime"):
        parsed_time = odata.parse_time(row.get(name))
        record[name] = parsed_time.strftime("%H:%M:%S") if parsed_time else None
    roles = sorted(
        {
            str(r.get("BusinessPartnerRole") or "")
            for r in row.get("to_BusinessPartnerRole") or []
            if isinstance(r, dict)
        }
        - {""}
    )
    record["Roles"] = roles
    record["IsCustomer"] = bool(row.get("Customer")) or any(r in CUSTOMER_ROLES for r in roles)
    record["IsSupplier"] = bool(row.get("Supplier")) or any(r in SUPPLIER_ROLES for r in roles)
    addresses = [a for a in row.get("to_BusinessPartnerAddress") or [] if isinstance(a, dict)]
    record["EmailAddress"] = _default(addresses, "to_EmailAddress", "EmailAddress", "IsDefaultEmailAddress")
    record["PhoneNumber"] = _default(addresses, "to_PhoneNumber", "PhoneNumber", "IsDefaultPhoneNumber")
    first = addresses[0] if addresses else {}
    for name in ("StreetName", "HouseNumber", "PostalCode", "CityName", "Country"):
        record[f"Address{name}"] = first.get(name) or ""
    contacts = []
    for contact in row.get("to_BusinessPartnerContact") or []:
        if (
            not isinstance(contact, dict)
            or (contact.get("RelationshipCategory") or CONTACT_RELATIONSHIP) != CONTACT_RELATIONSHIP
        ):
            continue
        work = (
            contact.get("to_ContactRelationship")
            if isinstance(contact.get("to_ContactRelationship"), dict)
            else {}
        )
        phone = work.get("PhoneNumber") or ""
        if phone and work.get("PhoneNumberExtension"):
            phone = f"{phone} ext. {work['PhoneNumberExtension']}"
        contacts.append(
            {
                "BusinessPartnerPerson": str(contact.get("BusinessPartnerPerson") or ""),
                "EmailAddress": work.get("EmailAddress") or "",
                "PhoneNumber": phone or work.get("MobilePhoneNumber") or "",
                "Function": work.get("ContactPersonFunction") or "",
                "Department": work.get("ContactPersonDepartment") or "",
            }
        )
    record["ContactPersons"] = contacts
    for nav in ("to_BusinessPartnerRole", "to_BusinessPartnerAddress", "to_BusinessPartnerContact"):
        record.pop(nav, None)
    return record


def _default(addresses: list[dict[str, Any]], nav: str, field: str, flag: str) -> str:
    entries = [e for a in addresses for e in a.get(nav) or [] if isinstance(e, dict) and e.get(field)]
    chosen = next((e for e in entries if e.get(flag)), entries[0] if entries else {})
    return str(chosen.get(field) or "")


def moment_of(day: Any, clock: Any) -> datetime | None:
    return odata.moment_of(day, clock, unreadable=f"{SYSTEM} sent an unreadable date")
