"""The SYSPRO client against the SYSPRO sandbox over loopback HTTP (e.net and OData), counted at the
sandbox: sessions, logons and logoffs, licence seats, ERROR bodies, writes; parsing at the edge."""

from __future__ import annotations

import threading

import pytest

from connectors.base import UNREADABLE, ConnectorError
from connectors.http import RetryPolicy
from connectors.models import Connection
from connectors.syspro import xml
from connectors.syspro.client import SeatWait, SysproClient
from connectors.syspro.records import lines_attach, stock_by_customer, unreadable_rows

CO = "SYS"
FAST = RetryPolicy(retries=4, base_s=0.01, cap_s=0.05)


def company(sandbox, **kwargs):
    body = {
        "company_id": CO,
        "operator": "ADMIN",
        "password": "syspro-pw",
        "customers": 30,
        "orders": 40,
        "lines_max": 8,
        "items": 25,
        "seed": 5,
        "today": "2026-11-20",
        **kwargs,
    }
    return sandbox.control("POST", "syspro/companies", json=body)


def client_for(sandbox, *, api="enet", password="syspro-pw", **kwargs) -> SysproClient:
    base = sandbox.url if api == "enet" else f"{sandbox.url}/SysproOData"
    return SysproClient(
        base_url=base, operator="ADMIN", password=password, company_id=CO, api=api, policy=FAST, **kwargs
    )


def stats(sandbox) -> dict:
    return sandbox.control("GET", "syspro/stats")


def everything(client: SysproClient, obj: str) -> list[dict]:
    return [r for page in client.changed_since(obj, {}) for r in page.records]


@pytest.fixture
def syspro(sandbox):
    company(sandbox)
    sandbox.control("DELETE", "syspro/stats")
    return sandbox


def test_logs_on_once_per_client_reads_every_page_and_logs_off(syspro):
    with client_for(syspro, page_size=7) as client:
        customers = everything(client, "customers")
        orders = everything(client, "sales_orders")
    assert sorted(c["Customer"] for c in customers) == [f"C{n:05d}" for n in range(1, 31)]
    assert len({o["SalesOrder"] for o in orders}) == 40
    assert all(isinstance(o["Lines"], list) and o["Lines"] for o in orders)
    line = orders[0]["Lines"][0]
    assert line["SalesOrder"] == orders[0]["SalesOrder"] and line["MStockCode"].startswith("A")
    assert float(line["MOrderQty"]) > 0  # SYSPRO's right-aligned numbers, padding stripped
    seen = stats(syspro)
    assert (seen["logons"], seen["logoffs"], seen["sessions_active"], seen["writes"]) == (1, 1, 0, 0)
    assert seen["queries"]["SORQRY"] == 40


def test_change_detection_reads_only_what_changed_since_the_cursor_with_overlap(syspro):
    with client_for(syspro) as client:
        pages = list(client.changed_since("sales_orders", {}))
        cursor = pages[-1].cursor
        assert cursor["since"]
        # nothing changed: only rows inside the overlap come back
        again = [r for p in client.changed_since("sales_orders", cursor) for r in p.records]
        syspro.control("POST", f"syspro/companies/{CO}/clock", json={"now": "2026-11-21T09:00:00"})
        syspro.control("POST", f"syspro/companies/{CO}/orders/000003/status", json={"order_status": "9"})
        changed = [r for p in client.changed_since("sales_orders", cursor) for r in p.records]
    assert len(again) < 40
    assert "000003" in {r["SalesOrder"] for r in changed} and len(changed) <= len(again) + 1
    assert next(r for r in changed if r["SalesOrder"] == "000003")["OrderStatus"] == "9"


def test_a_session_expired_mid_read_is_renewed_once(syspro):
    with client_for(syspro, page_size=10) as client:
        pages = client.changed_since("customers", {})
        first = next(pages)
        assert syspro.control("POST", "syspro/expire_sessions")["expired"] == 1
        rest = [r for page in pages for r in page.records]
        assert client.logon.logons == 2
    assert len(first.records) + len(rest) == 30
    seen = stats(syspro)
    assert seen["logons"] == 2 and seen["logoffs"] == 1 and seen["sessions_active"] == 0


def test_wrong_password_is_an_auth_error_and_the_password_never_shows(syspro):
    with client_for(syspro, password="wrong-secret-pw") as client:
        with pytest.raises(ConnectorError) as caught:
            everything(client, "customers")
    assert caught.value.auth and caught.value.kind == "auth"
    assert (
        "Invalid operator password" in caught.value.message and "wrong-secret-pw" not in caught.value.message
    )
    result = client_for(syspro, password="wrong-secret-pw").test_connection()
    assert not result.ok and "wrong-secret-pw" not in result.message


