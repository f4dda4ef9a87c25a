"""The Sage 300 simulator over real HTTP: auth, headers, OData paging/filtering, envelopes, control API."""

from __future__ import annotations

import random
from datetime import date

import pytest
import requests

from sandbox import generator

JSON = {"Content-Type": "application/json"}
TODAY = "2024-05-10"


@pytest.fixture
def sage(sandbox):
    sandbox.control("POST", "sage300/companies", json={
        "company": "SAMLTD", "user": "ADMIN", "password": "ADMIN", "customers": 250, "seed": 5, "today": TODAY})
    return sandbox


def customers_url(sandbox, company: str = "SAMLTD") -> str:
    return f"{sandbox.url}/Sage300WebApi/v1.0/-/{company}/AR/ARCustomers"


def get(sandbox, suffix: str = "", params=None, *, auth=("ADMIN", "ADMIN"), headers=JSON, company="SAMLTD"):
    return requests.get(customers_url(sandbox, company) + suffix, params=params, auth=auth, headers=headers,
                        timeout=10)


def assert_envelope(resp, status: int, code: str) -> str:
    assert resp.status_code == status
    error = resp.json()["error"]
    assert error["code"] == code
    assert error["message"]["lang"] == "en-US"
    assert error["message"]["value"]
    return error["message"]["value"]


# --- auth and headers --------------------------------------------------------------------------------

@pytest.mark.parametrize("user,password", [("ADMIN", "ADMIN"), ("admin", "admin"), ("Admin", "aDMIN")])
def test_credentials_are_accepted_case_insensitively(sage, user, password):
    resp = get(sage, params={"$top": "1"}, auth=(user, password))
    assert resp.status_code == 200
    assert len(resp.json()["value"]) == 1


def test_wrong_password_gets_401_with_the_sage_envelope(sage):
    resp = get(sage, auth=("ADMIN", "WRONG"))
    assert_envelope(resp, 401, "Unauthorized")
    assert resp.headers["WWW-Authenticate"].startswith("Basic")


def test_missing_credentials_and_unknown_company_get_401(sage):
    assert_envelope(get(sage, auth=None), 401, "Unauthorized")
    assert_envelope(get(sage, company="NOSUCH"), 401, "Unauthorized")


def test_company_is_matched_case_insensitively(sage):
    assert get(sage, params={"$top": "1"}, company="samltd").status_code == 200


def test_missing_content_type_is_a_500(sage):
    resp = get(sage, headers={})
    assert_envelope(resp, 500, "InternalServerError")
    assert "Content-Type" in resp.json()["error"]["message"]["value"]


# --- paging ------------------------------------------------------------------------------------------

def test_pages_are_capped_at_100_rows(sage):
    for params in ({}, {"$top": "500"}, {"$top": "100"}):
        body = get(sage, params=params).json()
        assert len(body["value"]) == 100
        assert body["@odata.context"].endswith("/SAMLTD/AR/$metadata#ARCustomers")
    assert len(get(sage, params={"$top": "7"}).json()["value"]) == 7


def test_next_link_walks_every_row_once_in_customer_number_order(sage):
    url, params, keys, pages = customers_url(sage), {"$count": "true"}, [], []
    while url:
        body = requests.get(url, params=params, auth=("ADMIN", "ADMIN"), headers=JSON, timeout=10).json()
        pages.append(len(body["value"]))
        keys += [row["CustomerNumber"] for row in body["value"]]
        url, params = body.get("@odata.nextLink"), None
    assert pages == [100, 100, 50]
    assert keys == sorted(set(keys)) and len(keys) == 250


def test_count_is_a_string_of_the_filtered_total(sage):
    body = get(sage, params={"$count": "true", "$top": "1"}).json()
    assert body["@odata.count"] == "250"
    body = get(sage, params={"$count": "true", "$filter": "CustomerNumber lt '1000010'"}).json()
    assert body["@odata.count"] == "10"
    assert "@odata.nextLink" not in body
    assert "@odata.count" not in get(sage).json()


def test_skip_past_the_end_is_an_empty_page(sage):
    body = get(sage, params={"$skip": "1000"}).json()
    assert body["value"] == [] and "@odata.nextLink" not in body


# --- filter, select, orderby --------------------------------------------------------------------------

