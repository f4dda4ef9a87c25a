"""The SYSPRO 8 simulator over real HTTP: e.net logon padding, ERROR bodies, idle expiry, the licence
limit, the query business objects, operator changes, malformed orders, OData paging and filters,
transient faults and the write counter."""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET

import pytest
import requests

CO = "SYS"
OP, PW = "ADMIN", "s3cret"
XML_HEAD = '<?xml version="1.0" encoding="Windows-1252"?>'


@pytest.fixture
def syspro(sandbox):
    sandbox.control(
        "POST",
        "syspro/companies",
        json={
            "company_id": CO,
            "operator": OP,
            "password": PW,
            "customers": 40,
            "orders": 60,
            "lines_max": 5,
            "items": 30,
            "seed": 3,
            "today": "2026-11-20",
        },
    )
    return sandbox


def rest(sandbox, op: str) -> str:
    return f"{sandbox.url}/SYSPROWCFService/Rest/{op}"


def logon(sandbox, **overrides) -> requests.Response:
    params = {"Operator": OP, "OperatorPassword": PW, "CompanyId": CO, "CompanyPassword": "", **overrides}
    return requests.get(rest(sandbox, "Logon"), params=params, timeout=10)


def session(sandbox) -> str:
    resp = logon(sandbox)
    assert not resp.text.startswith("ERROR"), resp.text
    return resp.text


def query(sandbox, uid: str, bo: str, xml_in: str) -> requests.Response:
    resp = requests.get(
        rest(sandbox, "Query/Query"),
        params={"UserId": uid, "BusinessObject": bo, "XmlIn": xml_in},
        timeout=10,
    )
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "application/octet-stream"
    return resp


def xml_of(resp: requests.Response) -> ET.Element:
    assert not resp.content.startswith(b"ERROR"), resp.content[:200]
    assert resp.content.startswith(XML_HEAD.encode())
    return ET.fromstring(resp.content)  # the declared Windows-1252 decodes it


def comfnd(table: str, *, rows: int | None = None, columns=(), where=(), order_by=()) -> str:
    parts = [
        XML_HEAD,
        '<Query xmlns:xsd="http://www.w3.org/2001/XMLSchema-instance" '
        'xsd:noNamespaceSchemaLocation="COMFND.XSD">',
        f"<TableName>{table}</TableName>",
    ]
    if rows is not None:
        parts.append(f"<ReturnRows>{rows}</ReturnRows>")
    parts.append("<Columns>" + "".join(f"<Column>{c}</Column>" for c in columns) + "</Columns>")
    exprs = []
    for n, (andor, open_, col, cond, value, close) in enumerate(where):
        exprs.append(
            f"<Expression><OpenBracket>{open_}</OpenBracket>"
            + (f"<AndOr>{andor}</AndOr>" if n else "")
            + f"<Column>{col}</Column><Condition>{cond}</Condition><Value>{value}</Value>"
            f"<CloseBracket>{close}</CloseBracket></Expression>"
        )
    parts.append("<Where>" + "".join(exprs) + "</Where>")
    parts.append("<OrderBy>" + "".join(f"<Column>{c}</Column>" for c in order_by) + "</OrderBy></Query>")
    return "\n".join(parts)


def sorqry(order: str, lines: bool = True) -> str:
    flag = "Y" if lines else "N"
    return (
        f"{XML_HEAD}<Query><Key><SalesOrder>{order}</SalesOrder></Key><Option>"
        f"<IncludeStockedLines>{flag}</IncludeStockedLines><IncludeValues>Y</IncludeValues></Option></Query>"
    )


def rows_of(root: ET.Element) -> list[dict[str, str]]:
    return [{child.tag: (child.text or "").strip() for child in row} for row in root.findall("Row")]


def odata(sandbox, path: str, auth=(OP, PW), **params) -> requests.Response:
    return requests.get(
        f"{sandbox.url}/SysproOData/{CO}/{path}", params=params or None, auth=auth, timeout=10
    )


def odata_all(sandbox, table: str, **params) -> tuple[list[dict], int]:
    resp = odata(sandbox, table, **params)
    records, calls = [], 0
    while True:
        assert resp.status_code == 200, resp.text
        body = resp.json()
        records += body["value"]
        calls += 1
        if "@odata.nextLink" not in body:
            return records, calls
        resp = requests.get(body["@odata.nextLink"], auth=(OP, PW), timeout=10)


