"""/metrics: Prometheus text with values computed from the database, behind a token or loopback."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from connectors.pipedrive.models import PipedriveBudget
from syncs.models import Flow
from tests.factories import make_record, make_run

pytestmark = pytest.mark.django_db


def scrape(client, **extra) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics", **extra)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name: str, **labels) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def test_runs_records_and_failures_by_kind_come_from_the_database(client, flow):
    empty = scrape(client)
    assert value(empty, "mlconnector_runs_total", status="succeeded") == 0
    assert value(empty, "mlconnector_record_failures_total", kind="permanent") == 0

    make_run(flow, status="succeeded", read=10, created=7, updated=1, unchanged=2, tokens_spent=40)
    make_run(flow, status="succeeded", read=5, created=5, tokens_spent=25)
    partial = make_run(flow, status="partial", read=4, created=1, failed=3, tokens_spent=5)
    make_run(flow, status="failed")
    make_record(partial, "C1", outcome="failed", error_kind="permanent")
    make_record(partial, "C2", outcome="failed", error_kind="transient")
    make_record(partial, "C3", outcome="failed", error_kind="transient")
    make_record(partial, "C4", outcome="ok")

    samples = scrape(client)
    assert value(samples, "mlconnector_runs_total", status="succeeded") == 2
    assert value(samples, "mlconnector_runs_total", status="partial") == 1
    assert value(samples, "mlconnector_runs_total", status="failed") == 1
    assert value(samples, "mlconnector_runs_total", status="paused") == 0
    assert value(samples, "mlconnector_records_total", outcome="read") == 19
    assert value(samples, "mlconnector_records_total", outcome="created") == 13
    assert value(samples, "mlconnector_records_total", outcome="updated") == 1
    assert value(samples, "mlconnector_records_total", outcome="unchanged") == 2
    assert value(samples, "mlconnector_records_total", outcome="failed") == 3
    assert value(samples, "mlconnector_run_pipedrive_tokens_total") == 70
    assert value(samples, "mlconnector_record_failures_total", kind="permanent") == 1
    assert value(samples, "mlconnector_record_failures_total", kind="transient") == 2
    assert value(samples, "mlconnector_record_failures_total", kind="auth") == 0


def test_tokens_per_company_come_from_the_limiter_rows_and_name_no_token(client):
    tomorrow = timezone.now() + timedelta(hours=5)
    PipedriveBudget.objects.create(key="company:4242", daily_limit=60_000, daily_remaining=59_000, resets_at=tomorrow)
    digest = "0123456789abcdef" * 2
    PipedriveBudget.objects.create(key=f"token:{digest}", daily_limit=30_000, daily_remaining=100, resets_at=tomorrow)
    # past its reset: the limiter refills it on the next grant, so nothing is spent today
    PipedriveBudget.objects.create(key="company:7", daily_limit=30_000, daily_remaining=5,
                                   resets_at=timezone.now() - timedelta(minutes=1))
    PipedriveBudget.objects.create(key=f"burst:{digest}", window=[1.0, 2.0])  # a burst window, not a company

    response = client.get("/metrics")
    samples = scrape(client)
    assert value(samples, "mlconnector_pipedrive_tokens_remaining", company="company:4242") == 59_000
    assert value(samples, "mlconnector_pipedrive_tokens_spent_today", company="company:4242") == 1_000
    assert value(samples, "mlconnector_pipedrive_tokens_limit", company="company:4242") == 60_000
    assert value(samples, "mlconnector_pipedrive_tokens_remaining", company="token:0123456789ab") == 100
    assert value(samples, "mlconnector_pipedrive_tokens_spent_today", company="token:0123456789ab") == 29_900
    assert value(samples, "mlconnector_pipedrive_tokens_spent_today", company="company:7") == 0
    assert value(samples, "mlconnector_pipedrive_tokens_remaining", company="company:7") == 30_000
    assert digest not in response.content.decode()
    assert "burst:" not in response.content.decode()


def test_queue_depth_and_the_age_of_the_oldest_due_flow(client, flow):
    from django_q.tasks import async_task

    Flow.objects.filter(pk=flow.pk).update(next_run_at=timezone.now() + timedelta(minutes=5))
    samples = scrape(client)
    assert value(samples, "mlconnector_queue_depth", broker="orm") == 0
    assert value(samples, "mlconnector_oldest_due_flow_age_seconds") == 0

    for n in range(3):
        async_task("syncs.tasks.health_task", n)
    Flow.objects.filter(pk=flow.pk).update(next_run_at=timezone.now() - timedelta(minutes=10))
    samples = scrape(client)
    assert value(samples, "mlconnector_queue_depth", broker="orm") == 3
    assert 600 <= value(samples, "mlconnector_oldest_due_flow_age_seconds") < 3600

    # a flow a live worker holds is not waiting; nor is a paused one
    Flow.objects.filter(pk=flow.pk).update(running_since=timezone.now(), heartbeat_at=timezone.now())
    assert value(scrape(client), "mlconnector_oldest_due_flow_age_seconds") == 0
    Flow.objects.filter(pk=flow.pk).update(running_since=None, heartbeat_at=None,
                                           paused_until=timezone.now() + timedelta(hours=1))
    assert value(scrape(client), "mlconnector_oldest_due_flow_age_seconds") == 0


def test_tokens_per_company_with_the_redis_limiter(client, monkeypatch):
    import uuid

    from connectors.pipedrive import limiter
    from connectors.pipedrive.limiter import LimitConfig, RedisStore
    from tests.ops.test_health import TEST_REDIS_URL, redis_available

    if not redis_available():
        pytest.skip(f"Redis is not answering at {TEST_REDIS_URL} (make test starts it when installed)")
    store = RedisStore(TEST_REDIS_URL)
    store.prefix = f"test:metrics:{uuid.uuid4().hex}:"
    monkeypatch.setattr(limiter, "store_default", lambda: store)
    config = LimitConfig(company_key="company:99", burst_key="burst:abc", burst_limit=100, daily_limit=1000)
    try:
        for _ in range(3):
            assert store.try_acquire(config, cost=10, search=False).wait == 0
        samples = scrape(client)
    finally:
        for key in store.redis.scan_iter(store.prefix + "*"):
            store.redis.delete(key)
    assert value(samples, "mlconnector_pipedrive_tokens_spent_today", company="company:99") == 30
    assert value(samples, "mlconnector_pipedrive_tokens_remaining", company="company:99") == 970


def test_metrics_without_a_token_answer_only_local_unforwarded_requests(client, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="::1").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 403
    # a local reverse proxy forwarding an outside request
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.9").status_code == 403


def test_metrics_with_a_token_need_it_even_from_loopback(client, settings):
    settings.METRICS_TOKEN = "scrape-SECRET-7781"
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    denied = client.get("/metrics", HTTP_AUTHORIZATION="Token scrape-SECRET-7781")
    assert denied.status_code == 401 and b"scrape-SECRET" not in denied.content
    samples = scrape(client, REMOTE_ADDR="10.1.2.3", HTTP_AUTHORIZATION="Bearer scrape-SECRET-7781")
    assert ("mlconnector_queue_depth", (("broker", "orm"),)) in samples
