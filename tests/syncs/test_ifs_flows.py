"""IFS Cloud → Pipedrive over loopback HTTP: customers → organizations, customer orders → deals on the
customer's organization with GL dimensions and status; counted at both sandboxes. The token is the
connection's, shared and renewed invisibly; a 60-a-minute style limit (scaled down) is waited out."""

from __future__ import annotations

import pytest

from connectors.ifs import client as ifs_client
from connectors.ifs.client import IfsClient
from connectors.registry import connector_for
from syncs.models import RecordLink, SyncRecord
from tests.syncs.ifs_world import CUSTOMERS, ORDERS, IfsWorld

pytestmark = pytest.mark.django_db(transaction=True)  # the engine's threads commit on their own connections


@pytest.fixture
def world(sandbox, tenant):
    return IfsWorld.build(sandbox, tenant)


def test_customers_and_orders_arrive_exactly_once_and_a_rerun_costs_no_pipedrive_call(world):
    customers, orders = world.ifs_all("customers"), world.ifs_all("sales_orders")
    assert len(customers) == 12 and len(orders) == 40
    for kind in (CUSTOMERS, ORDERS):
        result = world.run(kind)
        assert result.status == "succeeded" and result.failed == 0, result.error

    orgs = world.by_external("organizations", "IFS customer id")
    assert set(orgs) == {c["CustomerId"] for c in customers} and set(orgs.values()) == {1}
    deals = world.by_external("deals", "IFS order number")
    assert set(deals) == {o["OrderNo"] for o in orders} and set(deals.values()) == {1}
    org_of = {link.external_id: link.target_id for link in RecordLink.objects.filter(source_object="customers")}
    keys = {name: world.key("deals", name) for name in
            ("IFS order number", "Cost center", "Profit center", "Region", "Order status")}
    by_no = {o["OrderNo"]: o for o in orders}
    for deal in world.records("deals"):
        custom = deal["custom_fields"]
        order = by_no[custom[keys["IFS order number"]]]
        assert deal["org_id"] == org_of[order["CustomerNo"]]
        assert custom[keys["Cost center"]] == order["CodeB"]
        assert custom[keys["Profit center"]] == order["CodeC"]
        assert custom[keys["Region"]] == order["RegionCode"]
        assert custom[keys["Order status"]] == order["Objstate"]
    assert world.stats()["writes_other"] == 0 and world.stats()["actions_called"] == 0

    world.pd("POST", "stats/reset")
    for kind in (CUSTOMERS, ORDERS):
        again = world.run(kind)
        assert again.status == "succeeded" and again.pipedrive_calls == 0
    assert world.calls() == {}

    # IFS users move 3 orders on and edit 2 customers: the next runs read those (by ChangedDate) and send them
    changed = world.ifsctl("POST", "environments/ifsdemo/mutate", json={"customers": 2, "orders": 3})["changed"]
    result = world.run(CUSTOMERS)  # (an edit of a field no mapping reads costs nothing)
    assert result.status == "succeeded" and result.read >= 2 and 1 <= result.updated <= 2, result.error
    world.pd("POST", "stats/reset")
    result = world.run(ORDERS)
    assert result.status == "succeeded" and 1 <= result.updated <= 3 and result.read <= 3 + 2, result.error
    assert sum(world.calls().values()) == result.updated
    status_key = keys["Order status"]
    states = {o["OrderNo"]: o["Objstate"] for o in world.ifs_all("sales_orders")}
    for deal in world.records("deals"):
        order_no = deal["custom_fields"][keys["IFS order number"]]
        if order_no in changed["CustomerOrderSet"]:
            assert deal["custom_fields"][status_key] == states[order_no]


def test_the_token_is_shared_by_the_connections_workers_and_renewed_mid_run_without_showing(world, monkeypatch):
    assert world.run(CUSTOMERS).status == "succeeded"
    original = IfsClient.changed_since
    expired = []

    def expiring(self, obj, cursor):
        for n, page in enumerate(original(self, obj, cursor)):
            yield page
            if n == 0:  # IFS IAM ends every token between two page reads
                expired.append(world.ifsctl("POST", "expire_tokens", json={"namespace": "ifsdemo"})["expired"])

    monkeypatch.setattr(IfsClient, "changed_since", expiring)
    monkeypatch.setattr(ifs_client, "PAGE_SIZE", 10)
    result = world.run(ORDERS)
    assert expired == [1]
    assert result.status == "succeeded", result.error
    assert result.failed == 0 and not SyncRecord.objects.filter(run=result, outcome="failed").exists()
    assert set(world.by_external("deals", "IFS order number").values()) == {1}
    stats = world.stats()
    # one token for the customers run, taken over by the orders run, one more after the expiry
    assert stats["tokens_issued"] == 2 and stats["auth_rejections"] == 1
    # a second client of the same connection (another worker) takes the stored token: no new one
    world.ifs.refresh_from_db()
    assert world.ifs.credentials["access_token"]
    with connector_for(world.ifs) as other:
        assert other.test_connection().ok
    assert world.stats()["tokens_issued"] == 2


def test_a_rate_limit_is_waited_out_with_no_failed_record(sandbox, tenant):
    # 60 requests a minute scaled down: 4 requests per 2-second window, pages of 5 records
    world = IfsWorld.build(sandbox, tenant, customers=12, orders=25,
                           ifs_settings={"rate_limit": 4, "rate_window_s": 2, "page_size": 5})
    for kind in (CUSTOMERS, ORDERS):
        result = world.run(kind)
        assert result.status == "succeeded" and result.failed == 0, result.error
    assert set(world.by_external("organizations", "IFS customer id").values()) == {1}
    deals = world.by_external("deals", "IFS order number")
    assert len(deals) == 25 and set(deals.values()) == {1}
    stats = world.stats()
    assert stats["rate_limited"] > 0  # the limit bit …
    # … and every 429 was answered by waiting and asking again: nothing but successes and those 429s
    assert stats["by_status"] == {"200": stats["requests"] - stats["rate_limited"], "429": stats["rate_limited"]}
