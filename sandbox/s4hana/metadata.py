"""`$metadata` of API_BUSINESS_PARTNER: an EDMX 1.0 / OData V2 document shaped like SAP's (sap: annotations,
entity sets the connector never reads, navigations without referential constraints), built from the
property lists below so that what is served and what is declared stay the same."""

from __future__ import annotations

from xml.sax.saxutils import quoteattr

NS = "API_BUSINESS_PARTNER"

# (name, Edm type, max length or "", extra attributes)
_BP = (
    (
        "BusinessPartner",
        "Edm.String",
        "10",
        'Nullable="false" sap:display-format="UpperCase" sap:label="Business Partner"',
    ),
    ("Customer", "Edm.String", "10", 'sap:creatable="false" sap:updatable="false"'),
    ("Supplier", "Edm.String", "10", 'sap:creatable="false" sap:updatable="false"'),
    ("AcademicTitle", "Edm.String", "4", ""),
    ("AuthorizationGroup", "Edm.String", "4", ""),
    ("BusinessPartnerCategory", "Edm.String", "1", 'sap:label="BP Category"'),
    ("BusinessPartnerFullName", "Edm.String", "81", 'sap:creatable="false" sap:updatable="false"'),
    ("BusinessPartnerGrouping", "Edm.String", "4", 'sap:label="Grouping"'),
    ("BusinessPartnerName", "Edm.String", "81", 'sap:creatable="false" sap:updatable="false"'),
    ("BusinessPartnerUUID", "Edm.Guid", "", ""),
    ("CorrespondenceLanguage", "Edm.String", "2", ""),
    ("CreatedByUser", "Edm.String", "12", ""),
    ("CreationDate", "Edm.DateTime", "", 'Precision="0" sap:display-format="Date"'),
    ("CreationTime", "Edm.Time", "", 'Precision="0"'),
    ("FirstName", "Edm.String", "40", ""),
    ("FormOfAddress", "Edm.String", "4", ""),
    ("Industry", "Edm.String", "10", ""),
    ("IsFemale", "Edm.Boolean", "", ""),
    ("IsMale", "Edm.Boolean", "", ""),
    ("IsNaturalPerson", "Edm.String", "1", ""),
    ("LastChangeDate", "Edm.DateTime", "", 'Precision="0" sap:display-format="Date"'),
    ("LastChangeTime", "Edm.Time", "", 'Precision="0"'),
    ("LastChangedByUser", "Edm.String", "12", ""),
    ("LastName", "Edm.String", "40", ""),
    ("OrganizationBPName1", "Edm.String", "40", ""),
    ("OrganizationBPName2", "Edm.String", "40", ""),
    ("SearchTerm1", "Edm.String", "20", ""),
    ("SearchTerm2", "Edm.String", "20", ""),
    ("BusinessPartnerIsBlocked", "Edm.Boolean", "", ""),
    ("IsMarkedForArchiving", "Edm.Boolean", "", ""),
    ("BusinessPartnerType", "Edm.String", "4", ""),
    ("ETag", "Edm.String", "26", 'sap:creatable="false" sap:updatable="false"'),
    ("Language", "Edm.String", "2", ""),
    ("ETagLegacy", "Edm.String", "26", ""),
)
_ROLE = (
    ("BusinessPartner", "Edm.String", "10", 'Nullable="false"'),
    ("BusinessPartnerRole", "Edm.String", "6", 'Nullable="false"'),
    ("ValidFrom", "Edm.DateTimeOffset", "", 'Precision="7"'),
    ("ValidTo", "Edm.DateTimeOffset", "", 'Precision="7"'),
    ("AuthorizationGroup", "Edm.String", "4", ""),
)
_ADDRESS = (
    ("BusinessPartner", "Edm.String", "10", 'Nullable="false"'),
    ("AddressID", "Edm.String", "10", 'Nullable="false"'),
    ("AddressUUID", "Edm.Guid", "", ""),
    ("CityName", "Edm.String", "40", ""),
    ("PostalCode", "Edm.String", "10", ""),
    ("StreetName", "Edm.String", "60", ""),
    ("HouseNumber", "Edm.String", "10", ""),
    ("Country", "Edm.String", "3", ""),
    ("Region", "Edm.String", "3", ""),
    ("Language", "Edm.String", "2", ""),
    ("ValidityStartDate", "Edm.DateTimeOffset", "", 'Precision="0"'),
    ("ValidityEndDate", "Edm.DateTimeOffset", "", 'Precision="0"'),
)
_EMAIL = (
    ("AddressID", "Edm.String", "10", 'Nullable="false"'),
    ("Person", "Edm.String", "10", 'Nullable="false"'),
    ("OrdinalNumber", "Edm.String", "3", 'Nullable="false"'),
    ("IsDefaultEmailAddress", "Edm.Boolean", "", ""),
    ("EmailAddress", "Edm.String", "241", ""),
    ("SearchEmailAddress", "Edm.String", "20", ""),
)
_PHONE = (
    ("AddressID", "Edm.String", "10", 'Nullable="false"'),
    ("Person", "Edm.String", "10", 'Nullable="false"'),
    ("OrdinalNumber", "Edm.String", "3", 'Nullable="false"'),
    ("DestinationLocationCountry", "Edm.String", "3", ""),
    ("IsDefaultPhoneNumber", "Edm.Boolean", "", ""),
    ("PhoneNumber", "Edm.String", "30", ""),
    ("PhoneNumberExtension", "Edm.String", "10", ""),
    ("InternationalPhoneNumber", "Edm.String", "30", ""),
    ("PhoneNumberType", "Edm.String", "1", ""),
)
_CONTACT = (
    ("RelationshipNumber", "Edm.String", "12", 'Nullable="false"'),
    ("BusinessPartnerCompany", "Edm.String", "10", 'Nullable="false"'),
    ("BusinessPartnerPerson", "Edm.String", "10", 'Nullable="false"'),
    ("ValidityEndDate", "Edm.DateTime", "", 'Nullable="false" Precision="0" sap:display-format="Date"'),
    ("ValidityStartDate", "Edm.DateTimeOffset", "", 'Precision="0"'),
    ("IsStandardRelationship", "Edm.Boolean", "", ""),
    ("RelationshipCategory", "Edm.String", "6", ""),
)
_FUNCTION = (
    ("RelationshipNumber", "Edm.String", "12", 'Nullable="false"'),
    ("BusinessPartnerCompany", "Edm.String", "10", 'Nullable="false"'),
    ("BusinessPartnerPerson", "Edm.String", "10", 'Nullable="false"'),
    ("ValidityEndDate", "Edm.DateTime", "", 'Nullable="false" Precision="0"'),
    ("ContactPersonFunction", "Edm.String", "4", ""),
    ("ContactPersonDepartment", "Edm.String", "4", ""),
    ("ContactPersonVIPType", "Edm.String", "1", ""),
    ("EmailAddress", "Edm.String", "241", ""),
    ("PhoneNumber", "Edm.String", "30", ""),
    ("PhoneNumberExtension", "Edm.String", "10", ""),
    ("FaxNumber", "Edm.String", "30", ""),
    ("FaxNumberExtension", "Edm.String", "10", ""),
    ("MobilePhoneNumber", "Edm.String", "30", ""),
    ("RelationshipCategory", "Edm.String", "6", ""),
    ("ContactPersonRemarkText", "Edm.String", "40", ""),
)
_CUSTOMER = (
    ("Customer", "Edm.String", "10", 'Nullable="false"'),
    ("CustomerName", "Edm.String", "80", ""),
    ("CustomerFullName", "Edm.String", "220", ""),
    ("CreationDate", "Edm.DateTime", "", 'Precision="0"'),
    ("DeletionIndicator", "Edm.Boolean", "", ""),
    ("OrderIsBlockedForCustomer", "Edm.String", "2", ""),
    ("PostingIsBlocked", "Edm.Boolean", "", ""),
)
_SUPPLIER = (
    ("Supplier", "Edm.String", "10", 'Nullable="false"'),
    ("SupplierName", "Edm.String", "80", ""),
    ("SupplierFullName", "Edm.String", "220", ""),
    ("CreationDate", "Edm.DateTime", "", 'Precision="0"'),
    ("DeletionIndicator", "Edm.Boolean", "", ""),
    ("PaymentIsBlockedForSupplier", "Edm.Boolean", "", ""),
    ("PurchasingIsBlocked", "Edm.Boolean", "", ""),
)
_UNUSED = {  # declared and served (empty), never read by the connector
    "A_BusinessPartnerBank": (
        ("BusinessPartner", "Edm.String", "10", 'Nullable="false"'),
        ("BankIdentification", "Edm.String", "4", 'Nullable="false"'),
        ("BankCountryKey", "Edm.String", "3", ""),
        ("IBAN", "Edm.String", "34", ""),
    ),
    "A_BusinessPartnerTaxNumber": (
        ("BusinessPartner", "Edm.String", "10", 'Nullable="false"'),
        ("BPTaxType", "Edm.String", "4", 'Nullable="false"'),
        ("BPTaxNumber", "Edm.String", "20", ""),
    ),
    "A_BuPaIdentification": (
        ("BusinessPartner", "Edm.String", "10", 'Nullable="false"'),
        ("BPIdentificationType", "Edm.String", "6", 'Nullable="false"'),
        ("BPIdentificationNumber", "Edm.String", "60", 'Nullable="false"'),
    ),
    "A_BuPaIndustry": (
        ("IndustrySector", "Edm.String", "10", 'Nullable="false"'),
        ("IndustrySystemType", "Edm.String", "4", 'Nullable="false"'),
        ("BusinessPartner", "Edm.String", "10", 'Nullable="false"'),
    ),
    "A_BPCreditWorthiness": (
        ("BusinessPartner", "Edm.String", "10", 'Nullable="false"'),
        ("BusPartCreditStanding", "Edm.String", "3", ""),
    ),
    "A_CustomerCompany": (
        ("Customer", "Edm.String", "10", 'Nullable="false"'),
        ("CompanyCode", "Edm.String", "4", 'Nullable="false"'),
        ("PaymentTerms", "Edm.String", "4", ""),
    ),
}