def test_test_connection_logs_on_and_off(syspro):
    result = client_for(syspro).test_connection()
    assert result.ok and "SYS" in result.message
    seen = stats(syspro)
    assert (seen["logons"], seen["logoffs"], seen["sessions_active"]) == (1, 1, 0)


def test_an_error_body_is_classified_before_any_xml_parsing(syspro, monkeypatch):
    parsed = []
    original = xml.parse
    monkeypatch.setattr(xml, "parse", lambda body: parsed.append(body) or original(body))
    with client_for(syspro) as client:
        with pytest.raises(ConnectorError) as caught:
            client.table_rows("NoSuchTable")
        assert caught.value.permanent and "NoSuchTable" in caught.value.message
        assert parsed == []
        # a passing ERROR body (SYSPRO's own timeout) is retried like a 503, then parsed as usual
        syspro.control(
            "POST",
            "syspro/transient_faults",
            json={"rate": 1.0, "kinds": ["error"], "operations": ["query"], "seed": 1},
        )
        with pytest.raises(ConnectorError) as busy:
            client.table_rows("ArCustomer")
        assert not busy.value.permanent and parsed == []
        syspro.control("POST", "syspro/transient_faults", json={"rate": 0.0})
        assert len(client.table_rows("ArCustomer", return_rows=3)) == 3 and len(parsed) == 1


def test_licence_limit_one_second_client_waits_for_the_seat(syspro):
    syspro.control("POST", "syspro/settings", json={"licence_limit": 1})
    done: dict[str, int] = {}
    first = client_for(syspro)
    first.logon.current()  # holds the only seat

    def second() -> None:
        with client_for(syspro, seat_wait=SeatWait(total_s=20, base_s=0.05, cap_s=0.2)) as client:
            done["customers"] = len(everything(client, "customers"))

    thread = threading.Thread(target=second)
    thread.start()
    thread.join(0.5)
    assert thread.is_alive()  # waiting for the seat, not failed
    first.close()
    thread.join(20)
    assert done == {"customers": 30}
    seen = stats(syspro)
    assert seen["licence_refusals"] >= 1 and seen["sessions_active"] == 0 and seen["sessions_peak"] == 1


def test_seat_wait_gives_up_as_a_transient_error(syspro):
    syspro.control("POST", "syspro/settings", json={"licence_limit": 1})
    holder = client_for(syspro)
    holder.logon.current()
    try:
        client = client_for(syspro, seat_wait=SeatWait(total_s=0.2, base_s=0.05, cap_s=0.1))
        with pytest.raises(ConnectorError) as caught:
            client.logon.current()
        assert not caught.value.permanent and caught.value.code == "licence"
    finally:
        holder.close()
    assert stats(syspro)["sessions_active"] == 0


def test_logoff_happens_even_when_a_read_fails(syspro):
    with pytest.raises(ConnectorError):
        with client_for(syspro) as client:
            client.table_rows("ArCustomer", return_rows=1)
            client.table_rows("NoSuchTable")
    seen = stats(syspro)
    assert seen["logoffs"] == 1 and seen["sessions_active"] == 0


def test_broken_order_xml_fails_that_order_alone(syspro):
    syspro.control("POST", f"syspro/companies/{CO}/orders/000007/malformed", json={"kind": "broken_xml"})
    with client_for(syspro) as client:
        orders = everything(client, "sales_orders")
    broken = [o for o in orders if UNREADABLE in o]
    assert [o["SalesOrder"] for o in broken] == ["000007"]
    assert "could not read" in broken[0][UNREADABLE]
    assert all(o["Lines"] for o in orders if UNREADABLE not in o)


def test_odata_path_reads_the_same_records_without_sessions(syspro):
    with client_for(syspro) as enet:
        by_enet = {o["SalesOrder"]: o for o in everything(enet, "sales_orders")}
    syspro.control("DELETE", "syspro/stats")
    with client_for(syspro, api="odata", page_size=15) as client:
        by_odata = {o["SalesOrder"]: o for o in everything(client, "sales_orders")}
        customers = everything(client, "customers")
    assert by_odata.keys() == by_enet.keys() and len(customers) == 30
    for number, order in by_odata.items():
        assert [(str(line["SalesOrderLine"]), float(line["MOrderQty"])) for line in order["Lines"]] == [
            (str(line["SalesOrderLine"]).strip(), float(line["MOrderQty"]))
            for line in by_enet[number]["Lines"]
        ]
    seen = stats(syspro)
    assert seen["logons"] == 0 and sum(seen["odata"].values()) > 0


def test_from_connection_and_the_registry(syspro, tenant):
    from connectors.registry import connector_for

    conn = Connection.objects.create(
        tenant=tenant,
        system="syspro",
        name="SYSPRO",
        base_url=syspro.url,
        options={"operator": "ADMIN", "company_id": CO},
        credentials={"password": "syspro-pw"},
    )
    with connector_for(conn) as client:
        assert isinstance(client, SysproClient) and client.base_url.endswith("/SYSPROWCFService/Rest")
        assert client.test_connection().ok


