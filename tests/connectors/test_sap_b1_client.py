"""The SAP B1 client against the Service Layer simulator: session, paging, and ETag updates."""

from __future__ import annotations

import pytest

from connectors.base import ConnectorError
from connectors.models import Connection

DB = "SBOETAG"


@pytest.fixture
def b1(sandbox, tenant):
    sandbox.control("POST", "sap_b1/companies", json={
        "company_db": DB, "user": "manager", "password": "b1-pw-123", "partners": 12, "contacts_max": 1,
        "items": 3, "invoices": 0, "seed": 5, "today": "2026-11-20"})
    conn = Connection.objects.create(tenant=tenant, system="sap_b1", name="B1", base_url=f"{sandbox.url}/b1s/v1",
                                     options={"company_db": DB, "user": "manager"},
                                     credentials={"password": "b1-pw-123"})
    from connectors.sap_b1.client import SapB1Client

    client = SapB1Client.from_connection(conn)
    yield client
    client.close()


def _an_order(client) -> int:
    partners = [p for page in client.changed_since("business_partners", {}) for p in page.records]
    customer = next(p for p in partners if p["CardType"] == "cCustomer" and p["Frozen"] != "tYES")
    item = next(i for page in client.changed_since("items", {}) for i in page.records)
    return client.order_create(card_code=customer["CardCode"], reference="PO-ETAG",
                               lines=[{"ItemCode": item["ItemCode"], "Quantity": 1, "UnitPrice": 3.0}])["DocEntry"]


def _meddle_after_reads(client, sandbox, times: int):
    """Someone edits the order in B1 right after each of our first `times` reads: our ETag goes stale."""
    original = client.call
    reads = []

    def call(method, path, **kwargs):
        resp = original(method, path, **kwargs)
        if method == "GET" and path.startswith("Orders(") and len(reads) < times:
            reads.append(path)
            entry = path[len("Orders("):-1]
            sandbox.control("PATCH", f"sap_b1/companies/{DB}/records/Orders/{entry}",
                            json={"Comments": f"edited by someone else {len(reads)}"})
        return resp

    client.call = call
    return reads


def test_order_update_sends_the_etag_of_a_fresh_read(b1, sandbox):
    entry = _an_order(b1)
    b1.order_update(entry, {"Comments": "Deal 42 won"})
    order = sandbox.control("GET", f"sap_b1/companies/{DB}/records/Orders/{entry}")
    assert order["Comments"] == "Deal 42 won"


def test_a_412_rereads_and_retries_once(b1, sandbox):
    entry = _an_order(b1)
    sandbox.control("DELETE", "sap_b1/stats")
    reads = _meddle_after_reads(b1, sandbox, times=1)
    b1.order_update(entry, {"Comments": "ours, after a conflict"})
    assert len(reads) == 1
    order = sandbox.control("GET", f"sap_b1/companies/{DB}/records/Orders/{entry}")
    assert order["Comments"] == "ours, after a conflict"
    assert "412" in str(sandbox.control("GET", "sap_b1/stats"))


def test_a_second_412_is_a_clear_transient_failure_and_overwrites_nothing(b1, sandbox):
    entry = _an_order(b1)
    _meddle_after_reads(b1, sandbox, times=5)
    with pytest.raises(ConnectorError) as caught:
        b1.order_update(entry, {"Comments": "ours"})
    assert caught.value.status == 412 and not caught.value.permanent
    assert "kept changing" in caught.value.message
    order = sandbox.control("GET", f"sap_b1/companies/{DB}/records/Orders/{entry}")
    assert order["Comments"] == "edited by someone else 2"
