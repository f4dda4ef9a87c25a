"""One rate limiter per Pipedrive company, shared by every process and host.

Two layers, as Pipedrive enforces them (wire doc §3):
- burst: a rolling 2-second window per token (API token or OAuth app), plus 10 searches / 2 s;
- daily budget: 30,000 tokens × plan multiplier × seats per company, reset at midnight, each call
  costing its operation's `x-token-cost`.

State lives in the database (`PipedriveBudget` rows, locked with `select_for_update` in short
transactions) or, with PIPEDRIVE_LIMITER_BACKEND=redis, in Redis (one Lua script per grant). The
response headers correct what we believe: the daily remaining/limit and the burst limit and reset.
The daily headers are undocumented and may be missing (wire doc §3): then the plan's budget, counted
here, stands. The daily reset is midnight UTC by Pipedrive's clock (its `Date` header), translated
to ours, so a skewed server clock moves the pause with it.
Call the client outside long `transaction.atomic()` blocks: the limiter's row locks last until the
outermost transaction commits.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from django.conf import settings
from django.db import connection as db_connection
from django.db import transaction
from django.db.models.expressions import RawSQL

from connectors.base import BudgetExhausted, ConnectorError
from connectors.pipedrive.models import PipedriveBudget

log = logging.getLogger("connectors.pipedrive.limiter")

BASE_DAILY_TOKENS = 30_000
WINDOW_S = 2.0
SEARCH_BURST = 10
OAUTH_BURST_FACTOR = 4
# Current plan names and the old ones they replaced (wire doc §3).
PLAN_ALIASES = {"essential": "lite", "advanced": "growth", "power": "premium", "enterprise": "ultimate"}
PLAN_MULTIPLIER = {"lite": 1, "growth": 2, "professional": 3, "premium": 5, "ultimate": 7}
PLAN_BURST = {"lite": 20, "growth": 40, "professional": 80, "premium": 100, "ultimate": 120}


def plan_normalize(plan: str | None) -> str:
    name = str(plan or "").strip().lower()
    name = PLAN_ALIASES.get(name, name)
    if name not in PLAN_MULTIPLIER:
        if name:
            log.warning("Unknown Pipedrive plan %r; assuming Lite until the headers say otherwise", plan)
        return "lite"
    return name


def daily_limit_for(plan: str | None, seats: int | None) -> int:
    return BASE_DAILY_TOKENS * PLAN_MULTIPLIER[plan_normalize(plan)] * max(1, int(seats or 1))


def burst_limit_for(plan: str | None, *, oauth: bool) -> int:
    return PLAN_BURST[plan_normalize(plan)] * (OAUTH_BURST_FACTOR if oauth else 1)


def digest(value: str) -> str:
    """A stable, non-reversible name for a secret (limiter keys never hold a raw token)."""
    return hashlib.sha256(value.encode()).hexdigest()[:32]


def next_midnight_utc(now: datetime) -> datetime:
    return datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1)


def header_int(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    if value is None or value == "":
        return None
    try:
        return int(float(value))
    except ValueError:
        return None


def reset_from_date(headers: Mapping[str, str], now: datetime | None = None) -> datetime | None:
    """The server's next midnight UTC, on our clock, from its `Date` header (None without one)."""
    value = headers.get("Date") or headers.get("date")
    if not value:
        return None
    try:
        server_now = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if server_now.tzinfo is None:
        server_now = server_now.replace(tzinfo=UTC)
    return (now or datetime.now(UTC)) + (next_midnight_utc(server_now.astimezone(UTC)) - server_now)


def header_float(headers: Mapping[str, str], name: str) -> float | None:
    value = headers.get(name)
    try:
        return float(value) if value not in (None, "") else None
    except ValueError:
        return None


LEASE_MIN_LIMIT = 1000  # grants per window; above every real plan (the largest is 480 per 2 s)
LEASE_MAX = 32
LEASE_TTL_S = 0.25
DAILY_WRITE_INTERVAL_S = 1.0
RESET_SLACK_S = 5.0  # Date has whole seconds and the network adds some: smaller moves are noise


