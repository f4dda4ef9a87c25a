"""SYSPRO 8 flow kinds. Take them in this order on first set-up: customers and stock items first, then
sales orders (deals on the customers' organizations, lines on the stock items' products) and the
customers' stock (a note on each organization). Nothing is ever written to SYSPRO."""

from __future__ import annotations

from typing import Any

from connectors.base import Children, FlowKind, MappingSpec, Reference
from connectors.syspro.records import number

# SYSPRO order status codes; shipment status as the e.net sales order query reports it
ORDER_STATUSES = {
    "1": "Open order",
    "2": "Open back order",
    "3": "Released back order",
    "4": "In warehouse",
    "8": "To invoice",
    "9": "Complete",
    "\\": "Cancelled",
    "S": "Suspense",
    "F": "Forward order",
    "0": "In progress",
}
SHIPMENT_STATUSES = {"N": "Not shipped", "P": "Partially shipped", "C": "Shipped", "": "Not shipped"}
NON_STOCK_LINE_TYPES = ("4", "5", "6", "7")  # freight, miscellaneous charge, comment, non-stocked


def _day(value: Any) -> str:
    return str(value or "").strip()[:10]


def _qty(value: Any) -> str:
    amount = number(value)
    return "?" if amount is None else f"{amount:g}"


def customer_derive(row: dict[str, Any]) -> dict[str, Any]:
    return {"OnHold": "Yes" if str(row.get("CustomerOnHold") or "").strip().upper() == "Y" else "No"}


def order_derive(row: dict[str, Any]) -> dict[str, Any]:
    status = str(row.get("OrderStatus") or "").strip()
    shipment = str(row.get("ShipmentStatus") or "").strip().upper()
    label = ORDER_STATUSES.get(status, f"Status {status}" if status else "Unknown")
    return {
        "OrderDay": _day(row.get("OrderDate")),
        "ShipDay": _day(row.get("ReqShipDate")),
        "StatusText": f"{label} — {SHIPMENT_STATUSES.get(shipment, shipment or 'Not shipped')}",
    }


def stock_item_derive(row: dict[str, Any]) -> dict[str, Any]:
    warehouses = row.get("Warehouses") or []
    available = [(str(w.get("Warehouse") or ""), number(w.get("QtyAvailable")) or 0.0) for w in warehouses]
    price = number(row.get("SellingPrice"))
    return {
        "Prices": [{"price": price, "currency": ""}] if price is not None else [],
        "AvailableTotal": sum(q for _, q in available),
        "WarehouseStock": ", ".join(f"{code}: {qty:g}" for code, qty in available),
    }


def stock_note_derive(row: dict[str, Any]) -> dict[str, Any]:
    items = "".join(
        f"<li>{s['StockCode']}: {s['Available']:g} available"
        + (f" ({', '.join(f'{w} {q:g}' for w, q in s['Warehouses'].items())})" if s["Warehouses"] else "")
        + "</li>"
        for s in row.get("Stock") or []
    )
    return {
        "StockNote": f"<b>SYSPRO stock of the items {row.get('Name') or row.get('Customer')} buys</b>"
        f"<ul>{items}</ul>"
    }


def stock_note_skip(row: dict[str, Any]) -> str:
    return "" if row.get("Stock") else "has not ordered any stocked item"


CUSTOMERS = FlowKind(
    name="customers_to_organizations",
    system="syspro",
    label="SYSPRO customers → Pipedrive organizations",
    source_object="customers",
    key_field="Customer",
    target_entity="organizations",
    external_id_field="SYSPRO customer",
    derive=customer_derive,
    mappings=(
        MappingSpec(source="Name", target="name", required=True),
        MappingSpec(
            source="{SoldToAddr1}, {SoldToAddr2}, {SoldToAddr3}, {SoldToAddr4} {SoldPostalCode}, "
            "{SoldToAddr5}",
            target="address",
        ),
        MappingSpec(source="CustomerClass", target="custom:Customer class"),
        MappingSpec(source="Branch", target="custom:Branch"),
        MappingSpec(source="Salesperson", target="custom:Salesperson"),
        MappingSpec(source="Currency", target="custom:Currency"),
        MappingSpec(source="CreditLimit", target="custom:Credit limit", field_type="double"),
        MappingSpec(source="Telephone", target="custom:Phone", field_type="phone"),
        MappingSpec(source="Email", target="custom:Email"),
        MappingSpec(source="OnHold", target="custom:On hold"),
    ),
)

STOCK_ITEMS = FlowKind(
    name="stock_items_to_products",
    system="syspro",
    label="SYSPRO stock items → Pipedrive products (selling price and available stock)",
    source_object="stock_items",
    key_field="StockCode",
    target_entity="products",
    external_id_field="SYSPRO stock code",
    derive=stock_item_derive,
    mappings=(
        MappingSpec(source="Description", target="name", required=True),
        MappingSpec(source="StockCode", target="code"),
        MappingSpec(source="StockUom", target="unit"),
        MappingSpec(source="Prices", target="prices"),
        MappingSpec(source="AvailableTotal", target="custom:Available stock", field_type="double"),
        MappingSpec(source="WarehouseStock", target="custom:Warehouse stock"),
        MappingSpec(source="ProductClass", target="custom:Product class"),
    ),
)

SALES_ORDERS = FlowKind(
    name="sales_orders_to_deals",
    system="syspro",
    label="SYSPRO sales orders → Pipedrive deals with their lines as products",
    source_object="sales_orders",
    key_field="SalesOrder",
    target_entity="deals",
    external_id_field="SYSPRO sales order",
    derive=order_derive,
    references=(Reference(target="org_id", source="Customer", source_object="customers", label="customer"),),
    depends_on=("customers_to_organizations", "stock_items_to_products"),
    mappings=(
        MappingSpec(source="Order {SalesOrder} — {CustomerName}", target="title", required=True),
        MappingSpec(source="OrderValue", target="value"),
        MappingSpec(source="Currency", target="currency"),
        MappingSpec(source="ShipDay", target="expected_close_date"),
        MappingSpec(source="OrderDay", target="custom:Order date", field_type="date"),
        MappingSpec(source="StatusText", target="custom:Order status"),
        MappingSpec(source="CustomerPoNumber", target="custom:Customer PO"),
    ),
    children=(
        Children(
            name="lines",
            collection="Lines",
            key_field="SalesOrderLine",
            target_entity="deal_products",
            parent_field="",  # the deal's id goes in the URL, not the body
            skip_when=tuple(("LineType", t) for t in NON_STOCK_LINE_TYPES),
            references=(
                Reference(
                    target="product_id", source="MStockCode", source_object="stock_items", label="stock item"
                ),
            ),
            mappings=(
                MappingSpec(source="MOrderQty", target="quantity", required=True),
                MappingSpec(source="MPrice", target="item_price", required=True),
            ),
        ),
    ),
)

CUSTOMER_STOCK = FlowKind(
    name="stock_to_organizations",
    system="syspro",
    label="SYSPRO stock of the items each customer buys → a note on its organization",
    source_object="customer_stock",
    key_field="Customer",
    target_entity="notes",
    external_id_field="",  # notes have no custom fields: a reference line in the note identifies it
    derive=stock_note_derive,
    skip=stock_note_skip,
    references=(Reference(target="org_id", source="Customer", source_object="customers", label="customer"),),
    depends_on=("customers_to_organizations",),
    mappings=(MappingSpec(source="StockNote", target="content", required=True),),
)

FLOW_KINDS = {kind.name: kind for kind in (CUSTOMERS, STOCK_ITEMS, SALES_ORDERS, CUSTOMER_STOCK)}