def test_filter_on_date_last_maintained_with_a_datetime_literal(sage):
    changed = sage.control("POST", "sage300/companies/SAMLTD/mutate",
                           json={"count": 12, "seed": 3, "today": "2024-05-20"})["changed"]
    assert len(changed) == 12
    body = get(sage, params={"$filter": "DateLastMaintained ge datetime'2024-05-20T00:00'", "$count": "true"}).json()
    assert [row["CustomerNumber"] for row in body["value"]] == sorted(changed)
    assert {row["DateLastMaintained"] for row in body["value"]} == {"2024-05-20T00:00:00"}
    older = get(sage, params={"$filter": "DateLastMaintained lt datetime'2024-05-20T00:00'", "$count": "true"})
    assert int(older.json()["@odata.count"]) == 250 - 12


def test_filter_combines_and_or_on_number_status_and_date(sage):
    body = get(sage, params={"$filter": "CustomerNumber eq '1000003' or CustomerNumber eq '1000007'"}).json()
    assert [row["CustomerNumber"] for row in body["value"]] == ["1000003", "1000007"]
    body = get(sage, params={"$filter": "CustomerNumber gt '1000245'"}).json()
    assert len(body["value"]) == 4
    active = get(sage, params={"$filter": "Status eq 'Active'", "$count": "true"}).json()["@odata.count"]
    inactive = get(sage, params={"$filter": "Status ne 'Active'", "$count": "true"}).json()["@odata.count"]
    assert int(active) + int(inactive) == 250 and int(inactive) > 0
    both = get(sage, params={"$filter": "Status eq 'Inactive' and DateLastMaintained le datetime'2024-05-10T00:00'",
                             "$count": "true"}).json()
    assert both["@odata.count"] == inactive


def test_select_returns_only_the_named_fields(sage):
    body = get(sage, params={"$select": "CustomerNumber,CustomerName", "$top": "3"}).json()
    assert [set(row) for row in body["value"]] == [{"CustomerNumber", "CustomerName"}] * 3
    assert body["@odata.context"].endswith("#ARCustomers(CustomerNumber,CustomerName)")


def test_orderby_descending_is_stable(sage):
    body = get(sage, params={"$orderby": "GroupCode desc, CustomerNumber", "$select": "CustomerNumber,GroupCode",
                             "$top": "100"}).json()
    pairs = [(row["GroupCode"], row["CustomerNumber"]) for row in body["value"]]
    assert pairs == sorted(pairs, key=lambda p: (_desc(p[0]), p[1]))


def _desc(text: str) -> tuple:
    return tuple(-ord(ch) for ch in text) + (1,)


@pytest.mark.parametrize("expression", [
    "DateLastMaintained ge '2024-05-01'",  # a date needs a datetime literal
    "NoSuchField eq 'x'",
    "CustomerNumber eq",
    "CustomerNumber eq 'unterminated",
    "CreditLimitCustomerCurrency gt 'lots'",
])
def test_bad_filter_is_400_invalid_parameters(sage, expression):
    assert_envelope(get(sage, params={"$filter": expression}), 400, "InvalidParameters")


def test_bad_query_options_are_400(sage):
    assert_envelope(get(sage, params={"$top": "-1"}), 400, "InvalidParameters")
    assert_envelope(get(sage, params={"$select": "Nope"}), 400, "InvalidParameters")
    assert_envelope(get(sage, params={"$orderby": "Nope desc"}), 400, "InvalidParameters")


# --- single records and writes -------------------------------------------------------------------------

def test_single_customer_by_key(sage):
    body = get(sage, "('1000004')").json()
    assert body["CustomerNumber"] == "1000004"
    assert body["@odata.context"].endswith("#ARCustomers/$entity")
    assert body["DateLastMaintained"].endswith("T00:00:00")
    for field in ("CustomerName", "AddressLine1", "AddressLine4", "City", "StateProvince", "ZipPostalCode",
                  "Country", "ContactName", "PhoneNumber", "FaxNumber", "Terms", "CurrencyCode",
                  "CreditLimitCustomerCurrency", "Email", "WebSite", "ShortName", "GroupCode", "Status"):
        assert field in body
    assert get(sage, "(CustomerNumber='1000004')").json()["CustomerNumber"] == "1000004"


def test_unknown_customer_is_404_record_not_found(sage):
    assert_envelope(get(sage, "('NOPE')"), 404, "RecordNotFound")


