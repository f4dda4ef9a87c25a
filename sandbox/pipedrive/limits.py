"""Rate limits as the wire doc §3 describes them: a daily token budget per company and burst limits
per token over a rolling 2-second window (search: 10 requests / 2 s on every plan).

All methods are called with the company lock held.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

BASE_DAILY_TOKENS = 30_000
WINDOW_S = 2.0
SEARCH_BURST = 10
DAY_S = 86_400

# plan -> (daily multiplier, API-token burst, OAuth burst) per 2 s; old plan names included.
PLANS: dict[str, tuple[int, int, int]] = {
    "lite": (1, 20, 80),
    "essential": (1, 20, 80),
    "growth": (2, 40, 160),
    "advanced": (2, 40, 160),
    "professional": (3, 80, 320),
    "premium": (5, 100, 400),
    "power": (5, 100, 400),
    "ultimate": (7, 120, 480),
    "enterprise": (7, 120, 480),
}

RATE_LIMIT_BODY = {
    "success": False,
    "error": "Rate limit exceeded",
    "errorCode": 429,
    "error_info": "Please check developers.pipedrive.com",
    "data": None,
    "additional_data": None,
}


UNLIMITED_BURST = 1_000_000


class Window:
    """Arrival times (monotonic seconds) inside the last WINDOW_S, and the most ever seen at once."""

    __slots__ = ("times", "max_seen")

    def __init__(self) -> None:
        self.times: deque[float] = deque()
        self.max_seen = 0

    def count(self, now: float) -> int:
        times, edge = self.times, now - WINDOW_S
        while times and times[0] <= edge:
            times.popleft()
        return len(times)

    def add(self, now: float) -> None:
        self.times.append(now)
        if len(self.times) > self.max_seen:
            self.max_seen = len(self.times)

    def reset_in(self, now: float) -> int:
        """Whole seconds until the oldest request leaves the window (at least 1)."""
        if not self.times:
            return 1
        return max(1, math.ceil(self.times[0] + WINDOW_S - now))


@dataclass
class Decision:
    ok: bool
    headers: dict[str, str]
    kind: str = ""  # "burst" | "search" | "daily" when refused


@dataclass
class Limiter:
    plan: str = "growth"
    seats: int = 1
    unlimited: bool = False
    topup_tokens: int = 0
    limit_override: int | None = None  # a fixed daily budget (tests), instead of the plan formula
    burst_override: int | None = None  # API-token requests per 2 s (benchmarks), instead of the plan's
    day: int = -1
    tokens_today: int = 0
    tokens_total: int = 0
    accepted: dict[str, Window] = field(default_factory=dict)  # per token key: admitted requests
    searches: dict[str, Window] = field(default_factory=dict)  # per token key: admitted searches
    arrivals: dict[str, Window] = field(default_factory=dict)  # per token key: every request, 429s too

    def daily_limit(self) -> int:
        if self.limit_override is not None:
            return self.limit_override
        multiplier = PLANS[self.plan][0]
        return BASE_DAILY_TOKENS * multiplier * max(1, self.seats) + self.topup_tokens

    def burst_limit(self, oauth: bool) -> int:
        if self.burst_override is not None and not oauth:
            return self.burst_override
        return PLANS[self.plan][2 if oauth else 1]

    def _roll_day(self, wall: float) -> None:
        day = int(wall // DAY_S)
        if day != self.day:
            self.day, self.tokens_today = day, 0

    def admit(self, key: str, oauth: bool, search: bool, cost: int, mono: float, wall: float) -> Decision:
        self._roll_day(wall)
        arrivals = self.arrivals.get(key) or self.arrivals.setdefault(key, Window())
        arrivals.count(mono)
        arrivals.add(mono)
        window = self.accepted.get(key) or self.accepted.setdefault(key, Window())
        in_window = window.count(mono)
        limit = self.burst_limit(oauth)
        search_window = None
        if search:
            search_window = self.searches.get(key) or self.searches.setdefault(key, Window())
            in_search = search_window.count(mono)
        daily = self.daily_limit()
        if self.unlimited:
            window.add(mono)
            if search_window is not None:
                search_window.add(mono)
            self.tokens_today += cost
            self.tokens_total += cost
            return Decision(True, {
                # "unlimited" (benchmarks of our own overhead) advertises a limit no client reaches
                "x-ratelimit-limit": str(UNLIMITED_BURST),
                "x-ratelimit-remaining": str(UNLIMITED_BURST),
                "x-ratelimit-reset": "2",
                "x-daily-ratelimit-token-limit": str(daily),
                "x-daily-ratelimit-token-remaining": str(daily),
            })
        if self.tokens_today + cost > daily:
            headers = self._headers(limit, in_window, window, daily, mono)
            headers["x-daily-ratelimit-token-remaining"] = "0"
            headers["Retry-After"] = str(max(1, math.ceil(DAY_S - wall % DAY_S)))
            return Decision(False, headers, "daily")
        if search_window is not None and in_search >= SEARCH_BURST:
            headers = self._headers(SEARCH_BURST, in_search, search_window, daily, mono)
            headers["Retry-After"] = headers["x-ratelimit-reset"]
            return Decision(False, headers, "search")
        if in_window >= limit:
            headers = self._headers(limit, in_window, window, daily, mono)
            headers["Retry-After"] = headers["x-ratelimit-reset"]
            return Decision(False, headers, "burst")
        window.add(mono)
        self.tokens_today += cost
        self.tokens_total += cost
        if search_window is not None:
            search_window.add(mono)
            return Decision(True, self._headers(SEARCH_BURST, in_search + 1, search_window, daily, mono))
        return Decision(True, self._headers(limit, in_window + 1, window, daily, mono))

    def _headers(self, limit: int, used: int, window: Window, daily: int, mono: float) -> dict[str, str]:
        return {
            "x-ratelimit-limit": str(limit),
            "x-ratelimit-remaining": str(max(0, limit - used)),
            "x-ratelimit-reset": str(window.reset_in(mono)),
            "x-daily-ratelimit-token-limit": str(daily),
            "x-daily-ratelimit-token-remaining": str(max(0, daily - self.tokens_today)),
        }

    def burst_429_headers(self, key: str, oauth: bool, mono: float, wall: float) -> dict[str, str]:
        """Headers of a burst 429 for `key` right now (used for injected 429 faults)."""
        self._roll_day(wall)
        window = self.accepted.get(key) or Window()
        window.count(mono)
        limit = self.burst_limit(oauth)
        headers = self._headers(limit, limit, window, self.daily_limit(), mono)
        headers["x-ratelimit-reset"] = str(max(1, window.reset_in(mono)))
        headers["Retry-After"] = headers["x-ratelimit-reset"]
        return headers

    def window_stats(self) -> dict[str, dict[str, int]]:
        return {
            key: {
                "max_2s_admitted": self.accepted[key].max_seen if key in self.accepted else 0,
                "max_2s_arrivals": self.arrivals[key].max_seen,
                "max_2s_search": self.searches[key].max_seen if key in self.searches else 0,
            }
            for key in self.arrivals
        }
