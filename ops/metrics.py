"""/metrics in Prometheus text format. Every value is computed from the database (and Redis) at scrape
time by one custom collector, so any number of web processes report the same numbers without shared
memory. Protected: a bearer token (METRICS_TOKEN), or loopback only when no token is set."""

from __future__ import annotations

import hmac
import ipaddress
import logging
import time

from django.conf import settings
from django.http import HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from connectors.pipedrive import limiter
from ops import selectors
from ops.broker import broker_name, queue_depth
from syncs.models import SyncRun

log = logging.getLogger(__name__)
PREFIX = "mlconnector"


def limiter_budgets() -> list[dict]:
    """Company budgets from wherever the shared limiter keeps them."""
    store = limiter.store_default()
    if not isinstance(store, limiter.RedisStore):
        return selectors.pipedrive_budgets()
    now_ms = int(time.time() * 1000)
    result = []
    for prefix in selectors.COMPANY_PREFIXES:
        for key in store.redis.scan_iter(match=store.prefix + prefix + "*", count=500):
            values = store.redis.hgetall(key)
            if b"limit" not in values:
                continue
            limit = int(values[b"limit"])
            remaining = int(values.get(b"remaining", limit))
            if int(values.get(b"resets_at", 0)) <= now_ms:
                remaining = limit
            company = selectors.company_label(key.decode()[len(store.prefix):])
            result.append({"company": company, "limit": limit, "remaining": remaining,
                           "spent": max(0, limit - remaining)})
    return result


class ConnectorCollector:
    """Reads aggregates at scrape time; describe() is empty so registering it runs no query."""

    def describe(self):
        return []

    def collect(self):
        by_status = selectors.runs_by_status()
        runs = CounterMetricFamily(f"{PREFIX}_runs", "Sync runs by status.", labels=["status"])
        records = CounterMetricFamily(f"{PREFIX}_records", "Records handled by sync runs, by outcome "
                                      "(read counts every record the ERP returned).", labels=["outcome"])
        tokens = CounterMetricFamily(f"{PREFIX}_run_pipedrive_tokens", "Pipedrive tokens spent by sync runs.")
        for status in SyncRun.Status.values:
            runs.add_metric([status], by_status.get(status, {}).get("runs", 0))
        for outcome in selectors.RECORD_OUTCOMES:
            records.add_metric([outcome], sum(row[outcome] for row in by_status.values()))
        tokens.add_metric([], sum(row["tokens"] for row in by_status.values()))
        yield from (runs, records, tokens)

        failures = CounterMetricFamily(f"{PREFIX}_record_failures", "Failed record attempts by kind.",
                                       labels=["kind"])
        by_kind = selectors.record_failures_by_kind()
        for kind in sorted({"permanent", "transient", "auth", *by_kind}):
            failures.add_metric([kind], by_kind.get(kind, 0))
        yield failures

        spent = GaugeMetricFamily(f"{PREFIX}_pipedrive_tokens_spent_today",
                                  "Pipedrive tokens spent since the company's last daily reset.", labels=["company"])
        remaining = GaugeMetricFamily(f"{PREFIX}_pipedrive_tokens_remaining",
                                      "Pipedrive tokens left in the company's daily budget.", labels=["company"])
        limit = GaugeMetricFamily(f"{PREFIX}_pipedrive_tokens_limit",
                                  "The company's daily Pipedrive token budget.", labels=["company"])
        try:
            budgets = limiter_budgets()
        except Exception as exc:  # a Redis limiter that is down must not take the other metrics with it
            log.warning("metrics: limiter state unreadable: %s", type(exc).__name__)
            budgets = []
        for row in sorted(budgets, key=lambda r: r["company"]):
            spent.add_metric([row["company"]], row["spent"])
            remaining.add_metric([row["company"]], row["remaining"])
            limit.add_metric([row["company"]], row["limit"])
        yield from (spent, remaining, limit)

        depth = GaugeMetricFamily(f"{PREFIX}_queue_depth", "Tasks waiting in the django-q2 broker.",
                                  labels=["broker"])
        try:
            depth.add_metric([broker_name()], queue_depth())
        except Exception as exc:
            log.warning("metrics: broker unreadable: %s", type(exc).__name__)
        yield depth
        yield GaugeMetricFamily(f"{PREFIX}_oldest_due_flow_age_seconds",
                                "How long the longest-waiting due flow has been due (0 when none is).",
                                value=selectors.oldest_due_age_seconds())


registry = CollectorRegistry(auto_describe=False)
registry.register(ConnectorCollector())


def _loopback(request) -> bool:
    # Behind a proxy every request comes from loopback: a forwarded one is not local.
    if request.META.get("HTTP_X_FORWARDED_FOR") or request.META.get("HTTP_FORWARDED"):
        return False
    try:
        return ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        return False


def allowed(request) -> bool:
    token = getattr(settings, "METRICS_TOKEN", "")
    if not token:
        return _loopback(request)
    scheme, _, given = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


@never_cache
@require_GET
def metrics(request):
    if not allowed(request):
        response = HttpResponse("Metrics need a bearer token (METRICS_TOKEN), or a local request when none is set.\n",
                                status=401 if getattr(settings, "METRICS_TOKEN", "") else 403,
                                content_type="text/plain")
        if response.status_code == 401:
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