@dataclass(frozen=True)
class LimitConfig:
    """What one client is allowed to do: keys of the shared state and the configured limits."""

    company_key: str  # "company:<id>" or "token:<digest>": the daily budget
    burst_key: str  # "burst:<digest>": the 2-second window of one token
    burst_limit: int
    daily_limit: int
    reserve: float = 0.02  # <= 1: a fraction of the daily limit; > 1: tokens
    search_limit: int = SEARCH_BURST
    window_s: float = WINDOW_S
    margin_s: float = 0.1  # network transit: a grant counts for window + margin

    @property
    def search_key(self) -> str:
        return "search:" + self.burst_key.partition(":")[2]

    @property
    def span(self) -> float:
        return self.window_s + self.margin_s

    def reserve_tokens(self, daily_limit: int) -> int:
        if self.reserve <= 1:
            return int(daily_limit * max(0.0, self.reserve))
        return int(self.reserve)


@dataclass
class Decision:
    wait: float = 0.0  # seconds until a slot frees; 0 = granted
    blocked: bool = False  # the wait comes from a server-imposed block (429/403), not our pacing
    exhausted: bool = False
    remaining: int | None = None
    limit: int | None = None
    resets_at: datetime | None = None


class DatabaseStore:
    """Limiter state in PipedriveBudget rows. Works on PostgreSQL (row locks, the database clock so
    every host agrees on time) and SQLite (writes are serialized; the local clock)."""

    def __init__(self) -> None:
        self._known: set[str] = set()
        self._offset = 0.0  # database clock minus local clock

    def _now(self) -> float:
        return time.time() + self._offset

    @staticmethod
    @contextmanager
    def _transaction():
        """A short transaction whose commit does not wait for the disk (PostgreSQL): limiter state
        is soft, the headers correct it, and an fsync per grant would cap us near 300 grants/s."""
        with transaction.atomic():
            if db_connection.vendor == "postgresql":
                with db_connection.cursor() as cursor:
                    cursor.execute("SET LOCAL synchronous_commit TO OFF")
            yield

    def _ensure(self, config: LimitConfig, keys: list[str]) -> None:
        missing = [key for key in keys if key not in self._known]
        if not missing:
            return
        now = datetime.now(UTC)
        rows = []
        for key in missing:
            if key == config.company_key:
                rows.append(PipedriveBudget(key=key, daily_limit=config.daily_limit,
                                            daily_remaining=config.daily_limit,
                                            resets_at=next_midnight_utc(now)))
            else:
                rows.append(PipedriveBudget(key=key))
        PipedriveBudget.objects.bulk_create(rows, ignore_conflicts=True)
        self._known.update(missing)

    def _locked(self, keys: list[str]) -> tuple[dict[str, PipedriveBudget], float]:
        queryset = PipedriveBudget.objects.select_for_update().filter(key__in=keys).order_by("key")
        if db_connection.vendor == "postgresql":
            queryset = queryset.annotate(db_epoch=RawSQL("EXTRACT(EPOCH FROM clock_timestamp())", ()))
            rows = list(queryset)
            if rows:
                self._offset = float(rows[0].db_epoch) - time.time()
        else:
            rows = list(queryset)
        return {row.key: row for row in rows}, self._now()

    def try_acquire(self, config: LimitConfig, *, cost: int, search: bool, slots: int = 1) -> Decision:
        keys = sorted({config.company_key, config.burst_key} | ({config.search_key} if search else set()))
        for _ in range(3):
            self._ensure(config, keys)
            with self._transaction():
                rows, now = self._locked(keys)
                if len(rows) == len(keys):
                    return self._decide(config, rows, now, cost=cost, search=search, slots=slots)
            self._known.difference_update(keys)  # rows were deleted under us: create them again
        raise ConnectorError("Pipedrive rate limiter state could not be created.", permanent=False)

    def _decide(self, config: LimitConfig, rows: dict[str, PipedriveBudget], now: float, *, cost: int,
                search: bool, slots: int = 1) -> Decision:
        company = rows[config.company_key]
        now_dt = datetime.fromtimestamp(now, UTC)
        dirty: set[PipedriveBudget] = set()
        if company.daily_limit is None:
            company.daily_limit = config.daily_limit
            dirty.add(company)
        if company.resets_at is None or now_dt >= company.resets_at or company.daily_remaining is None:
            company.daily_remaining = company.daily_limit
            company.resets_at = next_midnight_utc(now_dt)
            dirty.add(company)
        decision = Decision(remaining=company.daily_remaining, limit=company.daily_limit,
                            resets_at=company.resets_at)
        if company.daily_remaining - cost < config.reserve_tokens(company.daily_limit):
            decision.exhausted = True
        else:
            windows = [(rows[config.burst_key], rows[config.burst_key].burst_limit or config.burst_limit)]
            if search:
                windows.append((rows[config.search_key], config.search_limit))
            for row, limit in windows:
                recent = sorted(t for t in row.window if t > now - config.span)
                if len(recent) != len(row.window):
                    row.window = recent
                    dirty.add(row)
                if len(recent) + slots > limit:  # wait until enough grants leave the window
                    oldest = recent[min(len(recent) - 1, len(recent) + slots - limit - 1)]
                    decision.wait = max(decision.wait, oldest + config.span - now)
                if row.blocked_until and row.blocked_until > now and row.blocked_until - now > decision.wait:
                    decision.wait = row.blocked_until - now
                    decision.blocked = True
            if decision.wait <= 0:
                decision.wait = 0.0
                for row, _limit in windows:
                    row.window = [*row.window, *([round(now, 4)] * slots)]
                    dirty.add(row)
                company.daily_remaining -= cost
                decision.remaining = company.daily_remaining
                dirty.add(company)
        for row in dirty:  # one plain UPDATE each: bulk_update's CASE expressions cost more than they save
            PipedriveBudget.objects.filter(pk=row.pk).update(
                daily_limit=row.daily_limit, daily_remaining=row.daily_remaining, resets_at=row.resets_at,
                window=row.window)
        return decision

    def observe_daily(self, config: LimitConfig, *, remaining: int | None, limit: int | None) -> None:
        changes: dict[str, Any] = {}
        if remaining is not None:
            changes["daily_remaining"] = max(0, remaining)
        if limit is not None:
            changes["daily_limit"] = limit
        if changes:
            with self._transaction():
                PipedriveBudget.objects.filter(key=config.company_key).update(**changes)

    def observe_burst_limit(self, config: LimitConfig, limit: int) -> None:
        PipedriveBudget.objects.filter(key=config.burst_key).update(burst_limit=limit)

    def observe_reset(self, config: LimitConfig, resets_at: datetime) -> None:
        with self._transaction():
            PipedriveBudget.objects.filter(key=config.company_key).update(resets_at=resets_at)

    def block(self, config: LimitConfig, *, seconds: float, search: bool = False) -> None:
        key = config.search_key if search else config.burst_key
        until = self._now() + seconds
        with self._transaction():
            row = PipedriveBudget.objects.select_for_update().filter(key=key).first()
            if row is None:
                PipedriveBudget.objects.create(key=key, blocked_until=until)
                self._known.add(key)
            elif (row.blocked_until or 0) < until:
                row.blocked_until = until
                row.save(update_fields=["blocked_until", "updated"])

    def budget(self, config: LimitConfig) -> tuple[int, int, datetime]:
        row = PipedriveBudget.objects.filter(key=config.company_key).first()
        now = datetime.now(UTC)
        if row is None or row.daily_limit is None:
            return config.daily_limit, config.daily_limit, next_midnight_utc(now)
        if row.resets_at is None or now >= row.resets_at or row.daily_remaining is None:
            return row.daily_limit, row.daily_limit, next_midnight_utc(now)
        return row.daily_remaining, row.daily_limit, row.resets_at

    def burst_usage(self, config: LimitConfig) -> tuple[int, int]:
        """(grants in the current 2-second window, the burst limit) of this token."""
        row = PipedriveBudget.objects.filter(key=config.burst_key).first()
        if row is None:
            return 0, config.burst_limit
        since = time.time() + self._offset - config.span
        return sum(1 for t in row.window if t > since), row.burst_limit or config.burst_limit