# entity set → (entity type, properties, key names, navigations {name: (target set, multiplicity)})
SETS: dict[str, tuple[str, tuple, tuple[str, ...], dict[str, tuple[str, str]]]] = {
    "A_BusinessPartner": (
        "A_BusinessPartnerType",
        _BP,
        ("BusinessPartner",),
        {
            "to_BusinessPartnerAddress": ("A_BusinessPartnerAddress", "*"),
            "to_BusinessPartnerRole": ("A_BusinessPartnerRole", "*"),
            "to_BusinessPartnerContact": ("A_BusinessPartnerContact", "*"),
            "to_BusinessPartnerBank": ("A_BusinessPartnerBank", "*"),
            "to_BusinessPartnerTax": ("A_BusinessPartnerTaxNumber", "*"),
            "to_BuPaIdentification": ("A_BuPaIdentification", "*"),
            "to_BuPaIndustry": ("A_BuPaIndustry", "*"),
            "to_BPCreditWorthiness": ("A_BPCreditWorthiness", "0..1"),
            "to_Customer": ("A_Customer", "0..1"),
            "to_Supplier": ("A_Supplier", "0..1"),
        },
    ),
    "A_BusinessPartnerRole": (
        "A_BusinessPartnerRoleType",
        _ROLE,
        ("BusinessPartner", "BusinessPartnerRole"),
        {},
    ),
    "A_BusinessPartnerAddress": (
        "A_BusinessPartnerAddressType",
        _ADDRESS,
        ("BusinessPartner", "AddressID"),
        {
            "to_EmailAddress": ("A_AddressEmailAddress", "*"),
            "to_PhoneNumber": ("A_AddressPhoneNumber", "*"),
            "to_MobilePhoneNumber": ("A_AddressPhoneNumber", "*"),
            "to_FaxNumber": ("A_AddressFaxNumber", "*"),
        },
    ),
    "A_AddressEmailAddress": (
        "A_AddressEmailAddressType",
        _EMAIL,
        ("AddressID", "Person", "OrdinalNumber"),
        {},
    ),
    "A_AddressPhoneNumber": (
        "A_AddressPhoneNumberType",
        _PHONE,
        ("AddressID", "Person", "OrdinalNumber"),
        {},
    ),
    "A_AddressFaxNumber": (
        "A_AddressFaxNumberType",
        _PHONE[:3] + (("FaxNumber", "Edm.String", "30", ""),),
        ("AddressID", "Person", "OrdinalNumber"),
        {},
    ),
    "A_BusinessPartnerContact": (
        "A_BusinessPartnerContactType",
        _CONTACT,
        ("RelationshipNumber", "BusinessPartnerCompany", "BusinessPartnerPerson", "ValidityEndDate"),
        {
            "to_ContactAddress": ("A_BPContactToAddress", "*"),
            "to_ContactRelationship": ("A_BPContactToFuncAndDept", "1"),
        },
    ),
    "A_BPContactToFuncAndDept": (
        "A_BPContactToFuncAndDeptType",
        _FUNCTION,
        ("RelationshipNumber", "BusinessPartnerCompany", "BusinessPartnerPerson", "ValidityEndDate"),
        {},
    ),
    "A_BPContactToAddress": ("A_BPContactToAddressType", _ADDRESS[1:], ("AddressID",), {}),
    "A_Customer": (
        "A_CustomerType",
        _CUSTOMER,
        ("Customer",),
        {"to_CustomerCompany": ("A_CustomerCompany", "*")},
    ),
    "A_Supplier": ("A_SupplierType", _SUPPLIER, ("Supplier",), {}),
    **{
        name: (f"{name}Type", props, tuple(p[0] for p in props if "Nullable" in p[3]), {})
        for name, props in _UNUSED.items()
    },
}


