"""IFS Cloud flow kinds. Customers first, then sales orders (a deal goes on its customer's organization);
the stage write-back acts on orders the sales orders flow linked to deals."""

from __future__ import annotations

from typing import Any

from connectors.base import FlowKind, MappingSpec, Reference, WriteBack

# Objstate → words on the deal. The write-back's echo stops at its own dedupe key, not at these values.
ORDER_STATES = {"Planned": "Planned", "Released": "Released", "Reserved": "Reserved", "Picked": "Picked",
                "PartiallyDelivered": "Partially delivered", "Delivered": "Delivered", "Invoiced": "Invoiced",
                "Cancelled": "Cancelled", "Blocked": "Blocked", "Closed": "Closed"}
# IFS's accounting code parts: B is the cost center and C the profit center in the standard setup.
# The bound actions a stage may run (CustomerOrder_<action>) and the Objstate each leads to: an order
# already in that state needs nothing (our own earlier attempt whose answer was lost, or a person in IFS).
ORDER_ACTIONS = (("Release", "Released"), ("Reserve", "Reserved"), ("Deliver", "Delivered"),
                 ("Invoice", "Invoiced"), ("Close", "Closed"), ("Cancel", "Cancelled"))


def _day(value: Any) -> str:
    return str(value or "")[:10]


def order_derive(order: dict[str, Any]) -> dict[str, Any]:
    return {"WantedDay": _day(order.get("WantedDeliveryDate")), "OrderDay": _day(order.get("DateEntered"))}


CUSTOMERS = FlowKind(
    name="customers_to_organizations",
    system="ifs",
    label="IFS Cloud customers → Pipedrive organizations",
    source_object="customers",
    key_field="CustomerId",
    target_entity="organizations",
    external_id_field="IFS customer id",
    mappings=(
        MappingSpec(source="Name", target="name", required=True),
        MappingSpec(source="{Address1}, {ZipCode} {City}, {Country}", target="address"),
        MappingSpec(source="CustomerCategory", target="custom:Customer category"),
        MappingSpec(source="Country", target="custom:Country"),
    ),
)

SALES_ORDERS = FlowKind(
    name="sales_orders_to_deals",
    system="ifs",
    label="IFS Cloud customer orders → Pipedrive deals (GL dimensions and order status)",
    source_object="sales_orders",
    key_field="OrderNo",
    target_entity="deals",
    external_id_field="IFS order number",
    derive=order_derive,
    references=(Reference(target="org_id", source="CustomerNo", source_object="customers", label="customer"),),
    depends_on=("customers_to_organizations",),
    mappings=(
        MappingSpec(source="Order {OrderNo} — {CustomerNo}", target="title", required=True),
        MappingSpec(source="TotalAmount", target="value"),
        MappingSpec(source="CurrencyCode", target="currency"),
        MappingSpec(source="WantedDay", target="expected_close_date"),
        MappingSpec(source="CodeB", target="custom:Cost center"),
        MappingSpec(source="CodeC", target="custom:Profit center"),
        MappingSpec(source="RegionCode", target="custom:Region"),
        MappingSpec(source="Objstate", target="custom:Order status", lookup=ORDER_STATES),
    ),
)

DEAL_STAGE = FlowKind(
    name="deal_stage_to_order_status",
    system="ifs",
    label="Pipedrive deal stage → IFS Cloud customer order status (a bound action per mapped stage)",
    direction="to_erp",
    source_object="deals",
    key_field="id",
    target_entity="sales_orders",
    external_id_field="",
    mappings=(),
    depends_on=("customers_to_organizations", "sales_orders_to_deals"),
    writeback=WriteBack(
        document="sales_orders", mode="action", trigger="stage_changed", act="order_action",
        actions=ORDER_ACTIONS, id_field="OrderNo", number_field="OrderNo",
        # The deal came from an order: its link (sales_orders_to_deals) gives the order number back.
        document_of=Reference(target="order_no", source="id", source_object="sales_orders", label="order"),
    ),
)

FLOW_KINDS = {kind.name: kind for kind in (CUSTOMERS, SALES_ORDERS, DEAL_STAGE)}
