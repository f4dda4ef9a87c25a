"""The IFS Cloud client against the IFS simulator over loopback: pings, failures classified in plain words
without the secret, 5xx retried, a token kept in the connection's encrypted credentials."""

from __future__ import annotations

import pytest
from django.db import connection as db_connection

from connectors.base import ConnectorError
from connectors.http import RetryPolicy
from connectors.ifs.client import IfsClient
from connectors.models import Connection
from connectors.registry import connector_for

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "ifs-client-secret-pw"


@pytest.fixture
def env(sandbox):
    sandbox.control("POST", "ifs/environments", json={"namespace": "ifsdemo", "client_id": "ml-connector",
                                                      "client_secret": SECRET, "customers": 7, "orders": 3})
    return sandbox


def client(env, **overrides) -> IfsClient:
    args = {"base_url": env.url, "namespace": "ifsdemo", "client_id": "ml-connector", "client_secret": SECRET,
            "policy": RetryPolicy(retries=3, base_s=0.01, cap_s=0.05)}
    return IfsClient(**{**args, **overrides})


def test_ping_counts_customers_and_a_pasted_projection_url_still_works(env):
    result = client(env, base_url=f"{env.url}/main/ifsapplications/projection/v1/CustomerHandling.svc").test_connection()
    assert result.ok and result.message == "Connected to IFS Cloud namespace ifsdemo (7 customers)"


def test_a_wrong_secret_or_realm_is_an_auth_or_permanent_failure_in_plain_words(env):
    wrong = client(env, client_secret="not-the-secret").test_connection()
    assert not wrong.ok and wrong.details["kind"] == "auth" and "check the namespace, client ID and secret" in wrong.message
    assert "not-the-secret" not in str(wrong.message) + str(wrong.details)
    realm = client(env, namespace="nowhere").test_connection()
    assert not realm.ok and realm.details["kind"] == "permanent" and "no IAM realm 'nowhere'" in realm.message


def test_server_errors_are_retried_and_then_transient(env):
    env.control("POST", "ifs/faults", json={"error_5xx": 1.0})
    with pytest.raises(ConnectorError) as failed:
        client(env).read_one("customers", "10001")
    assert failed.value.kind == "transient" and "is busy or failing" in failed.value.message
    assert "An unexpected error occurred on the server." in failed.value.message
    env.control("POST", "ifs/faults", json={"error_5xx": 0})
    assert client(env).read_one("customers", "10001")["CustomerId"] == "10001"
    assert client(env).read_one("customers", "nope") is None


def test_the_token_lives_encrypted_in_the_connection_and_is_renewed_after_a_401(env, tenant):
    conn = Connection.objects.create(tenant=tenant, system="ifs", name="IFS", base_url=env.url,
                                     options={"namespace": "ifsdemo", "client_id": "ml-connector"},
                                     credentials={"client_secret": SECRET})
    with connector_for(conn) as first:
        assert first.read_one("sales_orders", first.changed_since("sales_orders", {}).__next__().records[0]["OrderNo"])
    conn.refresh_from_db()
    token = conn.credentials["access_token"].split(" ")[-1]
    with db_connection.cursor() as cursor:
        cursor.execute("SELECT credentials FROM connectors_connection WHERE id = %s", [conn.pk])
        raw = cursor.fetchone()[0]
    assert "access_token" in str(raw) and token not in str(raw)  # stored encrypted, like every secret
    env.control("POST", "ifs/expire_tokens", json={"namespace": "ifsdemo"})
    with connector_for(conn) as second:
        assert second.test_connection().ok
    conn.refresh_from_db()
    assert token not in conn.credentials["access_token"]
    stats = env.control("GET", "ifs/environments/ifsdemo/stats")
    assert stats["tokens_issued"] == 2 and stats["auth_rejections"] == 1

    # the customer changes the secret: the token stored for the old one is not used any more
    conn.credentials = {**conn.credentials, "client_secret": "a-wrong-secret"}
    conn.save()
    with connector_for(conn) as third:
        result = third.test_connection()
    assert not result.ok and result.details["kind"] == "auth"


def test_count_asks_the_projection_once_and_matches_the_environment(env):
    held = env.control("GET", "ifs/environments/ifsdemo")
    with client(env) as ifs:
        assert ifs.count("customers") == held["customers"] == 7
        assert ifs.count("sales_orders") == held["orders"] == 3
        read = [r for page in ifs.changed_since("customers", {}) for r in page.records]
        assert len(read) == 7
        with pytest.raises(ConnectorError) as unknown:
            ifs.count("invoices")
    assert unknown.value.kind == "permanent" and "no object 'invoices'" in unknown.value.message
    with pytest.raises(ConnectorError) as wrong:
        client(env, client_secret="not-the-secret").count("customers")
    assert wrong.value.kind == "auth" and "not-the-secret" not in wrong.value.message
