"""The S/4HANA client against the simulator over loopback HTTP: OAuth token shared by a connection's
workers, Basic, OData V2 paging and values, the change filter with its overlap, and plain-words errors."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from django import db

from connectors.base import ConnectorError
from connectors.models import Connection
from connectors.registry import connector_class
from connectors.s4hana.client import TIME_OVERLAP, S4HanaClient
from connectors.s4hana.records import record_moment

CLIENT_ID = "COMM_0008"
SECRET = "s4-secret-27182818"


@pytest.fixture
def s4(sandbox):
    return sandbox.control(
        "POST",
        "s4hana/systems",
        json={
            "client_id": CLIENT_ID,
            "client_secret": SECRET,
            "partners": 30,
            "contacts_max": 2,
            "seed": 9,
            "today": "2026-11-20",
            "time": "08:00:00",
        },
    )


def stats(sandbox) -> dict:
    return sandbox.control("GET", "s4hana/stats")


def client(sandbox, **kwargs) -> S4HanaClient:
    return S4HanaClient(
        base_url=sandbox.url, client_id=CLIENT_ID, client_secret=kwargs.pop("secret", SECRET), **kwargs
    )


def everything(c: S4HanaClient, obj: str = "business_partners", cursor=None):
    pages = list(c.changed_since(obj, cursor or {}))
    return pages, [r for p in pages for r in p.records]


@pytest.mark.django_db(transaction=True)
def test_one_token_is_shared_by_every_worker_of_a_connection_and_replaced_once_when_rejected(
    sandbox, s4, tenant
):
    assert connector_class("s4hana") is S4HanaClient
    conn = Connection.objects.create(
        tenant=tenant,
        system="s4hana",
        name="S4",
        base_url=sandbox.url,
        options={"client_id": CLIENT_ID},
        credentials={"client_secret": SECRET},
    )
    sandbox.control("DELETE", "s4hana/stats")

    def read(_):
        try:
            with S4HanaClient.from_connection(Connection.objects.get(pk=conn.pk)) as c:
                return len(everything(c)[1])
        finally:
            db.connection.close()  # this worker thread's own database connection

    with ThreadPoolExecutor(4) as pool:
        assert set(pool.map(read, range(4))) == {s4["counts"]["organizations"]}
    assert stats(sandbox)["token_grants"] == 1
    assert SECRET not in str(Connection.objects.get(pk=conn.pk).options)
    sandbox.control("POST", "s4hana/expire_tokens")
    with ThreadPoolExecutor(3) as pool:
        assert set(pool.map(read, range(3))) == {s4["counts"]["organizations"]}
    after = stats(sandbox)
    assert after["token_grants"] == 2 and after["token_rejections"] >= 1 and after["writes"] == 0


def test_a_token_near_its_expiry_is_not_used(sandbox, s4):
    sandbox.control(
        "POST", "s4hana/settings", json={"token_ttl_s": 20, "page_size": 5}
    )  # under the 30-s margin
    sandbox.control("DELETE", "s4hana/stats")
    with client(sandbox) as c:
        pages, _ = everything(c)
    got = stats(sandbox)
    assert got["token_rejections"] == 0 and got["token_grants"] >= len(pages) > 1


def test_basic_auth_sends_no_token_request(sandbox, s4):
    sandbox.control("DELETE", "s4hana/stats")
    with client(sandbox, auth="basic") as c:
        assert c.test_connection().ok
        assert len(everything(c)[1]) == s4["counts"]["organizations"]
    got = stats(sandbox)
    assert got["token_grants"] == 0 and got["basic_auths"] > 0 and got["csrf_fetches"] == 0


def test_pages_follow_next_links_and_read_v2_values(sandbox, s4):
    sandbox.control("POST", "s4hana/settings", json={"page_size": 4})
    with client(sandbox) as c:
        ping = c.test_connection()
        pages, records = everything(c)
    assert ping.ok and f"{s4['counts']['partners']:,} business partners" in ping.message
    keys = [r["BusinessPartner"] for r in records]
    assert len(keys) == len(set(keys)) == s4["counts"]["organizations"] and keys == sorted(keys)
    assert len(pages) == -(-len(keys) // 4) and pages[0].cursor["after"] == keys[3]
    assert pages[0].remaining == len(keys)
    raw = sandbox.control("GET", f"s4hana/systems/{CLIENT_ID}/partners/{keys[0]}")
    record = records[0]
    assert record["CreationDate"] == raw["CreationDate"][:10]  # /Date(ms)/ read back to the day
    assert record["Roles"] == sorted(r["BusinessPartnerRole"] for r in raw["_roles"])
    assert "to_Customer" not in record and "__metadata" not in record  # __deferred and annotations dropped
    assert record["AcademicTitle"] == ""  # properties we do not map come along, unused
    contacts = [c for r in records for c in r["ContactPersons"]]
    assert contacts and all(c["Name"] and not c["Name"].startswith("Contact ") for c in contacts)
    gets = [r for r in stats(sandbox)["recent"] if r["path"].endswith("/A_BusinessPartner")]
    assert any("$skiptoken" in r["query"] for r in gets)


def test_change_filter_uses_date_and_time_with_overlap(sandbox, s4):
    with client(sandbox) as c:
        pages, first = everything(c)
        cursor = pages[-1].cursor
        assert set(cursor) == {"since", "time"}
        changed = [first[1]["BusinessPartner"], first[4]["BusinessPartner"]]
        sandbox.control(
            "POST",
            f"s4hana/systems/{CLIENT_ID}/change",
            json={"partners": changed, "today": "2026-11-21", "time": "11:00:00"},
        )
        _, again = everything(c, cursor=cursor)
        since = record_moment({"LastChangeDate": cursor["since"], "LastChangeTime": cursor["time"]})
        assert set(changed) <= {r["BusinessPartner"] for r in again}
        # besides them only what changed within the five-minute overlap before the last run's latest change
        assert all(record_moment(r) >= since - TIME_OVERLAP for r in again)
        assert len(again) < len(first)
        sent = [
            r["query"]["$filter"]
            for r in stats(sandbox)["recent"]
            if "LastChangeDate" in r["query"].get("$filter", "")
        ]
        start = since - TIME_OVERLAP
        assert (
            f"LastChangeDate eq datetime'{start.date()}T00:00:00' and LastChangeTime ge time'PT{start:%H}H"
            in sent[-1]
        )
        # the next run starts at 11:00 less five minutes: a write at 10:58 that committed late is still seen
        later = everything(c, cursor=list(c.changed_since("business_partners", cursor))[-1].cursor)
        sandbox.control(
            "POST",
            f"s4hana/systems/{CLIENT_ID}/change",
            json={"partners": [first[7]["BusinessPartner"]], "time": "10:58:00"},
        )
        _, late = everything(c, cursor=later[0][-1].cursor)
        assert first[7]["BusinessPartner"] in {r["BusinessPartner"] for r in late}


def test_errors_are_classified_in_plain_words_without_secrets(sandbox, s4):
    with client(sandbox, secret="not-the-secret") as c:
        ping = c.test_connection()
        assert not ping.ok and ping.details["kind"] == "auth" and "not-the-secret" not in ping.message
    with client(sandbox, auth="basic", secret="not-the-secret") as c:
        with pytest.raises(ConnectorError) as exc:
            everything(c)
        assert exc.value.auth and "not-the-secret" not in exc.value.message
    with client(sandbox) as c:
        with pytest.raises(ConnectorError, match="another address"):
            c.get("http://192.0.2.1/sap/opu/odata/sap/API_BUSINESS_PARTNER/A_BusinessPartner")
        assert c.read_one("business_partners", "9999999") is None
        with pytest.raises(ConnectorError) as exc:
            c.changed_since("nothing", {}).__next__()
        assert exc.value.permanent
    sandbox.control("POST", "s4hana/faults", json={"error_5xx": 1.0, "seed": 1})
    with client(
        sandbox,
        policy=__import__("connectors.http", fromlist=["RetryPolicy"]).RetryPolicy(retries=1, base_s=0.01),
    ) as c:
        with pytest.raises(ConnectorError) as exc:
            everything(c)
        assert exc.value.kind == "transient" and exc.value.status == 503


def test_count_is_one_inlinecount_request_per_category(sandbox, s4):
    counts = s4["counts"]
    sandbox.control("DELETE", "s4hana/stats")
    c = client(sandbox, auth="basic")
    organizations, persons = c.count("business_partners"), c.count("person_partners")
    seen = stats(sandbox)
    assert (
        organizations == counts["organizations"] and persons == counts["partners"] - counts["organizations"]
    )
    assert seen["by_set"] == {"A_BusinessPartner": 2}, seen["by_set"]
    assert len(everything(c)[1]) == organizations
    with pytest.raises(ConnectorError) as wrong:
        client(sandbox, auth="basic", secret="not-the-secret").count("business_partners")
    assert wrong.value.kind == "auth" and "not-the-secret" not in wrong.value.message
