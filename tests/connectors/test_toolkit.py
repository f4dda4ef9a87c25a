"""The connector toolkit's pure parts: OData dialects and the shared auth lifecycles."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, time

import pytest

from connectors import odata
from connectors.auth import ClientCredentials, MemoryTokenStore, SessionLogon
from connectors.base import ConnectorError


@pytest.mark.parametrize("value, expected", [
    ("/Date(1714572202000)/", datetime(2024, 5, 1, 14, 3, 22, tzinfo=UTC)),
    ("/Date(1714572202000+0200)/", datetime(2024, 5, 1, 14, 3, 22, tzinfo=UTC)),
    ("2024-05-01T14:03:22Z", datetime(2024, 5, 1, 14, 3, 22, tzinfo=UTC)),
    ("2024-05-01", datetime(2024, 5, 1, tzinfo=UTC)),
    ("not a date", None),
    (None, None),
])
def test_dates_in_every_dialect(value, expected):
    assert odata.parse_datetime(value) == expected


def test_times_and_literals():
    assert odata.parse_time("PT14H03M22S") == time(14, 3, 22)
    assert odata.parse_time("14:03:22") == time(14, 3, 22)
    assert odata.literal_datetime_v2(datetime(2024, 5, 1, 16, 3, 22, tzinfo=UTC)) == "datetime'2024-05-01T16:03:22'"
    assert odata.literal_time_v2(time(9, 5, 0)) == "time'PT09H05M00S'"
    assert odata.literal_date_v4(date(2024, 5, 1)) == "2024-05-01"
    assert odata.quote_string("O'Brien") == "'O''Brien'"
    assert odata.all_of("A eq 1", "", "B eq 2") == "(A eq 1) and (B eq 2)"


def test_next_links_of_each_dialect_resolve_against_the_collection():
    base = "https://b1.example.test:50000/b1s/v1/BusinessPartners"
    assert odata.next_link({"odata.nextLink": "BusinessPartners?$skip=20"}, base_url=base) == (
        "https://b1.example.test:50000/b1s/v1/BusinessPartners?$skip=20")
    assert odata.next_link({"@odata.nextLink": "https://h/x?$skiptoken=5"}, base_url=base) == "https://h/x?$skiptoken=5"
    assert odata.next_link({"d": {"results": [], "__next": "A_BusinessPartner?$skiptoken=9"}},
                           base_url="https://s4/sap/opu/odata/sap/API_BUSINESS_PARTNER/A_BusinessPartner") == (
        "https://s4/sap/opu/odata/sap/API_BUSINESS_PARTNER/A_BusinessPartner?$skiptoken=9")
    assert odata.next_link({"value": []}, base_url=base) == ""


def test_pages_follow_links_to_the_end_and_refuse_a_loop():
    answers = {
        "u1": {"value": [{"k": 1}], "@odata.nextLink": "u2"},
        "u2": {"d": {"results": [{"k": 2}], "__next": "u3"}},
        "u3": {"value": [{"k": 3}]},
    }
    seen = []

    def fetch(url, params):
        seen.append((url.rsplit("/", 1)[-1], params))
        return answers[url.rsplit("/", 1)[-1]]

    rows = [r["k"] for page, _ in odata.pages(fetch, "http://h/u1", odata.Query(top=1), system="X") for r in page]
    assert rows == [1, 2, 3]
    assert seen[0][1] == {"$top": "1"} and seen[1][1] is None  # the link carries the query on
    loop = {"u1": {"value": [], "@odata.nextLink": "u1"}}
    with pytest.raises(ConnectorError, match="same next-page link"):
        list(odata.pages(lambda url, p: loop[url.rsplit("/", 1)[-1]], "http://h/u1", system="X"))


def test_metadata_is_stripped_and_etags_found():
    record = {"__metadata": {"etag": "W/\"1\""}, "A": 1, "to_Role": {"results": [{"__metadata": {}, "R": "FLCU01"}]},
              "to_Deferred": {"__deferred": {"uri": "x"}}, "odata.etag": "W/\"2\""}
    assert odata.strip_metadata(record) == {"A": 1, "to_Role": [{"R": "FLCU01"}]}
    assert odata.etag_of({"@odata.etag": "W/\"3\""}) == "W/\"3\""
    assert odata.etag_of(record) == "W/\"2\""
    assert odata.error_message({"error": {"code": 301, "message": {"lang": "en-us", "value": "Invalid session"}}}) == (
        "301", "Invalid session")


def test_session_logon_renews_once_when_two_threads_meet_an_expired_session():
    logons = []
    lock = threading.Lock()

    def logon():
        with lock:
            logons.append(1)
            return f"s{len(logons)}"

    expired_sessions = {"s1"}
    barrier = threading.Barrier(2)

    def work(session):
        barrier.wait(timeout=5)  # both threads hold the old session when it expires
        if session in expired_sessions:
            raise ConnectorError("expired", status=401, code="301")
        return session

    auth = SessionLogon(logon=logon, expired=lambda e: e.code == "301")
    results = []
    threads = [threading.Thread(target=lambda: results.append(auth.call(work))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert results == ["s2", "s2"]
    assert len(logons) == 2  # the first logon and exactly one renewal


def test_session_logon_does_not_renew_for_other_errors_and_logs_off_once():
    logoffs = []
    auth = SessionLogon(logon=lambda: "s", logoff=logoffs.append, expired=lambda e: e.code == "301")
    with pytest.raises(ConnectorError, match="bad"):
        auth.call(lambda s: (_ for _ in ()).throw(ConnectorError("bad", permanent=True, code="-5002")))
    assert auth.logons == 1
    auth.close()
    auth.close()
    assert logoffs == ["s"]


def test_client_credentials_cache_until_near_expiry_and_refresh_once_after_a_401():
    now = [1000.0]
    fetched = []

    def fetch():
        fetched.append(1)
        return f"t{len(fetched)}", 180

    tokens = ClientCredentials(fetch=fetch, store=MemoryTokenStore(), margin_s=30, clock=lambda: now[0])
    assert tokens.token() == "t1"
    now[0] += 100
    assert tokens.token() == "t1"  # still fresh: no fetch
    now[0] += 60  # 20 s left, inside the margin
    assert tokens.token() == "t2"
    assert tokens.invalidate("t2") == "t3"
    assert tokens.invalidate("t2") == "t3"  # a second worker rejected with the old token: no new fetch
    assert len(fetched) == 3


def test_update_with_etag_retries_once_on_412_then_fails_clearly():
    reads, writes = [], []

    def read():
        reads.append(1)
        return f'W/"{len(reads)}"', {"v": len(reads)}

    def write_conflicting_until(n):
        def write(etag, current):
            writes.append(etag)
            if len(writes) <= n:
                raise ConnectorError("stale", permanent=True, status=412)
            return "done"
        return write

    assert odata.update_with_etag(read=read, write=write_conflicting_until(1), system="X", what="it") == "done"
    assert writes == ['W/"1"', 'W/"2"']  # the retry carries the fresh read's ETag
    reads.clear()
    writes.clear()
    with pytest.raises(ConnectorError, match="kept changing") as caught:
        odata.update_with_etag(read=read, write=write_conflicting_until(5), system="X", what="it")
    assert len(writes) == 2 and caught.value.status == 412 and not caught.value.permanent
    with pytest.raises(ConnectorError, match="other"):
        odata.update_with_etag(read=read, write=lambda e, c: (_ for _ in ()).throw(ConnectorError("other", status=400)),
                               system="X", what="it")
