"""Service Layer sessions: B1SESSION ids with a sliding idle timeout (settings["session_timeout_s"])."""

from __future__ import annotations

import secrets
import time
from typing import Any


class Session:
    __slots__ = ("id", "company", "user", "last_seen")

    def __init__(self, company: str, user: str):
        # the shape of a real SessionId: ac79876e-1e72-11ed-8000-000c299130e0
        self.id = f"{secrets.token_hex(4)}-{secrets.token_hex(2)}-11ef-8000-{secrets.token_hex(6)}"
        self.company = company
        self.user = user
        self.last_seen = time.monotonic()


class Sessions:
    """Not thread-safe by itself: the simulator calls it under its lock."""

    def __init__(self, settings: dict[str, Any]):
        self.settings = settings
        self.by_id: dict[str, Session] = {}

    def open(self, company: str, user: str) -> Session:
        session = Session(company, user)
        self.by_id[session.id] = session
        return session

    def touch(self, sid: str | None) -> Session | None:
        """The live session with this id, its idle clock restarted; None if unknown or expired."""
        session = self.by_id.get(sid) if sid else None
        now = time.monotonic()
        if session is not None and now - session.last_seen > self.settings["session_timeout_s"]:
            del self.by_id[session.id]
            session = None
        if session is not None:
            session.last_seen = now  # the timeout slides
        return session

    def close(self, sid: str) -> None:
        self.by_id.pop(sid, None)

    def live(self) -> int:
        """Drops expired sessions; the number still valid."""
        limit = self.settings["session_timeout_s"]
        now = time.monotonic()
        for sid in [s.id for s in self.by_id.values() if now - s.last_seen > limit]:
            del self.by_id[sid]
        return len(self.by_id)

    def expire_all(self) -> int:
        count = len(self.by_id)
        self.by_id.clear()
        return count


def cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name and value:
            return value
    return None
