"""The shared Pipedrive limiter: burst pacing, the daily budget and its reserve, header feedback,
and two real processes hammering one sandbox company without a single 429."""

from __future__ import annotations

import json
import os
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from connectors.base import BudgetExhausted
from connectors.pipedrive.limiter import (
    DatabaseStore,
    LimitConfig,
    Limiter,
    RedisStore,
    burst_limit_for,
    daily_limit_for,
    next_midnight_utc,
)
from connectors.pipedrive.models import PipedriveBudget
from tests.processes import ROOT, child_env

# scripts/test.sh sets TEST_REDIS_URL (starting a Redis when redis-server is installed and none answers).
REDIS_URL = os.environ.get("TEST_REDIS_URL") or os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"


def redis_available() -> bool:
    try:
        import redis

        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5).ping())
    except Exception:
        return False


@pytest.fixture(params=["db", "redis"])
def store(request, db):
    if request.param == "db":
        yield DatabaseStore()
        return
    if not redis_available():
        pytest.skip(f"Redis is not answering at {REDIS_URL} (make test starts it when redis-server is installed)")
    redis_store = RedisStore(REDIS_URL)
    redis_store.prefix = f"test:pipedrive:{uuid.uuid4().hex}:"
    yield redis_store
    for key in redis_store.redis.scan_iter(redis_store.prefix + "*"):
        redis_store.redis.delete(key)


def config(**overrides) -> LimitConfig:
    tag = uuid.uuid4().hex[:12]
    values = {"company_key": f"company:{tag}", "burst_key": f"burst:{tag}", "burst_limit": 5, "daily_limit": 1000,
              "reserve": 0.02}
    values.update(overrides)
    return LimitConfig(**values)


def daily_state_set(store, cfg: LimitConfig, *, remaining: int, resets_at: datetime) -> None:
    if isinstance(store, DatabaseStore):
        PipedriveBudget.objects.filter(key=cfg.company_key).update(daily_remaining=remaining, resets_at=resets_at)
    else:
        store.redis.hset(store.prefix + cfg.company_key,
                         mapping={"remaining": remaining, "resets_at": int(resets_at.timestamp() * 1000)})


def test_plan_table_matches_the_wire_doc():
    assert daily_limit_for("lite", 1) == 30_000
    assert daily_limit_for("growth", 3) == 180_000
    assert daily_limit_for("Professional", 2) == 180_000
    assert daily_limit_for("power", 1) == daily_limit_for("premium", 1) == 150_000
    assert daily_limit_for("enterprise", 2) == 420_000
    assert burst_limit_for("essential", oauth=False) == 20
    assert burst_limit_for("advanced", oauth=True) == 160
    assert burst_limit_for("ultimate", oauth=False) == 120
    assert burst_limit_for("premium", oauth=True) == 400


