"""The connector contract every external system implements, and the one error type they raise."""

from __future__ import annotations

from collections.abc import Callable, Iterator
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


@dataclass(frozen=True)
class SystemField:
    """One setting a connection to a system asks for. Each system's package exports its own as
    CONNECTION_FIELDS; the portal form, the API and connectors/services.py all read them from there,
    so a key name is decided once."""

    key: str
    label: str
    secret: bool = False  # True: stored encrypted in `credentials`, never shown back
    required: bool = True
    help: str = ""
    choices: tuple[tuple[str, str], ...] = ()
    integer: bool = False
    auth: str = ""  # only used with this auth method (Pipedrive: "api_token" / "oauth")


@dataclass
class PingResult:
    ok: bool
    message: str  # plain words, shown to the customer
    details: dict[str, Any] = field(default_factory=dict)


# A record a connector could not read (broken XML, say) carries this key with the reason, beside its
# key field when that was visible: the engine fails that record alone, in those words.
UNREADABLE = "_unreadable"


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

    # Optional: `count(obj) -> int | None`, how many records of `obj` the ERP holds, where it can say
    # cheaply (one call). The onboarding estimate uses it; without it the estimate is from a sample.


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
class Reference:
    """A body field pointing at a record that another flow (or the plan's parent) put in Pipedrive:
    `target` gets the Pipedrive id linked to the ERP key in `source`. A reference not linked yet fails
    the operation as transient (retried by later runs, once the other flow has synced the record)."""

    target: str  # body field, e.g. "org_id", "product_id"
    source: str  # ERP field holding the referenced record's key, e.g. "CardCode"
    source_object: str  # the source object of the flow that owns the link, e.g. "business_partners"
    required: bool = True  # False: a record without the key goes without it (one with an unlinked key still waits)
    label: str = ""  # for messages: "customer", "item"


@dataclass(frozen=True)
class Children:
    """A collection inside each source record, kept in step with child records in Pipedrive: added,
    changed and (for those we created) removed when they vanish at the source."""

    name: str  # "contacts": its links live under "<source_object>.<name>"
    collection: str  # the ERP field holding the list, e.g. "ContactEmployees"
    key_field: str  # identifies a child within its parent, e.g. "InternalCode"
    target_entity: str  # "persons" | "deal_products"
    parent_field: str  # body field set to the parent's Pipedrive id, e.g. "org_id"
    mappings: tuple[MappingSpec, ...]
    external_id_field: str = ""  # custom field carrying "<parent key>/<child key>" where the entity has them
    references: tuple[Reference, ...] = ()
    remove_missing: bool = True
    skip_when: tuple[tuple[str, Any], ...] = ()  # (field, value): children to leave out, e.g. inactive ones


@dataclass(frozen=True)
class WriteBack:
    """What a write-back flow does with a Pipedrive deal (design.md "Write-back"). Two modes:

    - `create` (SAP B1 deal won → sales order): one ERP document per deal, exactly once per deal.
      `references` turn deal fields into ERP keys through other flows' links, in reverse (`source`: the
      deal's field holding a Pipedrive id, `target`: the ERP field getting the linked record's key, e.g.
      org_id → CardCode); `line_references` do the same for each deal product (product_id → ItemCode).
      `build(deal, lines, reference)` gives the keyword arguments of the ERP client's `create` method;
      `find(reference=)` finds a document already carrying our reference (adopt before create).
    - `action` (IFS deal stage → order status): each move of the deal into a stage the flow maps runs that
      stage's action on the ERP document the deal came from, exactly once per stage change. The flow's
      `stage_actions` option maps Pipedrive stage ids to names in `actions`; `document_of` finds the
      document through the inbound flow's link of the deal; `act(<id_field>=, action=, done_state=)` runs
      it (the client re-reads on a stale ETag and skips an action whose state is already reached)."""

    document: str  # the ERP object written, e.g. "orders" (audit rows' target_object)
    find: str = ""  # create mode: ERP client method find(reference=...) → document or None
    create: str = ""  # create mode: ERP client method create(**build(...)) → document
    build: Callable[[dict[str, Any], list[dict[str, Any]], str], dict[str, Any]] | None = None
    reference: str = "PD-{deal_id}"  # our mark on the ERP document
    id_field: str = "DocEntry"  # the document's id in the ERP's answer
    number_field: str = "DocNum"  # the number people use, written back to the deal
    deal_field: str = ""  # Pipedrive deal custom field receiving the document number
    references: tuple[Reference, ...] = ()
    line_references: tuple[Reference, ...] = ()
    trigger: str = "won"  # default flow option: "won", a list of stage ids, or "stage_changed" (action mode)
    mode: str = "create"  # "create" | "action"
    act: str = ""  # action mode: ERP client method running one action on one document
    actions: tuple[tuple[str, str], ...] = ()  # action mode: (action name, the state it leads to)
    document_of: Reference | None = None  # action mode: deal field → ERP document key through a link


@dataclass(frozen=True)
class FlowKind:
    """A declarative ERP → Pipedrive flow: adding one never touches the engine.

    One source record becomes a plan: the record's own operation (create/update one Pipedrive record,
    with `references` resolved from other flows' links), then its `children` kept in step. Notes are an
    attachment target: no custom fields, so they carry a reference line instead of an external-id field.
    """

    name: str  # e.g. "customers_to_organizations"
    system: str  # ERP system, e.g. "sage300"
    label: str
    source_object: str  # passed to ErpConnector.changed_since / read_one
    key_field: str  # the ERP field that identifies a record (the external id)
    target_entity: str  # Pipedrive v2 entity: organizations | persons | deals | products
    external_id_field: str  # name of the Pipedrive custom field that carries the external id
    mappings: tuple[MappingSpec, ...]
    additive_only: bool = False  # never modify/delete Pipedrive records we did not create
    references: tuple[Reference, ...] = ()
    children: tuple[Children, ...] = ()
    depends_on: tuple[str, ...] = ()  # flow kinds whose links this one references (shown in the portal)
    # Computed fields added to each record before mapping (a price list's price, total stock): keeps
    # mappings declarative when the ERP nests what Pipedrive wants flat.
    derive: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    # Records this flow leaves alone, with the reason (e.g. orders our own write-back made from a deal:
    # the deal is already in Pipedrive, and reading the order back must not make a second one).
    skip: Callable[[dict[str, Any]], str] | None = None
    # "to_erp": a write-back flow (Pipedrive deal events → the ERP, see WriteBack); its runs are polls
    # of changed deals, its source connection is still the ERP and its target Pipedrive. Enabling one
    # registers the Pipedrive webhook that feeds it (syncs/webhook_registration.py).
    direction: str = "to_pipedrive"
    writeback: WriteBack | None = None

    def child(self, name: str) -> Children:
        return next(c for c in self.children if c.name == name)