def stats(sandbox) -> dict:
    return sandbox.control("GET", "syspro/stats")


# --- sessions -------------------------------------------------------------------------------------------


def test_logon_returns_a_padded_session_id_that_works_padded_or_trimmed_and_logoff_ends_it(syspro):
    resp = logon(syspro)
    assert resp.status_code == 200 and resp.headers["Content-Type"] == "application/octet-stream"
    assert len(resp.content) == 36 and re.fullmatch(r"[0-9A-F]{32}00  ", resp.text)
    uid = resp.text
    assert xml_of(query(syspro, uid, "ARSQRY", "<Query><Key><Customer>C00001</Customer></Key></Query>"))
    assert xml_of(
        query(syspro, uid.strip(), "ARSQRY", "<Query><Key><Customer>C00001</Customer></Key></Query>")
    )
    # case does not matter in the path (IIS), nor does the parameter names' case
    lower = requests.get(f"{syspro.url}/sysprowcfservice/REST/logoff", params={"userid": uid}, timeout=10)
    assert lower.status_code == 200 and lower.text == "0"
    gone = query(syspro, uid, "ARSQRY", "<Query><Key><Customer>C00001</Customer></Key></Query>")
    assert gone.text.startswith("ERROR: The supplied UserID is invalid.")
    again = requests.get(rest(syspro, "Logoff"), params={"UserId": uid}, timeout=10)
    assert again.status_code == 200 and again.text.startswith("ERROR: ")
    s = stats(syspro)
    assert (s["logons"], s["logoffs"], s["logoff_unknown"], s["sessions_active"]) == (1, 1, 1, 0)
    assert s["session_rejections"] == 1


def test_company_id_may_be_left_out_with_one_company_and_the_profile_names_the_operator(syspro):
    resp = requests.get(rest(syspro, "logon"), params={"Operator": OP, "OperatorPassword": PW}, timeout=10)
    uid = resp.text
    assert re.fullmatch(r"[0-9A-F]{32}00  ", uid)
    assert requests.get(rest(syspro, "GetVersion"), timeout=10).text == "8.0.033"
    profile = xml_of(requests.get(rest(syspro, "GetLogonProfile"), params={"UserId": uid}, timeout=10))
    assert profile.findtext("OperatorCode") == OP and profile.findtext("CompanyId") == CO
    syspro.control("POST", "syspro/companies", json={"company_id": "TWO", "operator": OP, "password": PW})
    assert requests.get(
        rest(syspro, "Logon"), params={"Operator": OP, "OperatorPassword": PW}, timeout=10
    ).text == ("ERROR: Invalid company ''")


def test_logon_failures_are_error_bodies_with_http_200(syspro):
    cases = [
        ({"OperatorPassword": "wrong"}, "ERROR: Invalid operator password"),
        ({"Operator": "NOBODY"}, "ERROR: Operator 'NOBODY' is not defined"),
        ({"CompanyId": "XYZ"}, "ERROR: Invalid company 'XYZ'"),
    ]
    for params, text in cases:
        resp = logon(syspro, **params)
        assert resp.status_code == 200 and resp.text == text
    syspro.control(
        "POST",
        "syspro/companies",
        json={"company_id": "LOCK", "company_password": "cpw", "operator": OP, "password": PW},
    )
    assert logon(syspro, CompanyId="LOCK").text == "ERROR: Invalid company password"
    assert not logon(syspro, CompanyId="LOCK", CompanyPassword="cpw").text.startswith("ERROR")
    s = stats(syspro)
    assert s["logon_failures"] == 4 and s["logons"] == 1
    assert all("OperatorPassword" not in r["query"] for r in s["recent"])  # no secret kept


def test_sessions_expire_after_the_idle_timeout_and_on_demand(syspro):
    syspro.control("POST", "syspro/settings", json={"idle_timeout_s": 0.3})
    uid = session(syspro)
    time.sleep(0.6)
    resp = query(syspro, uid, "ARSQRY", "<Query><Key><Customer>C00001</Customer></Key></Query>")
    assert resp.text.startswith("ERROR: The supplied UserID is invalid.")
    syspro.control("POST", "syspro/settings", json={"idle_timeout_s": 600})
    uid2, uid3 = session(syspro), session(syspro)
    assert syspro.control("POST", "syspro/expire_sessions") == {"expired": 2}
    for uid in (uid2, uid3):
        assert query(syspro, uid, "COMFND", comfnd("ArCustomer", rows=1)).text.startswith(
            "ERROR: The supplied"
        )
    s = stats(syspro)
    assert s["sessions_expired"] == 3 and s["sessions_active"] == 0 and s["sessions_peak"] == 2


