"""Custom fields by display name: keys per company, the database cache, creation, v2 value formats."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest

from connectors.base import ConnectorError
from connectors.models import Connection
from connectors.pipedrive.client import PipedriveClient
from connectors.pipedrive.fields import FieldResolver, name_key
from tests.connectors.test_pipedrive_client import company_create, company_stats, pipedrive_connection
from tests.processes import run_together

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


# -- against the sandbox ----------------------------------------------------------------------------


def field_calls(sandbox, company: dict) -> int:
    stats = company_stats(sandbox, company)["calls_by_operation"]
    return sum(n for op, n in stats.items() if op.endswith("Fields"))


@pytest.fixture
def fast_retries(settings):
    settings.PIPEDRIVE_RETRY_BASE_S = 0.01


@pytest.fixture
def two_companies(db, tenant, sandbox, fast_retries):
    made = []
    for name in ("Acme Sales", "Globex Trading"):
        company = company_create(sandbox, name=name)
        client = PipedriveClient.from_connection(pipedrive_connection(tenant, sandbox, company))
        made.append((company, client))
    return made


def test_custom_fields_round_trip_under_two_companies_with_different_keys(sandbox, two_companies):
    keys = []
    for company, client in two_companies:
        fields = FieldResolver(client)
        fields.ensure("organizations", "ERP customer number", "varchar")
        fields.ensure("organizations", "Credit limit", "monetary")
        fields.ensure("organizations", "Segment", "enum", options=["Retail", "Wholesale"])
        fields.ensure("organizations", "Regions", "set", options=["North", "South", "East"])
        fields.ensure("organizations", "Customer since", "date")
        fields.ensure("organizations", "Discount", "double")
        values = {"ERP customer number": "C-1001", "Credit limit": {"value": "2500.50", "currency": "usd"},
                  "Segment": "wholesale", "Regions": ["South", "East"], "Customer since": date(2019, 5, 1),
                  "Discount": "12.5"}
        org = client.entity_create("organizations", {"name": company["name"],
                                                      "custom_fields": fields.custom_fields("organizations", values)})
        stored = client.entity_get("organizations", org["id"])["custom_fields"]
        key = fields.key
        assert stored[key("organizations", "ERP customer number")] == "C-1001"
        assert stored[key("organizations", "Credit limit")] == {"value": 2500.5, "currency": "USD"}
        segment = fields.field("organizations", "Segment")
        assert stored[segment["field_code"]] == next(o["id"] for o in segment["options"] if o["label"] == "Wholesale")
        assert len(stored[key("organizations", "Regions")]) == 2
        assert stored[key("organizations", "Customer since")] == "2019-05-01"
        assert stored[key("organizations", "Discount")] == 12.5
        keys.append(key("organizations", "erp CUSTOMER number "))
    assert keys[0] != keys[1]  # the same name, a different 40-character key in every company
    assert all(len(k) == 40 for k in keys)


def test_a_rerun_resolves_fields_with_zero_field_calls(sandbox, two_companies):
    company, client = two_companies[0]
    FieldResolver(client).ensure("organizations", "ERP customer number", "varchar")
    before = field_calls(sandbox, company)
    # The next run's client for the same connection shares its cache (the sandbox is not Pipedrive's
    # own host, so the cache is keyed by the connection, not by the company id it claims).
    rerun = FieldResolver(PipedriveClient.from_connection(Connection.objects.get(pk=client.connection_pk)))
    assert len(rerun.key("organizations", "ERP customer number")) == 40
    assert rerun.value_for("organizations", "ERP customer number", 1001) == "1001"
    assert field_calls(sandbox, company) == before


def test_companies_do_not_share_cached_fields(sandbox, two_companies):
    (first, first_client), (second, second_client) = two_companies
    FieldResolver(first_client).ensure("organizations", "ERP customer number", "varchar")
    with pytest.raises(ConnectorError):
        FieldResolver(second_client).key("organizations", "ERP customer number")


def test_a_missing_field_is_a_permanent_error_that_says_what_to_do(sandbox, two_companies):
    company, client = two_companies[0]
    with pytest.raises(ConnectorError) as caught:
        FieldResolver(client).key("organizations", "  ERP customer number ")
    assert caught.value.permanent
    assert caught.value.message == ("Pipedrive has no organization field named 'ERP customer number'. Create it in "
                                    "Pipedrive or turn on 'create missing fields'.")


def test_a_miss_reloads_the_definitions_once(sandbox, two_companies):
    company, client = two_companies[0]
    fields = FieldResolver(client)
    fields.definitions("deals")
    sandbox.control("POST", f"pipedrive/companies/{company['company_id']}/fields/deals",
                    json={"field_name": "ERP order number", "field_type": "varchar"})  # added in the UI
    before = field_calls(sandbox, company)
    assert len(fields.key("deals", "ERP order number")) == 40
    assert field_calls(sandbox, company) == before + 1
    for _ in range(3):
        assert fields.find("deals", "No such field") is None
    assert field_calls(sandbox, company) == before + 1  # no reload storm for a field that does not exist


def test_invalidate_forgets_the_cache_after_a_rejected_field(sandbox, two_companies):
    company, client = two_companies[0]
    fields = FieldResolver(client)
    fields.ensure("persons", "ERP contact id", "varchar")
    before = field_calls(sandbox, company)
    fields.invalidate("persons")
    assert len(FieldResolver(client).key("persons", "ERP contact id")) == 40
    assert field_calls(sandbox, company) == before + 1


def test_unknown_enum_label_names_the_allowed_labels(sandbox, two_companies):
    company, client = two_companies[0]
    fields = FieldResolver(client)
    fields.ensure("deals", "Channel", "enum", options=["Web", "Phone"])
    with pytest.raises(ConnectorError) as caught:
        fields.value_for("deals", "Channel", "Fax")
    assert caught.value.permanent and "'Web', 'Phone'" in caught.value.message


@pytest.mark.django_db(transaction=True)
def test_two_workers_creating_the_same_field_make_one(tenant, sandbox, fast_retries):
    company = company_create(sandbox)
    connection = pipedrive_connection(tenant, sandbox, company)
    def work(barrier) -> str:
        fields = FieldResolver(PipedriveClient.from_connection(connection))
        fields.definitions("organizations")
        barrier.wait(timeout=10)
        return fields.ensure("organizations", "ERP customer number", "varchar")

    keys = run_together(work)
    assert len(set(keys)) == 1
    created = sandbox.control("GET", f"pipedrive/companies/{company['company_id']}/fields/organizations")["fields"]
    assert [f["field_name"] for f in created if f["is_custom_field"]] == ["ERP customer number"]


def test_creating_a_missing_field_costs_one_reload_and_one_create(sandbox, two_companies):
    company, client = two_companies[0]
    fields = FieldResolver(client)
    fields.definitions("products")
    before = company_stats(sandbox, company)["calls_by_operation"]
    fields.ensure("products", "ERP item code", "varchar")
    after = company_stats(sandbox, company)["calls_by_operation"]
    assert after["getProductFields"] - before["getProductFields"] == 1
    assert after["addProductField"] == 1
    assert fields.ensure("products", "ERP item code", "varchar") == fields.key("products", "erp item code")
    assert company_stats(sandbox, company)["calls_by_operation"] == after