# KEYS: 1 daily hash, 2 burst zset, 3 burst meta hash, 4 search zset, 5 search meta hash
# ARGV: 1 cost, 2 reserve, 3 configured daily limit, 4 span ms, 5 burst limit, 6 search limit,
#       7 search (0/1), 8 unique member suffix, 9 slots (grants taken at once)
# Returns {status (0 granted, 1 wait, 2 exhausted), wait ms, blocked (0/1), remaining, limit, resets ms}
ACQUIRE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cost = tonumber(ARGV[1])
local limit = tonumber(redis.call('HGET', KEYS[1], 'limit') or ARGV[3])
local remaining = redis.call('HGET', KEYS[1], 'remaining')
local resets = tonumber(redis.call('HGET', KEYS[1], 'resets_at') or '0')
if remaining == false or now >= resets then
  remaining = limit
  resets = (math.floor(now / 86400000) + 1) * 86400000
  redis.call('HSET', KEYS[1], 'limit', limit, 'remaining', remaining, 'resets_at', resets)
  redis.call('PEXPIREAT', KEYS[1], resets + 86400000)
end
remaining = tonumber(remaining)
local reserve = tonumber(ARGV[2])
if reserve <= 1 then reserve = math.floor(limit * reserve) end
if remaining - cost < reserve then return {2, 0, 0, remaining, limit, resets} end
local span = tonumber(ARGV[4])
local wait = 0
local blocked = 0
local windows = {{KEYS[2], KEYS[3], tonumber(ARGV[5])}}
if ARGV[7] == '1' then windows[2] = {KEYS[4], KEYS[5], tonumber(ARGV[6])} end
for _, w in ipairs(windows) do
  redis.call('ZREMRANGEBYSCORE', w[1], '-inf', now - span)
  local lim = tonumber(redis.call('HGET', w[2], 'limit') or w[3])
  if w[1] == KEYS[4] then lim = w[3] end
  local n = redis.call('ZCARD', w[1])
  local slots = tonumber(ARGV[9] or '1')
  if n + slots > lim then
    local idx = math.min(n - 1, n + slots - lim - 1)
    local oldest = redis.call('ZRANGE', w[1], idx, idx, 'WITHSCORES')
    wait = math.max(wait, tonumber(oldest[2]) + span - now)
  end
  local until_ms = tonumber(redis.call('HGET', w[2], 'blocked_until') or '0')
  if until_ms - now > wait then wait = until_ms - now; blocked = 1 end
