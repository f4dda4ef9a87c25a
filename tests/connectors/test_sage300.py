"""Sage300Client against the Sage 300 simulator over loopback HTTP."""

from __future__ import annotations

import base64

import pytest

from connectors.base import ConnectorError
from connectors.sage300.client import Sage300Client
from connectors.sage300.flows import CUSTOMERS_TO_ORGANIZATIONS, FLOW_KINDS

TODAY = "2024-05-10"
MUTATED_ON = "2024-05-20"


@pytest.fixture
def sage(sandbox):
    sandbox.control("POST", "sage300/companies", json={
        "company": "SAMLTD", "user": "ADMIN", "password": "ADMIN", "customers": 1050, "seed": 2, "today": TODAY})
    return sandbox


def make_client(sandbox, **kwargs) -> Sage300Client:
    kwargs = {"base_url": f"{sandbox.url}/Sage300WebApi/v1.0", "company": "samltd", "user": "admin",
              "password": "admin", "sleep": lambda seconds: None} | kwargs
    return Sage300Client(**kwargs)


def customer_gets(sandbox) -> list[dict]:
    return [r for r in sandbox.control("GET", "sage300/stats")["recent"] if r["path"].endswith("/ARCustomers")]


def test_full_read_pages_to_the_end(sage):
    pages = list(make_client(sage).changed_since("customers", {}))
    assert [len(p.records) for p in pages] == [100] * 10 + [50]
    keys = [r["CustomerNumber"] for p in pages for r in p.records]
    assert keys == sorted(set(keys)) and len(keys) == 1050
    assert [p.cursor["after"] for p in pages[:-1]] == [p.records[-1]["CustomerNumber"] for p in pages[:-1]]
    assert all("since" not in p.cursor for p in pages[:-1])
    latest = max(r["DateLastMaintained"] for p in pages for r in p.records)[:10]
    assert pages[-1].cursor == {"since": latest}
    assert pages[3].cursor["max_seen"] <= latest
    gets = customer_gets(sage)
    assert len(gets) == 11  # no extra request past the last page
    assert all("$top=100" in g["query"] and "$orderby=CustomerNumber" in g["query"] for g in gets)


def test_changes_are_read_with_one_day_overlap(sage):
    sage.control("PUT", "sage300/companies/SAMLTD/customers/1000500", json={"DateLastMaintained": "2024-05-19"})
    sage.control("PUT", "sage300/companies/SAMLTD/customers/1000501", json={"DateLastMaintained": "2024-05-18"})
    changed = sage.control("POST", "sage300/companies/SAMLTD/mutate",
                           json={"count": 130, "seed": 4, "today": MUTATED_ON})["changed"]
    sage.control("DELETE", "sage300/stats")
    pages = list(make_client(sage).changed_since("customers", {"since": MUTATED_ON}))
    keys = {r["CustomerNumber"] for p in pages for r in p.records}
    assert keys == set(changed) | {"1000500"}  # the day before is re-read; two days before is not
    assert [len(p.records) for p in pages] == [100, 31]
    assert pages[0].cursor == {"since": MUTATED_ON, "after": pages[0].records[-1]["CustomerNumber"],
                               "max_seen": MUTATED_ON}
    assert pages[-1].cursor == {"since": MUTATED_ON}
    assert "DateLastMaintained ge datetime'2024-05-19T00:00'" in customer_gets(sage)[0]["query"]


def test_resume_from_a_mid_run_cursor(sage):
    client = make_client(sage)
    first = list(client.changed_since("customers", {}))
    mid = first[2].cursor  # committed after the third page
    assert mid["after"] == first[2].records[-1]["CustomerNumber"]
    resumed = list(client.changed_since("customers", mid))
    assert [r["CustomerNumber"] for p in resumed for r in p.records] == [
        r["CustomerNumber"] for p in first[3:] for r in p.records]
    assert resumed[-1].cursor == first[-1].cursor  # max_seen from before the crash is kept


def test_nothing_changed_gives_one_empty_page_with_the_same_since(sage):
    pages = list(make_client(sage).changed_since("customers", {"since": "2024-06-01"}))
    assert len(pages) == 1 and pages[0].records == []
    assert pages[0].cursor == {"since": "2024-06-01"}


def test_a_server_page_size_under_100_does_not_end_the_read_early(sage):
    sage.control("POST", "sage300/settings", json={"page_size": 40, "next_link": False})
    pages = list(make_client(sage).changed_since("customers", {}))
    assert sum(len(p.records) for p in pages) == 1050
    assert len(pages) == 27


def test_an_absurd_future_date_does_not_push_the_cursor(sage):
    sage.control("POST", "sage300/companies/SAMLTD/malformed", json={"kinds": ["future_date", "bad_date"]})
    pages = list(make_client(sage).changed_since("customers", {}))
    records = [r for p in pages for r in p.records]
    assert len(records) == 1052
    assert "9999-12-31T00:00:00" in {r["DateLastMaintained"] for r in records}
    real = max(r["DateLastMaintained"] for r in records if r["DateLastMaintained"] and r["DateLastMaintained"] < "9")
    assert pages[-1].cursor == {"since": real[:10]}


