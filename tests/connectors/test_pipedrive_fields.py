"""Custom fields by display name: keys per company, the database cache, creation, v2 value formats."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest

from connectors.base import ConnectorError
from connectors.pipedrive.fields import FieldResolver, name_key

ENUM = {"field_code": "e" * 40, "field_name": "Segment", "field_type": "enum", "is_custom_field": True,
        "options": [{"id": 7, "label": "Retail"}, {"id": 8, "label": "Wholesale"}]}
SET = {**ENUM, "field_type": "set", "field_name": "Tags"}


def convert(field_type: str, value, **extra):
    return FieldResolver.convert({"field_type": field_type, **extra}, value, label="The field 'X'")


def permanent_error(field_type: str, value, **extra) -> ConnectorError:
    with pytest.raises(ConnectorError) as caught:
        convert(field_type, value, **extra)
    assert caught.value.permanent
    return caught.value


def test_names_match_case_insensitively_and_trimmed():
    assert name_key("  ERP  Customer number ") == name_key("erp customer NUMBER")


def test_text_values_stay_strings_and_varchar_is_capped_at_255():
    assert convert("varchar", "Acme") == "Acme"
    assert convert("varchar", 1042) == "1042"
    assert convert("phone", "+1 555 0100") == "+1 555 0100"
    assert convert("text", "x" * 10_000) == "x" * 10_000
    assert "255" in permanent_error("varchar", "x" * 256).message
    permanent_error("varchar", {"a": 1})


def test_numbers_are_converted_by_us_because_v2_does_not_coerce():
    assert convert("double", "1234.50") == 1234.5
    assert convert("double", " 12 ") == 12
    assert convert("double", Decimal("3.25")) == 3.25
    assert convert("double", 7) == 7
    assert "not one" in permanent_error("double", "twelve").message
    permanent_error("double", True)
    permanent_error("double", "NaN")


def test_monetary_needs_an_amount_and_a_currency():
    assert convert("monetary", {"value": "99.90", "currency": "eur"}) == {"value": 99.9, "currency": "EUR"}
    assert convert("monetary", (100, "USD")) == {"value": 100, "currency": "USD"}
    assert "currency" in permanent_error("monetary", 100).message


def test_dates_are_year_month_day():
    assert convert("date", date(2026, 3, 1)) == "2026-03-01"
    assert convert("date", datetime(2026, 3, 1, 14, 5)) == "2026-03-01"
    assert convert("date", "2026-03-01T10:00:00Z") == "2026-03-01"
    assert "YYYY-MM-DD" in permanent_error("date", "01/03/2026").message
    assert convert("daterange", ("2026-01-01", date(2026, 1, 31))) == {"value": "2026-01-01", "until": "2026-01-31"}


def test_enum_labels_become_option_ids_and_unknown_labels_name_the_allowed_ones():
    assert FieldResolver.convert(ENUM, " wholesale ") == 8
    assert FieldResolver.convert(ENUM, 7) == 7
    with pytest.raises(ConnectorError) as caught:
        FieldResolver.convert(ENUM, "Government")
    assert caught.value.permanent
    assert "'Retail'" in caught.value.message and "'Wholesale'" in caught.value.message


def test_set_values_become_id_lists_and_empty_means_null():
    assert FieldResolver.convert(SET, ["Retail", "Wholesale", "retail"]) == [7, 8]
    assert FieldResolver.convert(SET, "Retail, Wholesale") == [7, 8]
    assert FieldResolver.convert(SET, []) is None  # Pipedrive rejects [] for set fields


def test_address_is_an_object_with_value_and_none_clears():
    assert convert("address", "1 Main St, Springfield") == {"value": "1 Main St, Springfield"}
    assert convert("address", {"value": "1 Main St", "locality": "Springfield"})["locality"] == "Springfield"
    assert convert("varchar", None) is None
    assert convert("user", "42") == 42
