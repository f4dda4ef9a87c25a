"""Who holds a flow's claim, whether that holder is still alive, and the heartbeat that says so.

A claim records its holder as `host:pid:start` (start: the process's start time in clock ticks from
/proc, so a reused pid is not mistaken for the holder). Two ways a dead holder's claim is noticed:
- on the holder's own host, at once: its process is gone (a SIGKILLed `manage.py sync` or q2 worker);
- from anywhere, after SYNC_CLAIM_STALE_SECONDS without a heartbeat: a live run beats every
  SYNC_HEARTBEAT_SECONDS from a background thread, whatever the run is waiting on (a slow page, a
  rate-limit pause), so only a dead or frozen host goes that long without one.
"""

from __future__ import annotations

import os
import socket
import threading
from functools import cache

from django.conf import settings
from django.db import connection as db_connection
from django.utils import timezone


def _start_ticks(pid: int) -> str:
    """The process's start time (field 22 of /proc/<pid>/stat), or "" where /proc is missing."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read().decode(errors="replace")
    except OSError:
        return ""
    fields = stat.rsplit(")", 1)[-1].split()  # the command name may hold spaces and parentheses
    return fields[19] if len(fields) > 19 else ""


@cache
def _host() -> str:
    return socket.gethostname()


def claim_owner() -> str:
    pid = os.getpid()
    return f"{_host()}:{pid}:{_start_ticks(pid)}"


def _alive(pid: int, start: str) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read().decode(errors="replace")
    except FileNotFoundError:
        return False
    except OSError:  # no /proc here: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    fields = stat.rsplit(")", 1)[-1].split()
    if fields and fields[0] in ("Z", "X"):  # killed, not yet reaped by its parent
        return False
    return not start or (len(fields) > 19 and fields[19] == start)


def owner_dead(owner: str) -> bool:
    """True only when the holder ran on this host and its process is gone; other hosts' claims are
    judged by their heartbeat."""
    parts = (owner or "").rsplit(":", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        return False
    host, pid, start = parts
    if host != _host():
        return False
    return not _alive(int(pid), start)


def heartbeat_interval() -> float:
    return float(getattr(settings, "SYNC_HEARTBEAT_SECONDS", 15))


class Heartbeat:
    """While a run lives, refresh its flow's heartbeat_at every SYNC_HEARTBEAT_SECONDS (only while the
    claim is still this run's)."""

    def __init__(self, *, flow_id: int, token: str):
        self.flow_id, self.token = flow_id, token
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._beat, name=f"heartbeat-flow-{flow_id}", daemon=True)

    def _beat(self) -> None:
        from syncs.models import Flow

        try:
            while not self.stopped.wait(heartbeat_interval()):
                Flow.objects.filter(pk=self.flow_id, claim_token=self.token).update(heartbeat_at=timezone.now())
        finally:
            db_connection.close()

    def __enter__(self) -> Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopped.set()
        self.thread.join(timeout=30)
