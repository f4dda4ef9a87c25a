"""How a run stops early: paused (budget), aborted (a connection refused or unreachable), and the
marker for records held back rather than failed."""

from __future__ import annotations

from datetime import datetime

from connectors.base import ConnectorError


class RunPaused(Exception):
    def __init__(self, resets_at: datetime, message: str):
        super().__init__(message)
        self.resets_at = resets_at


class RunAborted(Exception):
    """The whole run cannot go on (credentials rejected, source unreachable after retries)."""

    def __init__(self, error: ConnectorError, connection=None):
        super().__init__(error.message)
        self.error = error
        self.connection = connection


def not_sent(reason: str = "") -> ConnectorError:
    """A record held back (budget pause, run stopping): its page is read again later."""
    error = ConnectorError(reason or "Not sent: the Pipedrive daily budget reserve was reached; the flow "
                                     "resumes after the budget resets.")
    error.not_sent = True
    return error
