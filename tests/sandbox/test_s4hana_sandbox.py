"""The S/4HANA simulator speaks API_BUSINESS_PARTNER as SAP documents it (OData V2 over loopback HTTP)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import requests

SERVICE = "/sap/opu/odata/sap/API_BUSINESS_PARTNER/"
EDM = "{http://schemas.microsoft.com/ado/2008/09/edm}"


def system(sandbox, **extra):
    return sandbox.control(
        "POST",
        "s4hana/systems",
        json={"client_id": "COMM_USER", "client_secret": "pw-s4-0001", "partners": 30, "seed": 2, **extra},
    )


def token(sandbox) -> str:
    resp = requests.post(
        f"{sandbox.url}/sap/bc/sec/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=("COMM_USER", "pw-s4-0001"),
        timeout=10,
    )
    assert resp.status_code == 200 and resp.json()["token_type"] == "Bearer"
    return resp.json()["access_token"]


def get(sandbox, path, bearer, **params):
    return requests.get(
        f"{sandbox.url}{SERVICE}{path}",
        params=params,
        timeout=10,
        headers={"Authorization": f"Bearer {bearer}", "Accept": "application/json"},
    )


def test_metadata_declares_what_is_served_including_sets_nobody_reads(sandbox):
    system(sandbox)
    bearer = token(sandbox)
    resp = get(sandbox, "$metadata", bearer)
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("application/xml")
    root = ET.fromstring(resp.text)
    sets = {s.get("Name") for s in root.iter(f"{EDM}EntitySet")}
    assert {"A_BusinessPartner", "A_Customer", "A_Supplier", "A_BusinessPartnerBank"} <= sets
    bp_type = next(t for t in root.iter(f"{EDM}EntityType") if t.get("Name") == "A_BusinessPartnerType")
    declared = {p.get("Name"): p.get("Type") for p in bp_type.iter(f"{EDM}Property")}
    assert declared["LastChangeDate"] == "Edm.DateTime" and declared["LastChangeTime"] == "Edm.Time"
    row = get(sandbox, "A_BusinessPartner", bearer, **{"$top": "1"}).json()["d"]["results"][0]
    assert set(row) - {"__metadata"} - {
        n.get("Name") for n in bp_type.iter(f"{EDM}NavigationProperty")
    } == set(declared)
    assert row["__metadata"]["type"] == "API_BUSINESS_PARTNER.A_BusinessPartnerType"
    assert row["to_BusinessPartnerRole"] == {
        "__deferred": {"uri": row["__metadata"]["uri"] + "/to_BusinessPartnerRole"}
    }
    assert row["CreationDate"].startswith("/Date(") and row["CreationTime"].startswith("PT")
    assert get(sandbox, "A_BusinessPartnerBank", bearer).json() == {"d": {"results": []}}


def test_paging_filters_expand_and_select(sandbox):
    info = system(sandbox)
    sandbox.control("POST", "s4hana/settings", json={"page_size": 4})
    bearer = token(sandbox)
    first = get(
        sandbox,
        "A_BusinessPartner",
        bearer,
        **{
            "$filter": "BusinessPartnerCategory eq '2'",
            "$inlinecount": "allpages",
            "$select": "BusinessPartner",
        },
    ).json()
    assert first["d"]["__count"] == str(info["counts"]["organizations"])
    keys = [r["BusinessPartner"] for r in first["d"]["results"]]
    url = first["d"]["__next"]
    assert "$skiptoken=4" in url
    while url:
        page = requests.get(url, headers={"Authorization": f"Bearer {bearer}"}, timeout=10).json()["d"]
        keys += [r["BusinessPartner"] for r in page["results"]]
        url = page.get("__next")
    assert len(keys) == len(set(keys)) == info["counts"]["organizations"] and keys == sorted(keys)
    # time'…' and datetime'…' literals; an offset in a datetime literal is refused with a V2 error body
    sandbox.control(
        "POST",
        "s4hana/systems/COMM_USER/change",
        json={"partners": [keys[0]], "today": "2026-12-01", "time": "13:20:05"},
    )
    hit = get(
        sandbox,
        "A_BusinessPartner",
        bearer,
        **{
            "$filter": "(LastChangeDate eq datetime'2026-12-01T00:00:00' and LastChangeTime ge time'PT13H20M00S') "
            "or LastChangeDate gt datetime'2026-12-01T00:00:00'",
            "$expand": "to_BusinessPartnerRole,to_BusinessPartnerAddress/to_EmailAddress",
        },
    ).json()["d"]["results"]
    assert [r["BusinessPartner"] for r in hit] == [keys[0]]
    assert hit[0]["LastChangeTime"] == "PT13H20M05S" and isinstance(
        hit[0]["to_BusinessPartnerRole"]["results"], list
    )
    assert "results" in hit[0]["to_BusinessPartnerAddress"]["results"][0]["to_EmailAddress"]
    late = get(
        sandbox,
        "A_BusinessPartner",
        bearer,
        **{
            "$filter": "LastChangeTime gt time'PT13H20M05S' and "
            "LastChangeDate eq datetime'2026-12-01T00:00:00'"
        },
    )
    assert late.json()["d"]["results"] == []
    bad = get(
        sandbox,
        "A_BusinessPartner",
        bearer,
        **{"$filter": "LastChangeDate ge datetime'2026-12-01T00:00:00Z'"},
    )
    assert bad.status_code == 400 and bad.json()["error"]["message"]["value"]
    assert bad.json()["error"]["innererror"]["errordetails"] == []
    unknown = get(sandbox, "A_BusinessPartner", bearer, **{"$expand": "to_Nothing"})
    assert unknown.status_code == 400


def test_customer_and_supplier_sets_match_the_roles(sandbox):
    counts = system(sandbox)["counts"]
    bearer = token(sandbox)
    customers = get(sandbox, "A_Customer", bearer, **{"$inlinecount": "allpages"}).json()["d"]["__count"]
    suppliers = get(sandbox, "A_Supplier", bearer, **{"$inlinecount": "allpages"}).json()["d"]["__count"]
    assert int(customers) == counts["customers"] + counts["both"]
    assert int(suppliers) == counts["suppliers"] + counts["both"]


def test_tokens_expire_csrf_is_fetched_and_writes_are_counted(sandbox):
    system(sandbox)
    bearer = token(sandbox)
    assert get(sandbox, "A_BusinessPartner", bearer).status_code == 200
    fetch = requests.get(
        f"{sandbox.url}{SERVICE}",
        headers={"Authorization": f"Bearer {bearer}", "x-csrf-token": "fetch"},
        timeout=10,
    )
    assert fetch.status_code == 200 and fetch.headers["x-csrf-token"] not in ("", "Required")
    write = requests.post(
        f"{sandbox.url}{SERVICE}A_BusinessPartner",
        json={},
        timeout=10,
        headers={"Authorization": f"Bearer {bearer}"},
    )
    assert write.status_code == 403 and write.headers["x-csrf-token"] == "Required"
    basic = requests.get(f"{sandbox.url}{SERVICE}A_Supplier", auth=("COMM_USER", "pw-s4-0001"), timeout=10)
    assert basic.status_code == 200
    assert (
        requests.get(f"{sandbox.url}{SERVICE}A_Supplier", auth=("COMM_USER", "wrong"), timeout=10).status_code
        == 401
    )
    assert sandbox.control("POST", "s4hana/expire_tokens")["expired"] == 1
    assert get(sandbox, "A_BusinessPartner", bearer).status_code == 401
    stats = sandbox.control("GET", "s4hana/stats")
    assert (stats["writes"], stats["csrf_fetches"], stats["token_grants"], stats["token_rejections"]) == (
        1,
        1,
        1,
        1,
    )