# --- parsing at the edge --------------------------------------------------------------------------------
def test_xml_out_rows_strip_padding_and_refuse_dtds():
    body = (
        '<?xml version="1.0" encoding="Windows-1252"?>\n<InvMaster Language=\'05\'>\n<Row>\n'
        "<StockCode>02</StockCode>\n<Qty>      12.500000</Qty>\n<Empty/>\n</Row>\n"
        "<RowsReturned>       1</RowsReturned>\n</InvMaster>\n"
    ).encode("cp1252")
    root = xml.parse(body)
    assert xml.rows_of(root) == [{"StockCode": "02", "Qty": "12.500000", "Empty": ""}]
    assert xml.rows_returned(root) == 1
    with pytest.raises(xml.XmlUnreadable):
        xml.parse(b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>')
    errors = xml.parse(
        b"<r><item><stockcode><ErrorNumber>240004</ErrorNumber>"
        b"<ErrorDescription>Stock code '1004' not found</ErrorDescription></stockcode></item></r>"
    )
    assert xml.errors_of(errors) == ["Stock code '1004' not found"]


def test_a_broken_row_in_a_table_answer_fails_alone():
    body = (
        b'<?xml version="1.0" encoding="Windows-1252"?>\n<SorMaster>\n<Row><SalesOrder>000001</SalesOrder>'
        b"</Row>\n<Row><SalesOrder>000002</SalesOrder><Customer>C&1</Customer></Row>\n</SorMaster>"
    )
    rows = unreadable_rows(body, key="SalesOrder")
    assert rows[0] == {"SalesOrder": "000001"}
    assert rows[1]["SalesOrder"] == "000002" and "broken XML" in rows[1][UNREADABLE]
    orders = lines_attach(
        [{"SalesOrder": "1"}, {"SalesOrder": "2"}],
        [{"SalesOrder": "1", "SalesOrderLine": "1"}, {"SalesOrder": "2", UNREADABLE: "bad"}],
        key="SalesOrder",
        parent_key="SalesOrder",
    )
    assert orders[0]["Lines"] == [{"SalesOrder": "1", "SalesOrderLine": "1"}] and UNREADABLE in orders[1]


def test_stock_by_customer_sums_available_stock_of_what_each_customer_buys():
    records = stock_by_customer(
        customers=[{"Customer": "C1", "Name": "One"}, {"Customer": "C2", "Name": "Two"}],
        orders=[{"SalesOrder": "1", "Customer": "C1"}],
        lines=[{"SalesOrder": "1", "MStockCode": "A2"}, {"SalesOrder": "1", "MStockCode": "A1"}],
        stock=[
            {"StockCode": "A1", "Warehouse": "FG", "QtyAvailable": "  4.000000"},
            {"StockCode": "A1", "Warehouse": "NTH", "QtyAvailable": "1"},
            {"StockCode": "A2", "Warehouse": "FG", "QtyOnHand": "5", "QtyAllocated": "2"},
        ],
    )
    assert records[0]["Stock"] == [
        {"StockCode": "A1", "Available": 5.0, "Warehouses": {"FG": 4.0, "NTH": 1.0}},
        {"StockCode": "A2", "Available": 3.0, "Warehouses": {"FG": 3.0}},
    ]
    assert records[1]["Stock"] == []


def test_an_unreachable_server_leaves_no_password_in_the_error_chain():
    from tests.conftest import free_port

    client = SysproClient(
        base_url=f"http://127.0.0.1:{free_port()}",
        operator="ADMIN",
        password="chain-secret-pw",
        company_id=CO,
        policy=RetryPolicy(retries=0),
    )
    with pytest.raises(ConnectorError) as caught:
        client.logon.current()
    assert not caught.value.permanent and "Cannot reach SYSPRO" in caught.value.message
    chain, error = [], caught.value
    while error is not None:
        chain.append(str(error))
        error = error.__cause__ or error.__context__
    assert "chain-secret-pw" not in " ".join(chain)


def test_count_through_odata_and_none_through_enet(syspro):
    with client_for(syspro, api="odata") as client:
        assert client.count("customers") == 30 and client.count("sales_orders") == 40
        assert client.count("customer_stock") is None  # a grouping, not a table: the sample decides
        assert len(everything(client, "customers")) == 30
    with client_for(syspro) as enet:
        assert enet.count("customers") is None
    seen = stats(syspro)
    # one request per count, one for the read; e.net's None costs no logon
    assert seen["logons"] == 0 and seen["odata"] == {"ArCustomer": 2, "SorMaster": 1}, seen
    with pytest.raises(ConnectorError) as wrong, client_for(syspro, api="odata", password="not-it") as bad:
        bad.count("customers")
    assert wrong.value.kind == "auth" and "not-it" not in wrong.value.message
