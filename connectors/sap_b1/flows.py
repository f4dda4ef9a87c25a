"""SAP Business One flow kinds. Take them in this order on first set-up: business partners and items
first, then invoices and orders, which reference the organizations and products those two link."""

from __future__ import annotations

from typing import Any

from connectors.base import Children, FlowKind, MappingSpec, Reference, WriteBack

WRITEBACK_REFERENCE_PREFIX = "PD-"  # NumAtCard of the orders our write-back makes: PD-<deal id>
BASE_PRICE_LIST = 1  # the price list whose prices become the product's price in Pipedrive
CARD_TYPES = {"cCustomer": "Customer", "cSupplier": "Supplier", "cLid": "Lead"}
DOC_STATUS = {"bost_Open": "open", "bost_Close": "closed", "bost_Paid": "paid", "bost_Delivered": "delivered"}


def _day(value: Any) -> str:
    return str(value or "")[:10]


def item_derive(item: dict[str, Any]) -> dict[str, Any]:
    prices = [p for p in item.get("ItemPrices") or [] if p.get("PriceList") == BASE_PRICE_LIST]
    stock = item.get("ItemWarehouseInfoCollection") or []
    return {
        "BasePrices": [{"price": p.get("Price") or 0, "currency": p.get("Currency") or ""} for p in prices],
        "InStockTotal": sum(float(w.get("InStock") or 0) for w in stock),
        "WarehouseStock": ", ".join(f"{w.get('WarehouseCode')}: {float(w.get('InStock') or 0):g}" for w in stock),
    }


def invoice_derive(doc: dict[str, Any]) -> dict[str, Any]:
    status = "cancelled" if doc.get("Cancelled") == "tYES" else DOC_STATUS.get(doc.get("DocumentStatus"), "open")
    lines = "".join(f"<li>{line.get('Quantity', 0):g} × {line.get('ItemCode')} {line.get('ItemDescription') or ''}"
                    f" at {line.get('Price', 0)}</li>" for line in doc.get("DocumentLines") or [])
    return {
        "NoteContent": (f"<b>SAP Business One invoice {doc.get('DocNum')}</b> of {_day(doc.get('DocDate'))}: "
                        f"{doc.get('DocTotal')} {doc.get('DocCurrency') or ''}, {status}; due "
                        f"{_day(doc.get('DocDueDate'))}.<ul>{lines}</ul>"),
    }


def order_derive(doc: dict[str, Any]) -> dict[str, Any]:
    status = "cancelled" if doc.get("Cancelled") == "tYES" else DOC_STATUS.get(doc.get("DocumentStatus"), "open")
    return {"DocDay": _day(doc.get("DocDate")), "DueDay": _day(doc.get("DocDueDate")), "OrderStatus": status}


def order_skip(doc: dict[str, Any]) -> str:
    """Orders the deal_won_to_sales_order write-back made carry NumAtCard "PD-<deal id>": they came from
    a Pipedrive deal, so the inbound flow must not turn them into a second deal."""
    if str(doc.get("NumAtCard") or "").startswith(WRITEBACK_REFERENCE_PREFIX):
        return "made from a Pipedrive deal by the write-back"
    return ""


BUSINESS_PARTNERS = FlowKind(
    name="business_partners_to_organizations_and_persons",
    system="sap_b1",
    label="SAP Business One business partners → Pipedrive organizations and persons",
    source_object="business_partners",
    key_field="CardCode",
    target_entity="organizations",
    external_id_field="SAP B1 card code",
    mappings=(
        MappingSpec(source="CardName", target="name", required=True),
        MappingSpec(source="{Address}, {ZipCode} {City}, {Country}", target="address"),
        MappingSpec(source="CardType", target="custom:Partner type", lookup=CARD_TYPES),
        MappingSpec(source="CreditLimit", target="custom:Credit limit", field_type="double"),
        MappingSpec(source="GroupCode", target="custom:Customer group"),
        MappingSpec(source="Industry", target="custom:Segment"),
        MappingSpec(source="U_ProfitCenter", target="custom:Profit center"),
        MappingSpec(source="Currency", target="custom:Currency"),
        MappingSpec(source="Phone1", target="custom:Phone", field_type="phone"),
        MappingSpec(source="EmailAddress", target="custom:Email"),
    ),
    children=(
        Children(
            name="contacts", collection="ContactEmployees", key_field="InternalCode", target_entity="persons",
            parent_field="org_id", external_id_field="SAP B1 contact id",
            skip_when=(("Active", "tNO"),),  # an inactive contact leaves Pipedrive like a removed one
            mappings=(
                MappingSpec(source="Name", target="name", required=True),
                MappingSpec(source="E_Mail", target="emails"),
                MappingSpec(source="Phone1", target="phones"),
                MappingSpec(source="Position", target="custom:Position"),
            ),
        ),
    ),
)