def test_rows_deleted_mid_read_do_not_hide_a_record(sage):
    client = make_client(sage)
    pages = client.changed_since("customers", {})
    first = next(pages)
    for key in [r["CustomerNumber"] for r in first.records[:10]]:  # ten rows vanish before page two
        sage.control("DELETE", f"sage300/companies/SAMLTD/customers/{key}")
    rest = [r["CustomerNumber"] for p in pages for r in p.records]
    assert len(rest) == 950 and rest[0] > first.records[-1]["CustomerNumber"]


def test_read_one(sage):
    client = make_client(sage)
    record = client.read_one("customers", "1000042")
    assert record["CustomerNumber"] == "1000042" and record["CustomerName"]
    assert not any(key.startswith("@odata") for key in record)
    assert client.read_one("customers", "NOSUCH") is None
    sage.control("PUT", "sage300/companies/SAMLTD/customers/O'BRIEN", json={"CustomerName": "O'Brien's Pub"})
    assert client.read_one("customers", "O'BRIEN")["CustomerName"] == "O'Brien's Pub"


def test_bad_password_is_an_auth_error_in_plain_words(sage):
    client = make_client(sage, password="s3cretPass")
    with pytest.raises(ConnectorError) as caught:
        list(client.changed_since("customers", {}))
    error = caught.value
    assert error.auth and error.kind == "auth" and error.status == 401
    header = base64.b64encode(b"ADMIN:S3CRETPASS").decode()
    for secret in ("s3cretPass", "S3CRETPASS", "Basic ", header):
        assert secret not in error.message and secret not in str(error)
    assert "Sage 300" in error.message and "password" in error.message
    assert len(customer_gets(sage)) == 1  # credentials rejected: no retry


def test_test_connection(sage):
    result = make_client(sage).test_connection()
    assert result.ok
    assert result.message == "Connected to Sage 300 company SAMLTD (1,050 customers)"
    assert result.details["customers"] == 1050
    failed = make_client(sage, password="nope").test_connection()
    assert not failed.ok and failed.details["kind"] == "auth" and "nope" not in failed.message


def test_injected_5xx_and_429_are_retried_and_the_read_completes(sage):
    sage.control("POST", "sage300/faults", json={"error_5xx": 0.25, "rate_429": 0.25, "seed": 1})
    slept: list[float] = []
    client = make_client(sage, sleep=slept.append, retries=8)
    pages = list(client.changed_since("customers", {}))
    assert sum(len(p.records) for p in pages) == 1050
    counts = sage.control("GET", "sage300/faults")["counts"]
    assert counts.get("5xx", 0) > 0 and counts.get("429", 0) > 0
    assert len(slept) == counts["5xx"] + counts["429"]
    assert all(0 <= s <= client.policy.cap_s for s in slept)


def test_persistent_failure_gives_up_with_a_transient_error(sage):
    sage.control("POST", "sage300/faults", json={"error_5xx": 1.0, "seed": 1})
    slept: list[float] = []
    with pytest.raises(ConnectorError) as caught:
        make_client(sage, sleep=slept.append, retries=3).read_one("customers", "1000001")
    assert caught.value.kind == "transient" and caught.value.status == 503
    assert len(slept) == 3


def test_dropped_connections_are_retried(sage):
    sage.control("POST", "sage300/faults", json={"drop": 0.3, "seed": 2})
    pages = list(make_client(sage, retries=8).changed_since("customers", {"since": TODAY}))
    assert "after" not in pages[-1].cursor


def test_unknown_object_and_bad_settings_are_permanent(sage):
    with pytest.raises(ConnectorError) as caught:
        list(make_client(sage).changed_since("invoices", {}))
    assert caught.value.permanent
    with pytest.raises(ConnectorError):
        make_client(sage, company="NOT A COMPANY")
    with pytest.raises(ConnectorError):
        make_client(sage, base_url="ftp://example.com")


def test_from_connection_uses_the_saved_connection(sage, tenant):
    from connectors.models import Connection
    from connectors.registry import connector_for

    Connection.objects.create(
        tenant=tenant, system=Connection.System.SAGE300, name="Sage sandbox",
        base_url=f"{sage.url}/Sage300WebApi", credentials={"password": "admin"},
        options={"company": "samltd", "user": "admin"},
    )
    connection = Connection.objects.get(tenant=tenant, system="sage300")
    client = connector_for(connection)
    assert isinstance(client, Sage300Client)
    assert client.base_url.endswith("/Sage300WebApi/v1.0") and client.company == "SAMLTD"
    assert client.test_connection().ok
    assert client.read_one("customers", "1000001")["CustomerNumber"] == "1000001"


def test_flow_kind_declares_the_default_mapping():
    assert FLOW_KINDS == {"customers_to_organizations": CUSTOMERS_TO_ORGANIZATIONS}
    kind = CUSTOMERS_TO_ORGANIZATIONS
    assert kind.system == "sage300" and kind.key_field == "CustomerNumber" and kind.additive_only
    targets = {m.target: m for m in kind.mappings}
    assert targets["name"].source == "CustomerName" and targets["name"].required
    assert targets["custom:Phone"].field_type == "phone"
    assert targets["custom:Credit limit"].field_type == "double"
