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
    remaining: int | None = None  # records left including this page, when the system says (progress)


class ErpConnector(Protocol):
    def test_connection(self) -> PingResult: ...

    def changed_since(self, obj: str, cursor: dict[str, Any]) -> Iterator[Page]:
        """Stream pages of records of `obj` changed since `cursor` (with the system's overlap)."""

    def read_one(self, obj: str, key: str) -> dict[str, Any] | None:
        """The current source record, for replay; None when it no longer exists."""


@dataclass(frozen=True)
class MappingSpec:
    """One default field mapping of a flow kind (customers may override per flow).

    source: an ERP field name (`CustomerName`) or a template with {Field} placeholders
            (`{AddressLine1}, {City}`); target: a Pipedrive standard field (`name`, `address`, ...)
            or `custom:<field name as shown in Pipedrive>`; lookup: a table for enum values.
    """

    source: str
    target: str
    lookup: dict[str, Any] | None = None
    required: bool = False
    field_type: str = "varchar"  # the type to create a missing custom field with


@dataclass(frozen=True)
class FlowKind:
    """A declarative ERP → Pipedrive flow: adding one never touches the engine."""

    name: str  # e.g. "customers_to_organizations"
    system: str  # ERP system, e.g. "sage300"
    label: str
    source_object: str  # passed to ErpConnector.changed_since / read_one
    key_field: str  # the ERP field that identifies a record (the external id)
    target_entity: str  # Pipedrive v2 entity: organizations | persons | deals | products
    external_id_field: str  # name of the Pipedrive custom field that carries the external id
    mappings: tuple[MappingSpec, ...]
    additive_only: bool = False  # never modify/delete Pipedrive records we did not create