end
if wait > 0 then return {1, wait, blocked, remaining, limit, resets} end
for _, w in ipairs(windows) do
  for i = 1, tonumber(ARGV[9] or '1') do
    redis.call('ZADD', w[1], now, now .. ':' .. ARGV[8] .. ':' .. i)
  end
  redis.call('PEXPIRE', w[1], span * 2)
end
remaining = redis.call('HINCRBY', KEYS[1], 'remaining', -cost)
return {0, 0, 0, remaining, limit, resets}
"""

# KEYS: 1 meta hash; ARGV: 1 seconds (float)
BLOCK_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local until_ms = now + math.floor(tonumber(ARGV[1]) * 1000)
local current = tonumber(redis.call('HGET', KEYS[1], 'blocked_until') or '0')
if until_ms > current then redis.call('HSET', KEYS[1], 'blocked_until', until_ms) end
redis.call('PEXPIRE', KEYS[1], 7 * 86400000)
return until_ms
"""


class RedisStore:
    """Limiter state in Redis: one Lua script per grant, Redis's clock for every host."""

    prefix = "pipedrive:limiter:"

    def __init__(self, url: str) -> None:
        import redis

        self.redis = redis.Redis.from_url(url)
        self._acquire = self.redis.register_script(ACQUIRE_LUA)
        self._block = self.redis.register_script(BLOCK_LUA)

    def _keys(self, config: LimitConfig) -> list[str]:
        p = self.prefix
        return [p + config.company_key, p + config.burst_key + ":w", p + config.burst_key + ":m",
                p + config.search_key + ":w", p + config.search_key + ":m"]

    def try_acquire(self, config: LimitConfig, *, cost: int, search: bool, slots: int = 1) -> Decision:
        try:
            status, wait_ms, blocked, remaining, limit, resets = self._acquire(
                keys=self._keys(config),
                args=[cost, config.reserve, config.daily_limit, int(config.span * 1000), config.burst_limit,
                      config.search_limit, "1" if search else "0", secrets.token_hex(6), slots],
            )
        except Exception as exc:  # redis.RedisError and connection failures
            raise ConnectorError("The shared Pipedrive rate limiter (Redis) is unreachable.",
                                 permanent=False) from exc
        return Decision(wait=int(wait_ms) / 1000, blocked=bool(blocked), exhausted=int(status) == 2,
                        remaining=int(remaining), limit=int(limit),
                        resets_at=datetime.fromtimestamp(int(resets) / 1000, UTC))

    def observe_daily(self, config: LimitConfig, *, remaining: int | None, limit: int | None) -> None:
        mapping: dict[str, int] = {}
        if remaining is not None:
            mapping["remaining"] = max(0, remaining)
        if limit is not None:
            mapping["limit"] = limit
        if mapping and self.redis.exists(self.prefix + config.company_key):
            self.redis.hset(self.prefix + config.company_key, mapping=mapping)

    def observe_burst_limit(self, config: LimitConfig, limit: int) -> None:
        self.redis.hset(self.prefix + config.burst_key + ":m", "limit", limit)

    def observe_reset(self, config: LimitConfig, resets_at: datetime) -> None:
        if self.redis.exists(self.prefix + config.company_key):
            self.redis.hset(self.prefix + config.company_key, "resets_at", int(resets_at.timestamp() * 1000))

    def block(self, config: LimitConfig, *, seconds: float, search: bool = False) -> None:
        key = (config.search_key if search else config.burst_key) + ":m"
        self._block(keys=[self.prefix + key], args=[seconds])

    def budget(self, config: LimitConfig) -> tuple[int, int, datetime]:
        values = self.redis.hgetall(self.prefix + config.company_key)
        now = datetime.now(UTC)
        if not values:
            return config.daily_limit, config.daily_limit, next_midnight_utc(now)
        limit = int(values[b"limit"])
        resets_at = datetime.fromtimestamp(int(values[b"resets_at"]) / 1000, UTC)
        if now >= resets_at:
            return limit, limit, next_midnight_utc(now)
        return int(values[b"remaining"]), limit, resets_at

    def burst_usage(self, config: LimitConfig) -> tuple[int, int]:
        key = self.prefix + config.burst_key
        since_ms = int((time.time() - config.span) * 1000)
        used = int(self.redis.zcount(key + ":w", since_ms, "+inf"))
        limit = self.redis.hget(key + ":m", "limit")
        return used, int(limit) if limit else config.burst_limit


