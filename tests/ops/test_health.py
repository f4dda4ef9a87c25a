"""/healthz: 200 when the database and the broker answer, 503 naming what failed (never a DSN)."""

from __future__ import annotations

import os

import pytest

from tests.conftest import free_port

pytestmark = pytest.mark.django_db

TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL") or "redis://127.0.0.1:6379/0"


def redis_available() -> bool:
    try:
        import redis

        return bool(redis.Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=0.5).ping())
    except Exception:
        return False


def with_redis_broker(settings, url: str) -> None:
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "redis": url}
    settings.Q_CLUSTER.pop("orm", None)


def test_healthz_with_the_database_broker_is_ok_and_needs_no_login(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"database": "ok", "broker": "ok"}


def test_healthz_with_an_unreachable_redis_broker_is_503_and_says_so_without_the_url(client, settings):
    port = free_port()  # nothing listens there: the connection is refused at once
    url = f"redis://:hunter2-SECRET@127.0.0.1:{port}/0"
    with_redis_broker(settings, url)
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["database"] == "ok"
    assert body["broker"] == "Redis (the task broker) did not answer."
    assert "hunter2" not in response.content.decode() and str(port) not in response.content.decode()


def test_healthz_with_a_live_redis_broker_is_ok(client, settings):
    if not redis_available():
        pytest.skip(f"Redis is not answering at {TEST_REDIS_URL} (make test starts it when installed)")
    with_redis_broker(settings, TEST_REDIS_URL)
    response = client.get("/healthz")
    assert response.status_code == 200, response.content
    assert response.json() == {"database": "ok", "broker": "ok"}


def test_healthz_reports_a_database_that_does_not_answer(client, monkeypatch):
    from ops import health

    def broken():
        raise OSError("could not connect to server at postgres://user:pw@db.internal:5432/prod")

    monkeypatch.setitem(health.CHECKS, "database", (broken, "The database did not answer."))
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["database"] == "The database did not answer."
    assert "postgres://" not in response.content.decode()