def test_the_licence_limit_refuses_logons_beyond_n_live_sessions(syspro):
    syspro.control("POST", "syspro/settings", json={"licence_limit": 1})
    first = session(syspro)
    refused = logon(syspro)
    assert refused.status_code == 200 and refused.text.startswith("ERROR: Licence limit reached")
    assert requests.get(rest(syspro, "Logoff"), params={"UserId": first}, timeout=10).text == "0"
    second = session(syspro)
    assert second != first
    s = stats(syspro)
    assert s["licence_refusals"] == 1 and s["sessions_active"] == 1 and s["sessions_peak"] == 1


# --- queries --------------------------------------------------------------------------------------------


def test_comfnd_pages_customers_by_key_with_return_rows(syspro):
    uid = session(syspro)
    seen, last, calls = [], "", 0
    while True:
        where = [("", "(", "Customer", "GT", last, ")")] if last else []
        root = xml_of(
            query(
                syspro,
                uid,
                "COMFND",
                comfnd(
                    "ArCustomer", rows=7, columns=("Customer", "Name"), where=where, order_by=("Customer",)
                ),
            )
        )
        assert root.tag == "ArCustomer" and root.findtext("HeaderDetails/TableName") == "ArCustomer"
        rows = rows_of(root)
        assert int(root.findtext("RowsReturned").strip()) == len(rows) <= 7
        calls += 1
        if not rows:
            break
        assert all(set(r) == {"Customer", "Name"} for r in rows)
        seen += [r["Customer"] for r in rows]
        last = rows[-1]["Customer"]
    assert seen == sorted(seen) and len(set(seen)) == 40 and calls == 7  # 6 pages of <=7 then an empty one
    reference, _ = odata_all(syspro, "ArCustomer")
    assert seen == [c["Customer"] for c in reference]


def test_comfnd_where_combines_dates_brackets_and_or(syspro):
    uid = session(syspro)
    where = [
        ("", "(", "LastModified", "GE", "2026-10-01", ""),
        ("And", "", "OrderStatus", "EQ", "1", ")"),
        ("Or", "(", "Customer", "EQ", "C00002", ")"),
    ]
    root = xml_of(query(syspro, uid, "COMFND", comfnd("SorMaster", where=where)))
    got = {r["SalesOrder"]: r for r in rows_of(root)}
    everything, _ = odata_all(syspro, "SorMaster")
    expected = {
        o["SalesOrder"]
        for o in everything
        if (o["LastModified"] >= "2026-10-01" and o["OrderStatus"] == "1") or o["Customer"] == "C00002"
    }
    assert expected and set(got) == expected
    # the brackets moved: And now binds the date to both alternatives
    where = [
        ("", "", "LastModified", "GE", "2026-10-01", ""),
        ("And", "(", "OrderStatus", "EQ", "1", ""),
        ("Or", "", "Customer", "EQ", "C00002", ")"),
    ]
    narrowed = {
        r["SalesOrder"]
        for r in rows_of(xml_of(query(syspro, uid, "COMFND", comfnd("SorMaster", where=where))))
    }
    assert narrowed == {
        o["SalesOrder"]
        for o in everything
        if o["LastModified"] >= "2026-10-01" and (o["OrderStatus"] == "1" or o["Customer"] == "C00002")
    }
    assert narrowed != set(got)
    raw = query(syspro, uid, "COMFND", comfnd("SorMaster", rows=1)).text
    assert re.search(r"<OrderValue> +\d+\.\d\d</OrderValue>", raw)  # right-aligned numbers
    assert re.search(r"<RowsReturned> +1</RowsReturned>", raw)


