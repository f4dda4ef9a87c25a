"""The SAP Business One Service Layer simulator over real HTTP: sessions, OData paging and filters,
contacts, orders with their errors and commit faults, the HTTPS listener, the control API."""

from __future__ import annotations

import hashlib
import ssl
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

DB = "SBODEMOUS"
TODAY = "2024-06-03"
CREDS = {"CompanyDB": DB, "UserName": "manager", "Password": "s3cret"}


@pytest.fixture
def b1(sandbox):
    sandbox.control("POST", "sap_b1/companies", json={
        "company_db": DB, "user": "manager", "password": "s3cret", "partners": 120, "contacts_max": 5,
        "items": 40, "invoices": 100, "seed": 3, "today": TODAY})
    return sandbox


def login(sandbox, version: str = "v1", base: str | None = None, **kwargs) -> requests.Session:
    session = requests.Session()
    resp = session.post(f"{base or sandbox.url}/b1s/{version}/Login", json=CREDS, timeout=10, **kwargs)
    assert resp.status_code == 200, resp.text
    return session


def url(sandbox, path: str, version: str = "v1") -> str:
    return f"{sandbox.url}/b1s/{version}/{path}"


def assert_b1_error(resp, status: int, code: int) -> str:
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert error["code"] == code
    assert error["message"]["lang"] == "en-us"
    return error["message"]["value"]


def all_pages(session, sandbox, first: str, version: str = "v1", **kwargs) -> tuple[list[dict], int]:
    """Follows the relative next links; (records, requests made)."""
    key = "odata.nextLink" if version == "v1" else "@odata.nextLink"
    records, calls, link = [], 0, first
    while link:
        resp = session.get(url(sandbox, link, version), timeout=30, **kwargs)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        records += body["value"]
        calls += 1
        link = body.get(key)
    return records, calls


# --- sessions ----------------------------------------------------------------------------------------

def test_login_sets_the_b1session_and_routeid_cookies_and_logout_ends_the_session(b1):
    resp = requests.post(url(b1, "Login"), json=CREDS, timeout=10)
    assert resp.status_code == 200
    body = resp.json()
    assert body["odata.metadata"].endswith("/b1s/v1/$metadata#B1Sessions/@Element")
    assert body["SessionTimeout"] == 30 and body["Version"]
    cookies = resp.raw.headers.getlist("Set-Cookie")
    assert f"B1SESSION={body['SessionId']};HttpOnly;" in cookies
    assert "ROUTEID=.node1; path=/b1s" in cookies

    session = requests.Session()
    session.post(url(b1, "Login"), json=CREDS, timeout=10)
    assert session.get(url(b1, "BusinessPartners"), timeout=10).status_code == 200
    assert session.post(url(b1, "Logout"), timeout=10).status_code == 204
    assert_b1_error(session.get(url(b1, "BusinessPartners"), timeout=10), 401, 301)
    stats = b1.control("GET", "sap_b1/stats")
    assert stats["logins"] == 2 and stats["logouts"] == 1 and stats["sessions_active"] == 1
    assert stats["sessions_peak"] == 2


def test_v2_login_uses_v4_annotations(b1):
    body = requests.post(url(b1, "Login", "v2"), json=CREDS, timeout=10).json()
    assert body["@odata.context"].endswith("/b1s/v2/$metadata#B1Sessions/$entity")
    assert "odata.metadata" not in body


@pytest.mark.parametrize("change", [{"Password": "wrong"}, {"UserName": "Manager"}, {"CompanyDB": "NOPE"}])
def test_bad_credentials_get_401_login_failed(b1, change):
    resp = requests.post(url(b1, "Login"), json={**CREDS, **change}, timeout=10)
    assert assert_b1_error(resp, 401, 100000027) == "Login failed"
    assert "Set-Cookie" not in resp.headers
    assert b1.control("GET", "sap_b1/stats")["login_failures"] == 1


def test_requests_without_a_valid_session_get_401_code_301(b1):
    message = assert_b1_error(requests.get(url(b1, "BusinessPartners"), timeout=10), 401, 301)
    assert message == "Invalid session or session already timeout."
    resp = requests.get(url(b1, "Items"), cookies={"B1SESSION": "forged"}, timeout=10)
    assert_b1_error(resp, 401, 301)