ITEMS = FlowKind(
    name="items_to_products",
    system="sap_b1",
    label="SAP Business One items → Pipedrive products (prices and warehouse stock)",
    source_object="items",
    key_field="ItemCode",
    target_entity="products",
    external_id_field="SAP B1 item code",
    derive=item_derive,
    mappings=(
        MappingSpec(source="ItemName", target="name", required=True),
        MappingSpec(source="ItemCode", target="code"),
        MappingSpec(source="SalesUnit", target="unit"),
        MappingSpec(source="BasePrices", target="prices"),
        MappingSpec(source="InStockTotal", target="custom:Stock on hand", field_type="double"),
        MappingSpec(source="WarehouseStock", target="custom:Warehouse stock"),
        MappingSpec(source="ItemsGroupCode", target="custom:Item group"),
    ),
)

INVOICES = FlowKind(
    name="invoices_to_notes",
    system="sap_b1",
    label="SAP Business One invoices → notes on the customer's organization",
    source_object="invoices",
    key_field="DocEntry",
    target_entity="notes",
    external_id_field="",  # notes have no custom fields: a reference line in the note identifies it
    derive=invoice_derive,
    references=(Reference(target="org_id", source="CardCode", source_object="business_partners", label="customer"),),
    depends_on=("business_partners_to_organizations_and_persons",),
    mappings=(MappingSpec(source="NoteContent", target="content", required=True),),
)

ORDERS = FlowKind(
    name="orders_to_deals",
    system="sap_b1",
    label="SAP Business One sales orders → Pipedrive deals with their lines as products",
    source_object="orders",
    key_field="DocEntry",
    target_entity="deals",
    external_id_field="SAP B1 order entry",
    derive=order_derive,
    skip=order_skip,
    references=(Reference(target="org_id", source="CardCode", source_object="business_partners", label="customer"),),
    depends_on=("business_partners_to_organizations_and_persons", "items_to_products"),
    mappings=(
        MappingSpec(source="Order {DocNum} — {CardName}", target="title", required=True),
        MappingSpec(source="DocTotal", target="value"),
        MappingSpec(source="DocCurrency", target="currency"),
        MappingSpec(source="DueDay", target="expected_close_date"),
        MappingSpec(source="DocNum", target="custom:SAP B1 order number"),
        MappingSpec(source="OrderStatus", target="custom:Order status"),
    ),
    children=(
        Children(
            name="lines", collection="DocumentLines", key_field="LineNum", target_entity="deal_products",
            parent_field="",  # the deal's id goes in the URL, not the body
            references=(Reference(target="product_id", source="ItemCode", source_object="items", label="item"),),
            mappings=(
                MappingSpec(source="Quantity", target="quantity", required=True),
                MappingSpec(source="Price", target="item_price", required=True),
            ),
        ),
    ),
)


def sales_order_build(deal: dict[str, Any], lines: list[dict[str, Any]], reference: str) -> dict[str, Any]:
    """`SapB1Client.order_create` arguments: the deal's organization as the customer, its products as
    lines at the deal's quantities and prices (a percentage discount carried over)."""
    document_lines = []
    for line in lines:
        row = {"ItemCode": line["ItemCode"], "Quantity": line.get("quantity"), "UnitPrice": line.get("item_price")}
        if line.get("discount_type") == "percentage" and line.get("discount"):
            row["DiscountPercent"] = line["discount"]
        document_lines.append(row)
    title = str(deal.get("title") or "").strip()
    return {"card_code": deal["CardCode"], "reference": reference, "lines": document_lines,
            "comments": f"Pipedrive deal {deal.get('id')}" + (f": {title}" if title else "")}


DEAL_WON = FlowKind(
    name="deal_won_to_sales_order",
    system="sap_b1",
    label="Pipedrive deals won → SAP Business One sales orders (number written back to the deal)",
    direction="to_erp",
    source_object="deals",
    key_field="id",
    target_entity="orders",
    external_id_field="",
    mappings=(),
    depends_on=("business_partners_to_organizations_and_persons", "items_to_products"),
    writeback=WriteBack(
        document="orders", find="order_find", create="order_create", build=sales_order_build,
        reference=WRITEBACK_REFERENCE_PREFIX + "{deal_id}", id_field="DocEntry", number_field="DocNum", deal_field="SAP B1 order number",
        references=(Reference(target="CardCode", source="org_id", source_object="business_partners",
                              label="organization"),),
        line_references=(Reference(target="ItemCode", source="product_id", source_object="items", label="product"),),
    ),
)

FLOW_KINDS = {kind.name: kind for kind in (BUSINESS_PARTNERS, ITEMS, INVOICES, ORDERS, DEAL_WON)}
