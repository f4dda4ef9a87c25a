"""The connector contract every external system implements, and the one error type they raise."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol


class ConnectorError(Exception):
    """A failure talking to an external system.

    `permanent` decides retry vs. fail the record; `retry_after` (seconds) is the server's hint;
    `auth` marks rejected credentials (the connection is broken until the customer fixes it).
    Messages are plain words for the customer and never carry secrets.
    """

    def __init__(
        self,
        message: str,
        *,
        permanent: bool = False,
        retry_after: float | None = None,
        auth: bool = False,
        status: int | None = None,
        code: str = "",
    ):
        super().__init__(message)
        self.message = message
        self.permanent = permanent or auth
        self.retry_after = retry_after
        self.auth = auth
        self.status = status
        self.code = code

    @property
    def kind(self) -> str:
        if self.auth:
            return "auth"
        return "permanent" if self.permanent else "transient"


class NotFound(ConnectorError):
    """The remote object does not exist (HTTP 404). Permanent for that object."""

    def __init__(self, message: str = "Not found", **kwargs: Any):
        kwargs.setdefault("status", 404)
        super().__init__(message, permanent=True, **kwargs)


class BudgetExhausted(ConnectorError):
    """The Pipedrive daily token budget is at or under the reserve: pause until `resets_at`."""

    def __init__(self, message: str, *, resets_at: Any, remaining: int | None = None):
        super().__init__(message, permanent=False)
        self.resets_at = resets_at  # aware datetime
        self.remaining = remaining


@dataclass
class PingResult:
    ok: bool
    message: str  # plain words, shown to the customer
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Page:
    """One page of source records and the cursor to commit once they are processed."""

    records: list[dict[str, Any]]
    cursor: dict[str, Any]


class ErpConnector(Protocol):
    def test_connection(self) -> PingResult: ...

    def changed_since(self, obj: str, cursor: dict[str, Any]) -> Iterator[Page]:
        """Stream pages of records of `obj` changed since `cursor` (with the system's overlap)."""

    def read_one(self, obj: str, key: str) -> dict[str, Any] | None:
        """The current source record, for replay; None when it no longer exists."""