def test_comfnd_reads_order_lines_by_order_range_and_pages_by_key(syspro):
    uid = session(syspro)
    where = [("", "", "SalesOrder", "GE", "000003", ""), ("And", "", "SalesOrder", "LE", "000004", "")]
    got = rows_of(xml_of(query(syspro, uid, "COMFND", comfnd("SorDetail", where=where))))
    expected = [
        syspro.control("GET", f"syspro/companies/SYS/orders/{n}")["lines"] for n in ("000003", "000004")
    ]
    assert [(r["SalesOrder"], int(r["SalesOrderLine"])) for r in got] == [
        (ln["SalesOrder"], ln["SalesOrderLine"]) for lines in expected for ln in lines
    ]
    after = [("", "", "SalesOrder", "GT", "000058", "")]
    tail = rows_of(
        xml_of(
            query(syspro, uid, "COMFND", comfnd("SorMaster", rows=5, where=after, order_by=("SalesOrder",)))
        )
    )
    assert [r["SalesOrder"] for r in tail] == ["000059", "000060"]
    either = [("", "", "SalesOrder", "EQ", "000001", ""), ("Or", "", "SalesOrder", "EQ", "000060", "")]
    both = rows_of(xml_of(query(syspro, uid, "COMFND", comfnd("SorMaster", where=either))))
    assert [r["SalesOrder"] for r in both] == ["000001", "000060"]


def test_sorqry_returns_the_header_and_lines_only_when_asked(syspro):
    uid = session(syspro)
    order = syspro.control("GET", "syspro/companies/SYS/orders/000005")
    root = xml_of(query(syspro, uid, "SORQRY", sorqry("000005")))
    assert root.tag == "SorDetail" and root.findtext("SalesOrder") == "000005"
    assert root.findtext("Customer") == order["header"]["Customer"]
    assert root.findtext("OrderDate") == order["header"]["OrderDate"][:10]
    lines = root.findall("SalesOrderLine/Merchandise")
    assert [
        (
            int(m.findtext("Line")),
            m.findtext("MStockCode"),
            float(m.findtext("MOrderQty")),
            float(m.findtext("MPrice")),
        )
        for m in lines
    ] == [(ln["SalesOrderLine"], ln["MStockCode"], ln["MOrderQty"], ln["MPrice"]) for ln in order["lines"]]
    assert all(re.fullmatch(r" +\d+\.\d{6}", m.findtext("MOrderQty")) for m in lines)
    bare = xml_of(query(syspro, uid, "SORQRY", sorqry("000005", lines=False)))
    assert bare.find("SalesOrderLine") is None


def test_invqry_reports_stock_per_warehouse_and_follows_control_changes(syspro):
    uid = session(syspro)
    xml_in = "<Query><Key><StockCode>A00003</StockCode></Key><Option><IncludeWarehouses>Y</IncludeWarehouses></Option></Query>"
    syspro.control("POST", "syspro/companies/SYS/stock/A00003/NTH", json={"on_hand": 50, "allocated": 8})
    root = xml_of(query(syspro, uid, "INVQRY", xml_in))
    assert root.tag == "InvQuery" and root.findtext("StockItem/StockCode") == "A00003"
    by_wh = {w.findtext("Warehouse"): w for w in root.findall("WarehouseItem")}
    assert set(by_wh) == {"FG", "NTH", "STH"}
    assert (
        float(by_wh["NTH"].findtext("QtyOnHand")) == 50 and float(by_wh["NTH"].findtext("QtyAvailable")) == 42
    )
    total = sum(float(w.findtext("QtyAvailable")) for w in by_wh.values())
    assert float(root.findtext("WarehouseTotals/QtyAvailable")) == total


def test_bad_requests_are_error_bodies_and_are_counted(syspro):
    uid = session(syspro)
    cases = [
        ("COMFND", "<Query><TableName>ArCustomer</Table", "ERROR: XmlIn is not valid XML"),
        ("COMFND", "", "ERROR: XmlIn is empty"),
        ("COMFND", "<Query><TableName>GenMaster</TableName></Query>", "ERROR: Table 'GenMaster'"),
        ("COMFND", comfnd("ArCustomer", where=[("", "", "Nope", "EQ", "1", "")]), "ERROR: Column 'Nope'"),
        ("SORQRY", sorqry("999999"), "ERROR: Sales order '999999' not found"),
        ("ARSQRY", "<Nope/>", "ERROR: XmlIn for ARSQRY must have the root element 'Query'"),
        ("XXXQRY", "<Query/>", "ERROR: Business object 'XXXQRY'"),
    ]
    for bo, xml_in, prefix in cases:
        text = query(syspro, uid, bo, xml_in).text
        assert text.startswith(prefix), (bo, text)
    s = stats(syspro)
    assert s["query_errors"] == {"COMFND": 4, "SORQRY": 1, "ARSQRY": 1, "XXXQRY": 1}


