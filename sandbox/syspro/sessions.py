"""e.net sessions: 34-character ids (32 upper-case hex digits + "00"), a sliding idle timeout and a
licence limit on concurrent sessions. Not thread-safe by itself: the simulator calls it under its lock."""

from __future__ import annotations

import secrets
import time
from typing import Any


class Session:
    __slots__ = ("id", "company", "operator", "last_seen")

    def __init__(self, company: str, operator: str):
        self.id = (
            secrets.token_hex(16).upper() + "00"
        )  # the recorded shape: BE36CA1559EBC34985FC2D5EF166D75B00
        self.company = company
        self.operator = operator
        self.last_seen = time.monotonic()


class Sessions:
    def __init__(self, settings: dict[str, Any], stats: dict[str, Any]):
        self.settings = settings
        self.stats = stats
        self.by_id: dict[str, Session] = {}

    def sweep(self) -> None:
        """Drops sessions idle longer than the timeout, counting them as expired."""
        limit = self.settings["idle_timeout_s"]
        now = time.monotonic()
        for sid in [s.id for s in self.by_id.values() if now - s.last_seen > limit]:
            del self.by_id[sid]
            self.stats["sessions_expired"] += 1

    def live(self) -> int:
        self.sweep()
        return len(self.by_id)

    def open(self, company: str, operator: str) -> Session | None:
        """A new session, or None when every licence seat is taken."""
        limit = self.settings["licence_limit"]
        if limit and self.live() >= limit:
            return None
        session = Session(company, operator)
        self.by_id[session.id] = session
        return session

    def touch(self, user_id: str | None) -> Session | None:
        """The live session with this id (trailing padding ignored), its idle clock restarted."""
        self.sweep()
        session = self.by_id.get((user_id or "").strip().upper())
        if session is not None:
            session.last_seen = time.monotonic()
        return session

    def close(self, user_id: str | None) -> bool:
        self.sweep()
        return self.by_id.pop((user_id or "").strip().upper(), None) is not None

    def expire_all(self) -> int:
        count = len(self.by_id)
        self.by_id.clear()
        self.stats["sessions_expired"] += count
        return count