def test_post_patch_delete_a_customer(sage):
    url = customers_url(sage)
    auth = ("ADMIN", "ADMIN")
    created = requests.post(url, json={"CustomerNumber": "O'NEIL", "CustomerName": "O'Neil & Söhne GmbH"},
                            auth=auth, timeout=10)
    assert created.status_code == 201
    assert created.json()["DateLastMaintained"] == f"{TODAY}T00:00:00"
    one = f"{url}('O''NEIL')"
    assert requests.get(one, auth=auth, headers=JSON, timeout=10).json()["CustomerName"] == "O'Neil & Söhne GmbH"
    duplicate = requests.post(url, json={"CustomerNumber": "O'NEIL"}, auth=auth, timeout=10)
    assert_envelope(duplicate, 409, "RecordDuplicate")
    assert requests.patch(one, json={"City": "Köln"}, auth=auth, timeout=10).status_code == 204
    assert requests.get(one, auth=auth, headers=JSON, timeout=10).json()["City"] == "Köln"
    assert requests.delete(one, auth=auth, headers=JSON, timeout=10).status_code == 204
    assert_envelope(requests.get(one, auth=auth, headers=JSON, timeout=10), 404, "RecordNotFound")


# --- control API ---------------------------------------------------------------------------------------

def test_mutate_changes_fields_and_dates(sage):
    before = {key: get(sage, f"('{key}')").json() for key in ("1000010", "1000020")}
    assert all(row["DateLastMaintained"] <= f"{TODAY}T00:00:00" for row in before.values())
    result = sage.control("POST", "sage300/companies/SAMLTD/mutate",
                          json={"fraction": 0.1, "seed": 9, "today": "2024-05-21", "create": 2, "delete": 1})
    assert len(result["changed"]) == 25 and len(result["created"]) == 2 and len(result["deleted"]) == 1
    for key in result["changed"][:10]:
        if key in result["deleted"]:
            continue
        row = get(sage, f"('{key}')").json()
        assert row["DateLastMaintained"] == "2024-05-21T00:00:00"
    info = sage.control("GET", "sage300/companies/SAMLTD")
    assert info["customers"] == 251 and info["today"] == "2024-05-21"


def test_mutate_can_keep_to_given_fields_and_return_each_record_before_and_after(sage):
    result = sage.control("POST", "sage300/companies/SAMLTD/mutate", json={
        "count": 30, "seed": 4, "today": "2024-05-21", "fields": ["FaxNumber"], "records": True})
    assert len(result["changed"]) == 30 and set(result["before"]) == set(result["after"]) == set(result["changed"])
    edited = set()
    for key in result["changed"]:
        before, after = result["before"][key], result["after"][key]
        served = get(sage, f"('{key}')").json()
        assert after == {k: v for k, v in served.items() if not k.startswith("@odata")}  # what the API serves
        edited |= {name for name in after if after[name] != before[name]}
    assert edited == {"FaxNumber", "DateLastMaintained"}
    with pytest.raises(requests.HTTPError):
        sage.control("POST", "sage300/companies/SAMLTD/mutate", json={"count": 1, "fields": ["NoSuchField"]})


def test_control_upsert_sets_date_and_fields(sage):
    sage.control("PUT", "sage300/companies/SAMLTD/customers/1000001",
                 json={"CustomerName": "Renamed Ltd", "DateLastMaintained": "2024-05-09"})
    row = get(sage, "('1000001')").json()
    assert row["CustomerName"] == "Renamed Ltd" and row["DateLastMaintained"] == "2024-05-09T00:00:00"
    sage.control("POST", "sage300/companies/SAMLTD/today", json={"today": "2024-06-01"})
    sage.control("PATCH", "sage300/companies/SAMLTD/customers/1000001", json={"City": "Cork"})
    assert get(sage, "('1000001')").json()["DateLastMaintained"] == "2024-06-01T00:00:00"
    sage.control("DELETE", "sage300/companies/SAMLTD/customers/1000001")
    assert get(sage, "('1000001')").status_code == 404


def test_malformed_records_are_served_as_stored(sage):
    made = sage.control("POST", "sage300/companies/SAMLTD/malformed",
                        json={"kinds": ["missing_name", "missing_fields", "wrong_type"]})["created"]
    by_kind = {kind: key for key, kind in made.items()}
    assert get(sage, f"('{by_kind['missing_name']}')").json()["CustomerName"] == ""
    assert "CustomerName" not in get(sage, f"('{by_kind['missing_fields']}')").json()
    assert get(sage, f"('{by_kind['wrong_type']}')").json()["CreditLimitCustomerCurrency"] == "n/a"
    # a wrongly typed value never matches a numeric comparison, and never breaks the query
    resp = get(sage, params={"$filter": "CreditLimitCustomerCurrency ge 0", "$count": "true"})
    assert resp.status_code == 200