# --- operator changes and malformed orders --------------------------------------------------------------


def test_status_and_line_changes_move_last_modified_and_show_on_every_surface(syspro):
    uid = session(syspro)
    before = max(o["LastModified"] for o in odata_all(syspro, "SorMaster")[0])
    syspro.control("POST", "syspro/companies/SYS/clock", json={"now": "2026-11-21T09:00:00"})
    syspro.control(
        "POST",
        "syspro/companies/SYS/orders/000010/status",
        json={"order_status": "9", "shipment_status": "C"},
    )
    added = syspro.control(
        "POST",
        "syspro/companies/SYS/orders/000011/lines",
        json={"stock_code": "A00004", "quantity": 3, "price": 9.5},
    )
    order12 = syspro.control("GET", "syspro/companies/SYS/orders/000012")
    first = order12["lines"][0]["SalesOrderLine"]
    syspro.control("DELETE", f"syspro/companies/SYS/orders/000012/lines/{first}")
    where = [("", "", "LastModified", "GT", before[:-1], "")]
    changed = rows_of(xml_of(query(syspro, uid, "COMFND", comfnd("SorMaster", where=where))))
    assert [(r["SalesOrder"], r["LastModified"]) for r in changed] == [
        ("000010", "2026-11-21T09:00:00"),
        ("000011", "2026-11-21T09:00:01"),
        ("000012", "2026-11-21T09:00:02"),
    ]
    assert changed[0]["OrderStatus"] == "9" and changed[0]["ShipmentStatus"] == "C"
    lines11 = xml_of(query(syspro, uid, "SORQRY", sorqry("000011"))).findall("SalesOrderLine/Merchandise")
    assert (
        lines11[-1].findtext("MStockCode") == "A00004"
        and int(lines11[-1].findtext("Line")) == added["SalesOrderLine"]
    )
    detail, _ = odata_all(syspro, "SorDetail", **{"$filter": "SalesOrder eq '000012'"})
    assert [d["SalesOrderLine"] for d in detail] == [ln["SalesOrderLine"] for ln in order12["lines"][1:]]
    odata_changed, _ = odata_all(syspro, "SorMaster", **{"$filter": "LastModified gt 2026-11-21T00:00:00Z"})
    assert [o["SalesOrder"] for o in odata_changed] == ["000010", "000011", "000012"]
    value = sum(ln["MOrderQty"] * ln["MPrice"] for ln in order12["lines"][1:])
    assert odata_changed[2]["OrderValue"] == pytest.approx(value)


def test_changing_a_line_changes_it_in_place_and_restamps_its_order(syspro):
    uid = session(syspro)
    before = syspro.control("GET", "syspro/companies/SYS/orders/000007")
    line = before["lines"][0]["SalesOrderLine"]
    changed = syspro.control(
        "POST",
        "syspro/companies/SYS/orders/000007/lines",
        json={"line": line, "quantity": 99, "warehouse": "FG"},
    )
    assert changed["SalesOrderLine"] == line and changed["MOrderQty"] == 99
    root = xml_of(query(syspro, uid, "SORQRY", sorqry("000007")))
    merch = root.findall("SalesOrderLine/Merchandise")
    assert len(merch) == len(before["lines"])
    assert float(merch[0].findtext("MOrderQty")) == 99 and merch[0].findtext("MWarehouse") == "FG"
    assert root.findtext("LastModified") > before["header"]["LastModified"]
    refused = requests.post(
        f"{syspro.url}/_sandbox/syspro/companies/SYS/orders/000007/lines",
        json={"line": line, "warehouse": "ZZ"},
        timeout=10,
    )
    assert refused.status_code == 400