_stores: dict[str, Any] = {}


def store_default() -> DatabaseStore | RedisStore:
    backend = getattr(settings, "PIPEDRIVE_LIMITER_BACKEND", None) or os.environ.get("PIPEDRIVE_LIMITER_BACKEND") or "db"
    if backend == "redis":
        url = getattr(settings, "REDIS_URL", "")
        if not url:
            raise ConnectorError("PIPEDRIVE_LIMITER_BACKEND=redis needs REDIS_URL.", permanent=True)
        if url not in _stores:
            _stores[url] = RedisStore(url)
        return _stores[url]
    if backend != "db":
        raise ConnectorError(f"Unknown PIPEDRIVE_LIMITER_BACKEND {backend!r} (use db or redis).", permanent=True)
    if "db" not in _stores:
        _stores["db"] = DatabaseStore()
    return _stores["db"]


class Limiter:
    """Paces one client's calls against its company's shared limits.

    `acquire()` before each call: it sleeps for a burst slot and raises BudgetExhausted when the
    daily budget would go under the reserve. `observe()` after each response feeds the headers back.
    """

    def __init__(self, config: LimitConfig, *, store: DatabaseStore | RedisStore | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 on_daily_limit: Callable[[int], None] | None = None) -> None:
        self.config = config
        self.store = store or store_default()
        self.sleep = sleep
        self.on_daily_limit = on_daily_limit
        self.max_wait = float(getattr(settings, "PIPEDRIVE_MAX_WAIT_S", 120))
        self._burst_limit_seen: int | None = None
        self._daily_limit_seen: int | None = None
        self._resets_at_seen: datetime | None = None
        self.waited = 0.0  # seconds spent waiting for slots (for benchmarks and logs)
        self._lease_lock = threading.Lock()
        self._lease_left = 0
        self._lease_until = 0.0
        self._daily_written_at = 0.0

    def _lease_size(self, search: bool) -> int:
        """Grants to take per round trip: 1 under every real plan (exact pacing); more only when the
        burst limit is far above what one shared-state round trip per call could serve."""
        limit = self._burst_limit_seen or self.config.burst_limit
        if search or limit < LEASE_MIN_LIMIT:
            return 1
        return max(1, min(LEASE_MAX, limit // 100))

    def _lease_take(self) -> bool:
        with self._lease_lock:
            if self._lease_left > 0 and time.monotonic() < self._lease_until:
                self._lease_left -= 1
                return True
            return False

    def acquire(self, *, cost: int, search: bool = False) -> None:
        if not search and self._lease_take():
            return
        waited = 0.0
        slots = self._lease_size(search)
        while True:
            decision = self.store.try_acquire(self.config, cost=cost * slots, search=search, slots=slots)
            if decision.exhausted and slots > 1:
                slots = 1  # near the reserve: back to exact, one grant at a time
                continue
            if decision.exhausted:
                raise self.exhausted(decision.remaining, decision.limit, decision.resets_at)
            if decision.wait <= 0:
                self.waited += waited
                if slots > 1:
                    with self._lease_lock:
                        self._lease_left, self._lease_until = slots - 1, time.monotonic() + LEASE_TTL_S
                return
            wait = decision.wait
            if decision.blocked:
                wait *= 1 + random.uniform(0, 0.2)  # spread the wake-ups after a server-imposed pause
            if waited + wait > self.max_wait:
                raise ConnectorError(
                    f"Pipedrive asked us to slow down; calls resume in about {round(decision.wait)} s.",
                    permanent=False, retry_after=decision.wait, status=429, code="rate_limited")
            self.sleep(wait)
            waited += wait

    def exhausted(self, remaining: int | None, limit: int | None, resets_at: datetime | None) -> BudgetExhausted:
        resets_at = resets_at or next_midnight_utc(datetime.now(UTC))
        reserve = self.config.reserve_tokens(limit or self.config.daily_limit)
        return BudgetExhausted(
            f"Pipedrive's daily API budget for this company is used up ({remaining if remaining is not None else 0:,} "
            f"of {limit or self.config.daily_limit:,} tokens left, {reserve:,} kept in reserve). "
            f"Syncing pauses until {resets_at:%Y-%m-%d %H:%M} UTC.",
            resets_at=resets_at, remaining=remaining,
        )

    def observe(self, headers: Mapping[str, str], *, search: bool = False) -> None:
        """Feed a response's rate-limit headers back into the shared state (all are optional)."""
        daily_remaining = header_int(headers, "x-daily-ratelimit-token-remaining")
        daily_limit = header_int(headers, "x-daily-ratelimit-token-limit")
        if daily_limit is not None and daily_limit == self._daily_limit_seen:
            daily_limit = None  # already stored
        now = time.monotonic()
        plenty = daily_remaining is not None and daily_remaining > 3 * self.config.reserve_tokens(
            self._daily_limit_seen or self.config.daily_limit) + 1000
        if daily_limit is not None or not plenty or now - self._daily_written_at >= DAILY_WRITE_INTERVAL_S:
            # far from the reserve, the server's count is written back at most once a second per process
            self.store.observe_daily(self.config, remaining=daily_remaining, limit=daily_limit)
            self._daily_written_at = now
        if daily_limit is not None:
            self._daily_limit_seen = daily_limit
            if daily_limit != self.config.daily_limit and self.on_daily_limit:
                self.on_daily_limit(daily_limit)
        resets_at = reset_from_date(headers)
        if resets_at is not None and (self._resets_at_seen is None
                                      or abs((resets_at - self._resets_at_seen).total_seconds()) > RESET_SLACK_S):
            self.store.observe_reset(self.config, resets_at)  # once per process and day (or clock change)
            self._resets_at_seen = resets_at
        burst_limit = header_int(headers, "x-ratelimit-limit")
        if not search and burst_limit and burst_limit != self._burst_limit_seen:
            self.store.observe_burst_limit(self.config, burst_limit)  # once per process and change
            self._burst_limit_seen = burst_limit
        if header_int(headers, "x-ratelimit-remaining") == 0:
            reset = header_float(headers, "x-ratelimit-reset")
            if reset and reset.is_integer():
                reset -= 1  # whole seconds rounded up: the window frees within (reset - 1, reset]
            if reset and reset > 0:
                self.store.block(self.config, seconds=min(reset, self.config.window_s), search=search)

    def throttled(self, headers: Mapping[str, str], retry_after: float | None, *, search: bool = False) -> float:
        """A burst 429: make every worker on this token wait; returns the pause in seconds."""
        reset = header_float(headers, "x-ratelimit-reset")
        pause = max(retry_after or 0.0, reset or 0.0) or self.config.window_s
        self.store.block(self.config, seconds=pause, search=search)
        return pause

    def block(self, seconds: float) -> None:
        self.store.block(self.config, seconds=seconds)

    def budget(self) -> tuple[int, int, datetime]:
        return self.store.budget(self.config)

    def burst_usage(self) -> tuple[int, int]:
        """(calls granted in the current burst window, the burst limit), for the portal's gauge."""
        return self.store.burst_usage(self.config)
