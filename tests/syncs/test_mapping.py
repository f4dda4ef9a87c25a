"""Field mapping: templates, lookups, required values and type errors, per record."""

import pytest

from connectors.pipedrive.fields import FieldResolver
from syncs.mapping import Mapper, MappingError, Rule, payload_hash, render


class FakeResolver:
    """Stands in for the Pipedrive field cache: this test is about one function (the mapper)."""

    fields = {
        "Sage 300 customer number": {"field_code": "a" * 40, "field_type": "varchar"},
        "Credit limit": {"field_code": "b" * 40, "field_type": "double"},
        "Tier": {"field_code": "c" * 40, "field_type": "enum", "options": [{"id": 7, "label": "Gold"},
                                                                           {"id": 8, "label": "Silver"}]},
    }

    def key(self, entity, name):
        return self.fields[name]["field_code"]

    ensure = key

    def field(self, entity, name):
        return self.fields[name]

    convert = staticmethod(FieldResolver.convert)


def mapper(*rules: Rule) -> Mapper:
    return Mapper(rules=list(rules), entity="organizations", resolver=FakeResolver(),
                  external_id_field="Sage 300 customer number", create_missing_fields=False)


def test_template_tidies_empty_parts():
    rule = Rule(source="{AddressLine1} {AddressLine2}, {City}, {StateProvince} {ZipPostalCode}, {Country}",
                target="address")
    record = {"AddressLine1": "1 Main St", "AddressLine2": "", "City": "Springfield", "StateProvince": "",
              "ZipPostalCode": "", "Country": "US"}
    assert render(rule, record) == "1 Main St, Springfield, US"


def test_body_nests_custom_fields_under_their_keys_with_the_external_id():
    body = mapper(Rule(source="CustomerName", target="name", required=True),
                  Rule(source="CreditLimitCustomerCurrency", target="custom:Credit limit")).body(
        {"CustomerName": " Acme ", "CreditLimitCustomerCurrency": "12500.50"}, "1200")
    assert body == {"name": "Acme", "custom_fields": {"a" * 40: "1200", "b" * 40: 12500.5}}


def test_lookup_table_maps_enum_values_and_rejects_unknown_ones():
    m = mapper(Rule(source="GroupCode", target="custom:Tier", lookup={"WHL": "Gold", "RTL": "Silver"}))
    assert m.body({"GroupCode": "RTL"}, "1")["custom_fields"]["c" * 40] == 8
    with pytest.raises(MappingError, match="no entry in the lookup table"):
        m.body({"GroupCode": "XXX"}, "1")


def test_type_mismatch_is_a_clear_permanent_error():
    m = mapper(Rule(source="CreditLimitCustomerCurrency", target="custom:Credit limit"))
    with pytest.raises(Exception) as caught:
        m.body({"CreditLimitCustomerCurrency": "lots"}, "1")
    assert caught.value.permanent and "Credit limit" in caught.value.message


def test_required_empty_value_fails_the_record():
    with pytest.raises(MappingError, match="CustomerName is empty"):
        mapper(Rule(source="CustomerName", target="name", required=True)).body({"CustomerName": "  "}, "1")


def test_unknown_standard_target_is_refused_up_front():
    with pytest.raises(MappingError, match="not a Pipedrive organizations field"):
        mapper(Rule(source="CustomerName", target="nmae"))


def test_hash_ignores_key_order():
    assert payload_hash({"a": 1, "b": {"x": 1, "y": 2}}) == payload_hash({"b": {"y": 2, "x": 1}, "a": 1})