def test_new_customers_and_orders_get_the_next_codes_and_fresh_stamps(syspro):
    uid = session(syspro)
    syspro.control("POST", "syspro/companies/SYS/clock", json={"now": "2026-11-22T08:00:00"})
    cust = syspro.control("POST", "syspro/companies/SYS/customers", json={"Name": "Fresh Fields Ltd"})
    assert cust["Customer"] == "C00041" and cust["LastModified"] == "2026-11-22T08:00:00"
    order = syspro.control(
        "POST",
        "syspro/companies/SYS/orders",
        json={
            "customer": "C00041",
            "lines": [
                {"stock_code": "A00001", "quantity": 2, "price": 10},
                {"stock_code": "A00002", "quantity": 1},
            ],
        },
    )
    assert order["SalesOrder"] == "000061" and order["OrderValue"] > 20
    where = [("", "", "LastModified", "GE", "2026-11-22", "")]
    assert [
        r["Customer"]
        for r in rows_of(xml_of(query(syspro, uid, "COMFND", comfnd("ArCustomer", where=where))))
    ] == ["C00041"]
    fresh = rows_of(xml_of(query(syspro, uid, "COMFND", comfnd("SorMaster", where=where))))
    assert [(r["SalesOrder"], r["Customer"], r["OrderStatus"]) for r in fresh] == [("000061", "C00041", "1")]
    bad = requests.post(
        f"{syspro.url}/_sandbox/syspro/companies/SYS/orders",
        json={"customer": "C00041", "lines": [{"stock_code": "NOPE", "quantity": 1}]},
        timeout=10,
    )
    assert bad.status_code == 404
    assert syspro.control("GET", "syspro/companies/SYS")["counts"]["SorMaster"] == 61


def test_malformed_orders_break_only_themselves(syspro):
    uid = session(syspro)
    for order, kind in (("000020", "missing_customer"), ("000021", "bad_amount"), ("000022", "broken_xml")):
        syspro.control("POST", f"syspro/companies/SYS/orders/{order}/malformed", json={"kind": kind})
    assert xml_of(query(syspro, uid, "SORQRY", sorqry("000020"))).findtext("Customer") == ""
    bad = xml_of(query(syspro, uid, "SORQRY", sorqry("000021")))
    with pytest.raises(ValueError):
        float(bad.find("SalesOrderLine/Merchandise").findtext("MPrice"))
    broken = query(syspro, uid, "SORQRY", sorqry("000022"))
    assert not broken.text.startswith("ERROR")
    with pytest.raises(ET.ParseError):
        ET.fromstring(broken.content)
    assert xml_of(query(syspro, uid, "SORQRY", sorqry("000023"))).findtext("SalesOrder") == "000023"
    rows = {r["SalesOrder"]: r for r in rows_of(xml_of(query(syspro, uid, "COMFND", comfnd("SorMaster"))))}
    assert len(rows) == 60 and rows["000020"]["Customer"] == "" and rows["000021"]["OrderValue"] == "1O4.50"
    via_odata = {o["SalesOrder"]: o for o in odata_all(syspro, "SorMaster")[0]}
    assert via_odata["000021"]["OrderValue"] == "1O4.50" and via_odata["000020"]["Customer"] == ""
    info = syspro.control("GET", "syspro/companies/SYS")
    assert info["malformed"] == {
        "000020": ["missing_customer"],
        "000021": ["bad_amount"],
        "000022": ["broken_xml"],
    }


# --- OData ----------------------------------------------------------------------------------------------


def test_odata_needs_basic_auth_and_is_read_only(syspro):
    assert odata(syspro, "ArCustomer", auth=None).status_code == 401
    denied = odata(syspro, "ArCustomer", auth=(OP, "wrong"))
    assert denied.status_code == 401 and denied.headers["WWW-Authenticate"].startswith("Basic")
    post = requests.post(
        f"{syspro.url}/SysproOData/{CO}/ArCustomer", json={"Customer": "X"}, auth=(OP, PW), timeout=10
    )
    assert post.status_code == 405
    s = stats(syspro)
    assert s["odata_auth_failures"] == 2 and s["writes"] == 1