class Sleeps(list):
    """The limiter's sleep: really sleeps, and records each wait it asked for (no wall-clock asserts)."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)
        time.sleep(seconds)


def test_burst_window_holds_calls_beyond_the_plan_limit(store):
    cfg = config(burst_limit=5, margin_s=0.1)
    sleeps = Sleeps()
    limiter = Limiter(cfg, store=store, sleep=sleeps)
    for _ in range(5):
        limiter.acquire(cost=1)
    assert sleeps == []
    limiter.acquire(cost=1)
    assert sleeps and sum(sleeps) > 1.0  # the 6th call waited for the first to leave the 2 s window


def test_searches_have_their_own_ten_per_two_seconds(store):
    cfg = config(burst_limit=100, search_limit=3)
    sleeps = Sleeps()
    limiter = Limiter(cfg, store=store, sleep=sleeps)
    for _ in range(3):
        limiter.acquire(cost=20, search=True)
    for _ in range(10):
        limiter.acquire(cost=1)  # ordinary calls are not held up by the search window
    assert sleeps == []
    limiter.acquire(cost=20, search=True)
    assert sleeps and sum(sleeps) > 1.0


def test_budget_under_the_reserve_raises_budget_exhausted_with_resets_at(store):
    cfg = config(daily_limit=1000, reserve=0.02)  # reserve: 20 tokens
    limiter = Limiter(cfg, store=store)
    limiter.acquire(cost=1)
    tomorrow = next_midnight_utc(datetime.now(UTC))
    daily_state_set(store, cfg, remaining=24, resets_at=tomorrow)
    with pytest.raises(BudgetExhausted) as caught:
        limiter.acquire(cost=5)
    assert caught.value.resets_at == tomorrow
    assert caught.value.remaining == 24
    assert not caught.value.permanent
    assert "pauses until" in caught.value.message
    limiter.acquire(cost=4)  # 24 - 4 = 20: still exactly at the reserve


def test_budget_refills_after_resets_at_passes(store):
    cfg = config(daily_limit=1000)
    limiter = Limiter(cfg, store=store)
    limiter.acquire(cost=1)
    daily_state_set(store, cfg, remaining=0, resets_at=datetime.now(UTC) - timedelta(seconds=1))
    limiter.acquire(cost=10)
    remaining, limit, resets_at = limiter.budget()
    assert (remaining, limit) == (990, 1000)
    assert resets_at == next_midnight_utc(datetime.now(UTC))


def test_reserve_can_be_absolute_tokens(store):
    cfg = config(daily_limit=1000, reserve=500)
    limiter = Limiter(cfg, store=store)
    limiter.acquire(cost=1)
    daily_state_set(store, cfg, remaining=505, resets_at=next_midnight_utc(datetime.now(UTC)))
    with pytest.raises(BudgetExhausted):
        limiter.acquire(cost=10)


def test_headers_correct_the_daily_budget_and_report_the_real_limit(store):
    seen = []
    cfg = config(daily_limit=30_000)
    limiter = Limiter(cfg, store=store, on_daily_limit=seen.append)
    limiter.acquire(cost=1)
    limiter.observe({"x-daily-ratelimit-token-limit": "60000", "x-daily-ratelimit-token-remaining": "59000"})
    remaining, limit, _ = limiter.budget()
    assert (remaining, limit) == (59_000, 60_000)
    assert seen == [60_000]
    limiter.observe({})  # the headers are optional
    assert limiter.budget()[:2] == (59_000, 60_000)


def test_a_window_pipedrive_says_is_full_pauses_every_worker(store):
    cfg = config(burst_limit=100)
    sleeps = Sleeps()
    first, second = Limiter(cfg, store=store), Limiter(cfg, store=store, sleep=sleeps)
    first.acquire(cost=1)
    first.observe({"x-ratelimit-limit": "100", "x-ratelimit-remaining": "0", "x-ratelimit-reset": "2"})
    second.acquire(cost=1)
    assert sleeps and sum(sleeps) > 0.5  # "2" is rounded up: about 1 s of the window was left


def test_the_burst_limit_pipedrive_announces_wins_over_the_plan_table(store):
    cfg = config(burst_limit=50)
    sleeps = Sleeps()
    limiter = Limiter(cfg, store=store, sleep=sleeps)
    limiter.acquire(cost=1)
    limiter.observe({"x-ratelimit-limit": "3", "x-ratelimit-remaining": "2", "x-ratelimit-reset": "2"})
    for _ in range(2):
        limiter.acquire(cost=1)
    assert sleeps == []  # 3 calls fit under a limit of 3 (50 under the plan table)
    limiter.acquire(cost=1)
    assert sleeps and sum(sleeps) > 1.0  # the 4th waits: the announced limit wins


def test_a_429_pause_is_shared_and_bounded_by_max_wait(store, settings):
    settings.PIPEDRIVE_MAX_WAIT_S = 0.5
    cfg = config()
    limiter = Limiter(cfg, store=store)
    limiter.acquire(cost=1)
    pause = limiter.throttled({"x-ratelimit-reset": "2"}, retry_after=5)
    assert pause == 5
    other = Limiter(cfg, store=store)
    from connectors.base import ConnectorError

    with pytest.raises(ConnectorError) as caught:
        other.acquire(cost=1)
    assert not caught.value.permanent and caught.value.retry_after > 3


def bench_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("pipedrive_burst", ROOT / "bench" / "pipedrive_burst.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("backend", ["db", "redis"])
def test_two_processes_at_full_speed_never_get_429(sandbox, backend):
    # how much of the window they use is a speed figure: `make bench` reports pipedrive_burst_utilization
    if backend == "redis" and not redis_available():
        pytest.skip(f"Redis is not answering at {REDIS_URL} (make test starts it when redis-server is installed)")
    extra = {"PIPEDRIVE_LIMITER_BACKEND": backend}
    if backend == "redis":
        extra["REDIS_URL"] = REDIS_URL
    result = bench_module().measure(sandbox_url=sandbox.url, plan="premium", seats=1, seconds=30, workers=2,
                                    env=child_env(**extra))
    print(json.dumps({k: v for k, v in result.items() if k != "worker_results"}))
    assert all(r["errors"] == 0 and r["calls"] > 0 for r in result["worker_results"]), result["worker_results"]
    assert result["rate_limited"] == 0
    assert result["max_2s_arrivals"] <= result["burst_limit_per_2s"]  # as Pipedrive counts them, 429s included


class CountingStore:
    def __init__(self, inner):
        self.inner, self.calls = inner, []

    def try_acquire(self, cfg, **kwargs):
        self.calls.append(kwargs)
        return self.inner.try_acquire(cfg, **kwargs)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_real_plans_take_one_grant_per_call_so_pacing_stays_exact(store):
    counting = CountingStore(store)
    limiter = Limiter(config(burst_limit=480, daily_limit=100_000), store=counting)
    for _ in range(20):
        limiter.acquire(cost=5)
    assert len(counting.calls) == 20 and {c["slots"] for c in counting.calls} == {1}


def test_a_limit_far_above_every_plan_leases_grants_and_still_charges_the_budget(store):
    counting = CountingStore(store)
    cfg = config(burst_limit=1_000_000, daily_limit=1_000_000)
    limiter = Limiter(cfg, store=counting)
    for _ in range(64):
        limiter.acquire(cost=5)
    assert len(counting.calls) == 2  # two leases of 32 grants
    remaining, _limit, _resets = store.budget(cfg)
    assert remaining == 1_000_000 - 64 * 5


def test_a_lease_near_the_reserve_falls_back_to_single_grants(store):
    cfg = config(burst_limit=1_000_000, daily_limit=10_000, reserve=0.02)
    limiter = Limiter(cfg, store=store)
    limiter.acquire(cost=5)
    daily_state_set(store, cfg, remaining=230, resets_at=datetime.now(UTC) + timedelta(hours=1))
    limiter._lease_left = 0
    limiter.acquire(cost=5)  # 32 × 5 would cross the 200-token reserve; one grant does not
    remaining, _limit, _resets = store.budget(cfg)
    assert remaining == 225


def test_the_daily_reset_is_midnight_by_pipedrives_clock(store):
    from email.utils import format_datetime

    cfg = config(daily_limit=1000)
    limiter = Limiter(cfg, store=store)
    limiter.acquire(cost=1)
    now = datetime.now(UTC)
    server_now = datetime(now.year, now.month, now.day, 23, 59, 0, tzinfo=UTC)  # Pipedrive's clock: 60 s to go
    limiter.observe({"Date": format_datetime(server_now, usegmt=True)})
    _remaining, _limit, resets_at = limiter.budget()
    assert abs((resets_at - (now + timedelta(seconds=60))).total_seconds()) < 5
    limiter.observe({})  # without a Date header what we know stands
    assert limiter.budget()[2] == resets_at


def test_burst_usage_reports_the_grants_in_the_window_and_the_announced_limit(store):
    cfg = config(burst_limit=50, margin_s=600)  # the window outlasts any slowness of the box
    limiter = Limiter(cfg, store=store, sleep=Sleeps())
    assert limiter.burst_usage() == (0, 50)  # nothing granted yet: the plan's limit
    for _ in range(3):
        limiter.acquire(cost=1)
    limiter.observe({"x-ratelimit-limit": "40"})
    assert limiter.burst_usage() == (3, 40)