def _property(name: str, typ: str, length: str, extra: str) -> str:
    attrs = f'Name="{name}" Type="{typ}"' + (f' MaxLength="{length}"' if length else "")
    if "Nullable" not in extra:
        attrs += ' Nullable="true"'
    return f"<Property {attrs} {extra}/>".replace(" />", "/>")


def edmx() -> str:
    types, sets, assocs, assoc_sets = [], [], [], []
    for set_name, (type_name, props, keys, navs) in SETS.items():
        body = "".join(f'<PropertyRef Name="{k}"/>' for k in keys)
        body = f"<Key>{body}</Key>" + "".join(_property(*p) for p in props)
        for nav, (target, multiplicity) in navs.items():
            assoc = f"assoc_{type_name}_{nav}"
            body += (
                f'<NavigationProperty Name="{nav}" Relationship="{NS}.{assoc}" FromRole="FromRole_{assoc}" '
                f'ToRole="ToRole_{assoc}"/>'
            )
            target_type = SETS[target][0]
            assocs.append(
                f'<Association Name="{assoc}" sap:content-version="1"><End Type="{NS}.{type_name}" '
                f'Multiplicity="1" Role="FromRole_{assoc}"/><End Type="{NS}.{target_type}" '
                f'Multiplicity="{multiplicity}" Role="ToRole_{assoc}"/></Association>'
            )
            assoc_sets.append(
                f'<AssociationSet Name="{assoc}_set" Association="{NS}.{assoc}" sap:creatable="false" '
                f'sap:updatable="false" sap:deletable="false" sap:content-version="1">'
                f'<End EntitySet="{set_name}" Role="FromRole_{assoc}"/>'
                f'<End EntitySet="{target}" Role="ToRole_{assoc}"/></AssociationSet>'
            )
        types.append(f'<EntityType Name="{type_name}" sap:content-version="1">{body}</EntityType>')
        sets.append(
            f'<EntitySet Name="{set_name}" EntityType="{NS}.{type_name}" sap:deletable="false" '
            f'sap:content-version="1"/>'
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<edmx:Edmx Version="1.0" xmlns:edmx="http://schemas.microsoft.com/ado/2007/06/edmx" '
        'xmlns:m="http://schemas.microsoft.com/ado/2007/08/dataservices/metadata" '
        'xmlns:sap="http://www.sap.com/Protocols/SAPData">'
        '<edmx:DataServices m:DataServiceVersion="2.0">'
        f'<Schema Namespace={quoteattr(NS)} xml:lang="en" sap:schema-version="1" '
        'xmlns="http://schemas.microsoft.com/ado/2008/09/edm">'
        + "".join(types)
        + "".join(assocs)
        + f'<EntityContainer Name="{NS}_Entities" m:IsDefaultEntityContainer="true" '
        'sap:supported-formats="atom json xlsx">'
        + "".join(sets)
        + "".join(assoc_sets)
        + "</EntityContainer>"
        + f'<atom:link rel="self" href="/sap/opu/odata/sap/{NS}/$metadata" xmlns:atom="http://www.w3.org/2005/Atom"/>'
        "</Schema></edmx:DataServices></edmx:Edmx>"
    )