def test_odata_caps_each_response_and_follows_next_links_with_filters(syspro):
    syspro.control("POST", "syspro/settings", json={"odata_page_size": 25})
    everything, calls = odata_all(syspro, "SorMaster")
    assert len(everything) == 60 and calls == 3
    assert [o["SalesOrder"] for o in everything] == sorted(o["SalesOrder"] for o in everything)
    assert all(o["LastModified"].endswith("Z") for o in everything)
    recent, _ = odata_all(syspro, "SorMaster", **{"$filter": "OrderDate ge 2026-09-01T00:00:00Z"})
    assert recent and {o["SalesOrder"] for o in recent} == {
        o["SalesOrder"] for o in everything if o["OrderDate"] >= "2026-09-01"
    }
    window = odata(syspro, "SorMaster", **{"$top": "30", "$skip": "10", "$count": "true"}).json()
    assert window["@odata.count"] == 60 and len(window["value"]) == 25
    rest_of = requests.get(window["@odata.nextLink"], auth=(OP, PW), timeout=10).json()
    assert [o["SalesOrder"] for o in window["value"] + rest_of["value"]] == [
        o["SalesOrder"] for o in everything[10:40]
    ]
    assert "@odata.nextLink" not in rest_of
    lines, _ = odata_all(
        syspro, "SorDetail", **{"$filter": "SalesOrder eq '000003'", "$select": "SalesOrderLine,MPrice"}
    )
    assert lines and all(set(line) == {"SalesOrderLine", "MPrice"} for line in lines)
    assert odata(syspro, "SorMaster", **{"$filter": "Nope eq 1"}).status_code == 400


# --- faults and writes ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["500", "503", "drop", "error"])
def test_transient_faults_fire_as_configured(syspro, kind):
    uid = session(syspro)
    syspro.control("POST", "syspro/transient_faults", json={"rate": 1.0, "kinds": [kind], "seed": 1})
    try:
        resp = requests.get(
            rest(syspro, "Query/Query"),
            params={"UserId": uid, "BusinessObject": "COMFND", "XmlIn": comfnd("ArCustomer")},
            timeout=10,
        )
    except requests.ConnectionError:
        assert kind == "drop"
    else:
        assert kind != "drop"
        if kind == "error":
            assert resp.status_code == 200 and resp.text.startswith("ERROR: ")
        else:
            assert resp.status_code == int(kind)
    assert stats(syspro)["faults"] == {kind: 1}


def test_a_fault_rate_fails_that_share_of_calls_and_the_count_matches_what_clients_saw(syspro):
    uid = session(syspro)
    syspro.control("POST", "syspro/transient_faults", json={"rate": 0.3, "seed": 7, "operations": ["query"]})
    failed = 0
    for _ in range(40):
        try:
            resp = requests.get(
                rest(syspro, "Query/Query"),
                timeout=10,
                params={
                    "UserId": uid,
                    "BusinessObject": "ARSQRY",
                    "XmlIn": "<Query><Key><Customer>C00001</Customer></Key></Query>",
                },
            )
            failed += resp.status_code != 200 or resp.text.startswith("ERROR")
        except requests.ConnectionError:
            failed += 1
    fired = stats(syspro)["faults"]
    assert 0 < failed < 40 and sum(fired.values()) == failed
    assert requests.get(rest(syspro, "Logoff"), params={"UserId": uid}, timeout=10).text == "0"  # not faulted


def test_writes_are_refused_and_counted(syspro):
    uid = session(syspro)
    for op in ("Transaction/Post", "Setup/Add", "Transaction/Build"):
        resp = requests.get(
            rest(syspro, op), params={"UserId": uid, "BusinessObject": "SORTOI", "XmlIn": "<x/>"}, timeout=10
        )
        assert resp.status_code == 200 and resp.text.startswith("ERROR: ")
    s = stats(syspro)
    assert s["writes"] == 3 and s["writes_by_operation"] == {
        "transaction/post:SORTOI": 1,
        "setup/add:SORTOI": 1,
        "transaction/build:SORTOI": 1,
    }


def test_generation_is_deterministic_per_seed(sandbox):
    for name in ("A", "B"):
        sandbox.control(
            "POST",
            "syspro/companies",
            json={
                "company_id": name,
                "customers": 5,
                "orders": 8,
                "seed": 11,
                "operator": OP,
                "password": PW,
            },
        )
    one = [sandbox.control("GET", f"syspro/companies/A/orders/{n:06d}") for n in range(1, 9)]
    two = [sandbox.control("GET", f"syspro/companies/B/orders/{n:06d}") for n in range(1, 9)]
    assert one == two
    assert all(1 <= len(o["lines"]) <= 20 for o in one)
