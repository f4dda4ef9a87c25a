"""Sage 300 flow kinds: AR customers → Pipedrive organizations (additive only)."""

from __future__ import annotations

from connectors.base import FlowKind, MappingSpec

CUSTOMERS_TO_ORGANIZATIONS = FlowKind(
    name="customers_to_organizations",
    system="sage300",
    label="Sage 300 customers → Pipedrive organizations",
    source_object="customers",
    key_field="CustomerNumber",
    target_entity="organizations",
    external_id_field="Sage 300 customer number",
    additive_only=True,  # never touch an organization we did not create
    mappings=(
        MappingSpec(source="CustomerName", target="name", required=True),
        MappingSpec(
            source="{AddressLine1} {AddressLine2}, {City}, {StateProvince} {ZipPostalCode}, {Country}",
            target="address",
        ),
        MappingSpec(source="PhoneNumber", target="custom:Phone", field_type="phone"),
        MappingSpec(source="Email", target="custom:Email"),
        MappingSpec(source="WebSite", target="custom:Website"),
        MappingSpec(source="ContactName", target="custom:Contact name"),
        MappingSpec(source="Terms", target="custom:Payment terms"),
        MappingSpec(source="CreditLimitCustomerCurrency", target="custom:Credit limit", field_type="double"),
        MappingSpec(source="CurrencyCode", target="custom:Currency"),
        MappingSpec(source="GroupCode", target="custom:Customer group"),
        MappingSpec(source="Status", target="custom:Sage 300 status"),
    ),
)

FLOW_KINDS = {kind.name: kind for kind in (CUSTOMERS_TO_ORGANIZATIONS,)}
