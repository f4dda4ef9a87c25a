"""`<Projection>.svc/$metadata`: a CSDL document naming the entity sets, their properties, the enum
types and (for orders) the bound actions, generated from the same tables the service uses."""

from __future__ import annotations

from xml.sax.saxutils import quoteattr

from sandbox.ifs import data
from sandbox.ifs.actions import TRANSITIONS
from sandbox.ifs.store import CUSTOMER_FIELDS, ENUMS, ORDER_FIELDS

EDM = {"string": "Edm.String", "number": "Edm.Double"}
DATES = {"CreationDate": "Edm.Date"}  # every other "date" field is an Edm.DateTimeOffset


def _type(name: str, typ: str) -> str:
    if typ.startswith("enum:"):
        return typ[5:]
    if typ == "date":
        return DATES.get(name, "Edm.DateTimeOffset")
    return EDM[typ]


def document(projection: str) -> str:
    orders = projection == data.ORDER_PROJECTION
    entity, key, fields = (
        ("CustomerOrder", "OrderNo", ORDER_FIELDS)
        if orders
        else ("CustomerInfo", "CustomerId", CUSTOMER_FIELDS)
    )
    namespace = f"IfsApp.{projection}"
    enum_type = data.STATE_TYPE if orders else data.CATEGORY_TYPE
    members = "".join(f'<Member Name={quoteattr(m)} Value="{i}"/>' for i, m in enumerate(ENUMS[enum_type]))
    props = "".join(
        f"<Property Name={quoteattr(name)} Type={quoteattr(_type(name, typ))}/>"
        for name, (_, typ) in fields.items()
    )
    actions = (
        "".join(
            f'<Action Name="CustomerOrder_{name}" IsBound="true"><Parameter Name="bindingParameter" '
            f'Type="{namespace}.{entity}"/></Action>'
            for name in TRANSITIONS
        )
        if orders
        else ""
    )
    set_name = "CustomerOrderSet" if orders else "CustomerInfoSet"
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<edmx:Edmx xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx" Version="4.0"><edmx:DataServices>'
        f'<Schema xmlns="http://docs.oasis-open.org/odata/ns/edm" Namespace="{namespace}">'
        f'<EnumType Name="{enum_type.rpartition(".")[2]}">{members}</EnumType>'
        f'<EntityType Name="{entity}"><Key><PropertyRef Name="{key}"/></Key>{props}</EntityType>{actions}'
        f'<EntityContainer Name="Container"><EntitySet Name="{set_name}" EntityType="{namespace}.{entity}"/>'
        "</EntityContainer></Schema></edmx:DataServices></edmx:Edmx>"
    )