def test_injected_429_uses_the_sage_envelope(sage):
    sage.control("POST", "sage300/faults", json={"rate_429": 1.0, "seed": 1})
    assert_envelope(get(sage), 429, "TooManyRequests")


def test_concurrency_limit_answers_429(sage):
    sage.control("POST", "sage300/settings", json={"max_concurrent": 1, "latency_ms": 300})
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        statuses = sorted(r.status_code for r in pool.map(lambda _: get(sage, params={"$top": "1"}), range(4)))
    assert statuses[0] == 200 and statuses[-1] == 429


def test_stats_count_requests(sage):
    get(sage)
    get(sage, auth=("ADMIN", "BAD"))
    stats = sage.control("GET", "sage300/stats")
    assert stats["requests"] == 2 and stats["by_status"] == {"200": 1, "401": 1}
    assert stats["by_company"] == {"SAMLTD": 2} and stats["customers"] == {"SAMLTD": 250}
    assert stats["recent"][-1]["status"] == 401


def test_reset_clears_companies(sage):
    sage.reset()
    assert sage.control("GET", "sage300/companies") == {"companies": []}


def test_a_100k_company_is_created_and_paged(sandbox):
    # how fast belongs in `make bench`; here: it is created and every page answers
    sandbox.control("POST", "sage300/companies", json={"company": "BIG", "customers": 100_000, "seed": 1,
                                                       "today": TODAY})
    params = {"$filter": "DateLastMaintained ge datetime'2024-01-01T00:00'", "$count": "true"}
    total = int(get(sandbox, params=params, company="BIG").json()["@odata.count"])
    for skip in range(0, min(total, 2000), 100):
        assert get(sandbox, params=params | {"$skip": str(skip)}, company="BIG").status_code == 200
    assert total > 100


# --- generator -----------------------------------------------------------------------------------------

def test_generator_is_deterministic():
    records = list(generator.companies(100_000, seed=11))  # no time limit here: speed is not a test's business
    assert records[4321] == generator.company_record(4321, 11)
    assert generator.company_record(4321, 12) != records[4321]
    names = [r["name"] for r in records]
    assert any("'" in n for n in names) and any(not n.isascii() for n in names)
    assert max(len(n) for n in names) <= generator.NAME_LIMIT
    assert any(not r["email"] for r in records) and any(not r["postal_code"] for r in records)
    assert all(r["last_changed"] < generator.DEFAULT_TODAY for r in records)
    assert len({r["country"] for r in records}) == len(generator.COUNTRIES)


def test_generator_mutate_changes_one_to_three_edits():
    rng = random.Random(5)
    for i in range(200):
        record = generator.company_record(i, 3, today=date(2024, 5, 1))
        before = dict(record)
        changed = generator.mutate(record, rng)
        assert changed and all(record[k] != before[k] for k in changed)
        assert {k for k in record if record[k] != before[k]} == set(changed)


def test_generator_and_mutate_do_not_depend_on_the_process_hash_seed():
    import subprocess
    import sys
    from pathlib import Path

    script = ("import json, random; from sandbox import generator as g; rng = random.Random(1); "
              "rs = [g.company_record(i, 4) for i in range(300)]; "
              "print(json.dumps([g.mutate(r, rng) and r for r in rs], default=str))")
    root = Path(__file__).resolve().parents[2]
    outputs = {
        subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True, check=True,
                       env={"PYTHONHASHSEED": str(seed), "PATH": "/usr/bin:/bin"}).stdout
        for seed in (1, 2, 3)
    }
    assert len(outputs) == 1


def test_sage_faults_are_counted_by_kind_and_method(sandbox):
    sandbox.control("POST", "sage300/companies", json={"company": "SAMLTD", "customers": 3, "seed": 1,
                                                       "today": TODAY})
    sandbox.control("POST", "sage300/faults", json={"drop": 1.0})
    with pytest.raises(requests.ConnectionError):
        get(sandbox)
    sandbox.control("POST", "sage300/faults", json={"drop": 0, "rate_429": 1.0})
    assert get(sandbox).status_code == 429
    faults = sandbox.control("GET", "sage300/faults")
    assert faults["counts"] == {"drop": 1, "429": 1}
    assert faults["counts_by_method"] == {"drop": {"GET": 1}, "429": {"GET": 1}}