def test_expired_sessions_get_401_301_and_a_new_login_works(b1):
    session = login(b1)
    assert session.get(url(b1, "Items"), timeout=10).status_code == 200
    assert b1.control("POST", "sap_b1/expire_sessions") == {"expired": 1}
    assert_b1_error(session.get(url(b1, "Items"), timeout=10), 401, 301)
    session.post(url(b1, "Login"), json=CREDS, timeout=10)
    assert session.get(url(b1, "Items"), timeout=10).status_code == 200


def test_idle_timeout_is_configurable_in_seconds(b1):
    b1.control("POST", "sap_b1/settings", json={"session_timeout_s": 0.3})
    session = login(b1)
    assert session.cookies.get("B1SESSION")
    time.sleep(0.6)
    assert_b1_error(session.get(url(b1, "Items"), timeout=10), 401, 301)
    assert b1.control("GET", "sap_b1/stats")["session_rejections"] == 1


# --- paging ------------------------------------------------------------------------------------------

def test_default_page_is_20_with_a_relative_next_link_carrying_the_options(b1):
    session = login(b1)
    params = {"$select": "CardCode,CardName", "$filter": "CardType eq 'cCustomer'", "$inlinecount": "allpages"}
    body = session.get(url(b1, "BusinessPartners"), params=params, timeout=10).json()
    assert len(body["value"]) == 20
    assert set(body["value"][0]) == {"CardCode", "CardName"}
    assert body["odata.metadata"].endswith("$metadata#BusinessPartners(CardCode,CardName)")
    total = int(body["odata.count"])
    assert isinstance(body["odata.count"], str) and 20 < total < 120
    link = body["odata.nextLink"]
    assert link.startswith("BusinessPartners?")
    query = parse_qs(urlsplit(link).query)
    assert query["$skip"] == ["20"] and query["$filter"] == ["CardType eq 'cCustomer'"]
    assert query["$select"] == ["CardCode,CardName"]
    records, calls = all_pages(session, b1, link)
    assert len(records) + 20 == total and calls == -(-(total - 20) // 20)


def test_following_next_links_reaches_every_record_exactly_once(b1):
    b1.control("POST", "sap_b1/companies", json={
        "company_db": "BIG", "user": "manager", "password": "s3cret", "partners": 2000, "contacts_max": 5,
        "items": 1000, "invoices": 5000, "seed": 9, "today": TODAY})
    info = b1.control("GET", "sap_b1/companies/BIG")
    assert info["counts"]["BusinessPartners"] == 2000 and info["counts"]["Invoices"] == 5000
    assert 2000 < info["contacts"] < 10_000
    session = requests.Session()
    session.post(url(b1, "Login", "v2"), json={**CREDS, "CompanyDB": "BIG"}, timeout=10)
    partners, calls = all_pages(session, b1, "BusinessPartners", "v2")
    assert calls == 100
    codes = [p["CardCode"] for p in partners]
    assert len(codes) == len(set(codes)) == 2000
    contacts = [c["InternalCode"] for p in partners for c in p["ContactEmployees"]]
    assert len(contacts) == len(set(contacts)) == info["contacts"]
    assert {len(p["ContactEmployees"]) for p in partners} == {0, 1, 2, 3, 4, 5}
    prefer = {"Prefer": "odata.maxpagesize=700"}
    invoices, calls = all_pages(session, b1, "Invoices?$select=DocEntry,DocTotal", "v2", headers=prefer)
    assert calls == 8 and sorted(i["DocEntry"] for i in invoices) == list(range(1, 5001))


def test_maxpagesize_preference_is_applied_and_echoed(b1):
    session = login(b1, "v2")
    resp = session.get(url(b1, "Items", "v2"), headers={"Prefer": "odata.maxpagesize=7"},
                       params={"$count": "true"}, timeout=10)
    body = resp.json()
    assert resp.headers["Preference-Applied"] == "odata.maxpagesize=7"
    assert len(body["value"]) == 7 and body["@odata.count"] == 40
    assert body["@odata.nextLink"].startswith("Items?") and "$skip=7" in body["@odata.nextLink"]
    everything = session.get(url(b1, "Items", "v2"), headers={"Prefer": "odata.maxpagesize=0"}, timeout=10)
    assert len(everything.json()["value"]) == 40 and "@odata.nextLink" not in everything.json()
    plain = session.get(url(b1, "Items", "v2"), timeout=10)
    assert "Preference-Applied" not in plain.headers and len(plain.json()["value"]) == 20


def test_top_never_raises_the_page_and_skip_top_page_through(b1):
    session = login(b1)
    body = session.get(url(b1, "Items"), params={"$top": "30"}, timeout=10).json()
    assert len(body["value"]) == 20
    rest = session.get(url(b1, body["odata.nextLink"]), timeout=10).json()
    assert len(rest["value"]) == 10 and "odata.nextLink" not in rest
    small = session.get(url(b1, "Items"), params={"$top": "5", "$skip": "38"}, timeout=10).json()
    assert [i["ItemCode"] for i in small["value"]] == ["A00039", "A00040"]


def test_count_options_belong_to_their_version(b1):
    v1, v2 = login(b1), login(b1, "v2")
    assert_b1_error(v1.get(url(b1, "Items"), params={"$count": "true"}, timeout=10), 400, -1000)
    assert_b1_error(v2.get(url(b1, "Items", "v2"), params={"$inlinecount": "allpages"}, timeout=10), 400, -1000)
    assert v1.get(url(b1, "Items/$count"), timeout=10).text == "40"


# --- single entities, errors -------------------------------------------------------------------------

def test_single_entity_carries_its_etag_and_collections(b1):
    session = login(b1)
    resp = session.get(url(b1, "BusinessPartners('C0001')"), timeout=10)
    body = resp.json()
    assert body["odata.etag"] == resp.headers["ETag"] and body["odata.etag"].startswith('W/"')
    assert body["CardType"] == "cCustomer" and body["UpdateDate"].endswith("T00:00:00Z")
    assert len(body["UpdateTime"]) == 8 and body["UpdateTime"][2] == ":"
    for name in ("GroupCode", "CreditLimit", "Currency", "Industry", "U_ProfitCenter", "BPAddresses"):
        assert name in body
    v2 = login(b1, "v2").get(url(b1, "Items('A00001')", "v2"), timeout=10).json()
    assert v2["@odata.etag"] and v2["@odata.context"].endswith("$metadata#Items/$entity")
    assert {p["PriceList"] for p in v2["ItemPrices"]} == {1, 2, 3}
    assert {w["WarehouseCode"] for w in v2["ItemWarehouseInfoCollection"]} == {"01", "02", "03"}
    invoice = session.get(url(b1, "Invoices(1)"), timeout=10).json()
    assert invoice["DocNum"] != invoice["DocEntry"] and invoice["DocumentLines"]
    centers = session.get(url(b1, "ProfitCenters"), timeout=10).json()["value"]
    assert {c["CenterCode"] for c in centers} >= {body["U_ProfitCenter"]} - {""}


def test_b1_error_bodies(b1):
    session = login(b1)
    message = assert_b1_error(session.get(url(b1, "BusinessPartners('NOPE')"), timeout=10), 404, -2028)
    assert message == "No matching records found (ODBC -2028)"
    assert_b1_error(session.get(url(b1, "Invoices(999999)"), timeout=10), 404, -2028)
    assert_b1_error(session.get(url(b1, "Nothing"), timeout=10), 404, -1000)
    assert_b1_error(session.get(url(b1, "Items"), params={"$filter": "Nope eq 1"}, timeout=10), 400, -1000)
    assert_b1_error(session.get(url(b1, "Items"), params={"$filter": "ItemCode eq"}, timeout=10), 400, -1000)
    assert_b1_error(session.get(url(b1, "Items"), params={"$select": "Nope"}, timeout=10), 400, -1000)


def test_central_faults_apply(b1):
    b1.control("POST", "sap_b1/faults", json={"error_5xx": 1.0})
    assert requests.post(url(b1, "Login"), json=CREDS, timeout=10).status_code == 503
    b1.control("POST", "sap_b1/faults", json={"error_5xx": 0})
    login(b1)


# --- change detection --------------------------------------------------------------------------------

def test_filters_by_update_date_and_time_after_mutate(b1):
    session = login(b1)
    first = b1.control("POST", f"sap_b1/companies/{DB}/mutate",
                       json={"partners": 6, "items": 4, "today": "2024-06-10", "time": "09:15:00", "seed": 1})
    second = b1.control("POST", f"sap_b1/companies/{DB}/mutate",
                        json={"partners": 3, "time": "16:40:05", "seed": 2})
    early, late = set(first["changed"]["BusinessPartners"]), set(second["changed"]["BusinessPartners"])

    def codes(filter_text: str, version: str = "v1") -> set[str]:
        s = session if version == "v1" else v2
        resp = s.get(url(b1, "BusinessPartners", version), params={"$filter": filter_text},
                     headers={"Prefer": "odata.maxpagesize=0"}, timeout=10)
        assert resp.status_code == 200, resp.text
        return {p["CardCode"] for p in resp.json()["value"]}

    v2 = login(b1, "v2")
    assert codes("UpdateDate ge '2024-06-10'") == early | late
    assert codes("UpdateDate ge 2024-06-10", "v2") == early | late
    assert codes("UpdateDate eq '2024-06-10' and UpdateTime ge '16:00:00'") == late
    assert codes("UpdateDate gt '2024-06-10' or (UpdateDate eq '2024-06-10' and UpdateTime ge '09:15')") == \
        early | late
    assert codes("UpdateDate ge '2024-06-11'") == set()
    changed = session.get(url(b1, f"BusinessPartners('{sorted(late)[0]}')"), timeout=10).json()
    assert (changed["UpdateDate"], changed["UpdateTime"]) == ("2024-06-10T00:00:00Z", "16:40:05")
    items = session.get(url(b1, "Items"), params={"$filter": "UpdateDate ge '2024-06-10'"}, timeout=10).json()
    assert {i["ItemCode"] for i in items["value"]} == set(first["changed"]["Items"])
    assert codes(f"CardCode eq '{sorted(late)[0]}'") == {sorted(late)[0]}
    assert codes("CardType eq SAPB1.BoCardTypes'cSupplier'", "v2") == codes("CardType eq 'cSupplier'")


def test_contact_employees_added_and_removed(b1):
    session = login(b1)
    result = b1.control("POST", f"sap_b1/companies/{DB}/mutate",
                        json={"remove_contacts": 3, "add_contacts": 2, "today": "2024-06-12", "seed": 4})
    assert len(result["contacts_removed"]) == 3 and len(result["contacts_added"]) == 2
    for gone in result["contacts_removed"]:
        partner = session.get(url(b1, f"BusinessPartners('{gone['CardCode']}')"), timeout=10).json()
        assert gone["InternalCode"] not in {c["InternalCode"] for c in partner["ContactEmployees"]}
        assert partner["UpdateDate"] == "2024-06-12T00:00:00Z"
    for new in result["contacts_added"]:
        partner = session.get(url(b1, f"BusinessPartners('{new['CardCode']}')"), timeout=10).json()
        row = next(c for c in partner["ContactEmployees"] if c["InternalCode"] == new["InternalCode"])
        assert row["Name"] == new["Name"] and row["CardCode"] == new["CardCode"]
        assert set(row) >= {"FirstName", "LastName", "Phone1", "MobilePhone", "E_Mail", "Position", "Active"}
        assert len({c["Name"] for c in partner["ContactEmployees"]}) == len(partner["ContactEmployees"])


# --- orders ------------------------------------------------------------------------------------------

def order_body(**changes) -> dict:
    return {"CardCode": "C0001", "NumAtCard": "PD-deal-42", "Comments": "from Pipedrive",
            "DocumentLines": [{"ItemCode": "A00001", "Quantity": 2, "UnitPrice": 10.5},
                              {"ItemCode": "A00002", "Quantity": 1}], **changes}


@pytest.mark.parametrize("changes,fragment", [
    ({"CardCode": "NOPE"}, "Invalid BP code"),
    ({"CardCode": "S0005"}, "vendor"),
    ({"DocumentLines": []}, "at least one row"),
    ({"DocumentLines": [{"ItemCode": "A99999", "Quantity": 1}]}, "Invalid item code"),
    ({"DocumentLines": [{"ItemCode": "A00001", "Quantity": 0}]}, "Quantity"),
])
def test_order_validation_errors_are_b1_5002(b1, changes, fragment):
    session = login(b1)
    resp = session.post(url(b1, "Orders"), json=order_body(**changes), timeout=10)
    assert fragment in assert_b1_error(resp, 400, -5002)
    orders = b1.control("GET", f"sap_b1/companies/{DB}/orders")
    assert orders == {"orders": [], "rejected": 1}


def test_order_with_an_unknown_property_is_rejected(b1):
    resp = login(b1).post(url(b1, "Orders"), json=order_body(DealId=7), timeout=10)
    assert "DealId" in assert_b1_error(resp, 400, -1000)


def test_order_created_and_found_by_num_at_card(b1):
    session = login(b1, "v2")
    resp = session.post(url(b1, "Orders", "v2"), json=order_body(), timeout=10)
    assert resp.status_code == 201, resp.text
    order = resp.json()
    assert order["DocEntry"] == 1 and order["DocNum"] == 200001 and order["@odata.etag"]
    assert resp.headers["Location"].endswith("/b1s/v2/Orders(1)")
    lines = order["DocumentLines"]
    assert [(ln["ItemCode"], ln["Quantity"]) for ln in lines] == [("A00001", 2), ("A00002", 1)]
    assert lines[0]["Price"] == 10.5 and lines[1]["Price"] > 0  # no price: the partner's price list
    assert order["DocTotal"] == round(sum(ln["LineTotal"] for ln in lines), 2)
    found = session.get(url(b1, "Orders", "v2"), params={"$filter": "NumAtCard eq 'PD-deal-42' and CardCode eq 'C0001'"},
                        timeout=10).json()["value"]
    assert [o["DocEntry"] for o in found] == [1]
    posted = b1.control("GET", f"sap_b1/companies/{DB}/orders")["orders"]
    assert [(o["DocEntry"], o["NumAtCard"], o["answered"]) for o in posted] == [(1, "PD-deal-42", "201")]
    again = session.post(url(b1, "Orders", "v2"), json=order_body(), timeout=10).json()
    assert again["DocEntry"] == 2  # B1 itself does not deduplicate


def test_commit_fault_creates_the_order_but_the_client_sees_a_failure(b1):
    session = login(b1)
    b1.control("POST", "sap_b1/commit_faults", json={"fraction": 1.0, "mode": "502"})
    resp = session.post(url(b1, "Orders"), json=order_body(NumAtCard="lost-1"), timeout=10)
    assert resp.status_code == 502
    b1.control("POST", "sap_b1/commit_faults", json={"mode": "drop"})
    with pytest.raises(requests.ConnectionError):
        session.post(url(b1, "Orders"), json=order_body(NumAtCard="lost-2"), timeout=10)
    b1.control("POST", "sap_b1/commit_faults", json={"fraction": 0})
    session = login(b1)
    found = session.get(url(b1, "Orders"), params={"$filter": "NumAtCard eq 'lost-1' or NumAtCard eq 'lost-2'"},
                        timeout=10).json()["value"]
    assert sorted(o["NumAtCard"] for o in found) == ["lost-1", "lost-2"]
    posted = b1.control("GET", f"sap_b1/companies/{DB}/orders")["orders"]
    assert [o["answered"] for o in posted] == ["502", "drop"]
    assert b1.control("GET", "sap_b1/stats")["after_commit_faults"] == 2


def test_order_patch_honours_if_match(b1):
    session = login(b1)
    created = session.post(url(b1, "Orders"), json=order_body(), timeout=10).json()
    stale = created["odata.etag"]
    ok = session.patch(url(b1, "Orders(1)"), json={"Comments": "won"}, headers={"If-Match": stale}, timeout=10)
    assert ok.status_code == 204
    again = session.patch(url(b1, "Orders(1)"), json={"Comments": "x"}, headers={"If-Match": stale}, timeout=10)
    assert_b1_error(again, 412, -2039)
    assert session.get(url(b1, "Orders(1)"), timeout=10).json()["Comments"] == "won"


# --- HTTPS -------------------------------------------------------------------------------------------

def test_https_listener_with_a_pinned_self_signed_certificate(b1, tmp_path):
    tls = b1.control("GET", "sap_b1/tls")
    assert tls["url"].startswith("https://127.0.0.1:") and b1.control("GET", "sap_b1/tls")["port"] == tls["port"]
    pem = tmp_path / "b1.pem"
    pem.write_text(tls["cert_pem"])
    session = requests.Session()  # verify per request: REQUESTS_CA_BUNDLE would override Session.verify
    resp = session.post(f"{tls['url']}/b1s/v1/Login", json=CREDS, timeout=10, verify=str(pem))
    assert resp.status_code == 200 and resp.json()["odata.metadata"].startswith("https://127.0.0.1:")
    body = session.get(f"{tls['url']}/b1s/v1/BusinessPartners('C0001')", timeout=10, verify=str(pem)).json()
    assert body["CardCode"] == "C0001"
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{tls['url']}/b1s/v1/Items", timeout=10)  # not trusted by the default bundle
    served = ssl.get_server_certificate(("127.0.0.1", tls["port"]))
    assert hashlib.sha256(ssl.PEM_cert_to_DER_cert(served)).hexdigest() == tls["sha256"]
