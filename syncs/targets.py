"""What the engine does to each kind of Pipedrive record: create, update, delete, and find a record
whose create answer was lost. One class per shape of record:

- `RecordTarget`: v2 entities with custom fields (organizations, persons, deals, products); the
  external id lives in a custom field, so a paged list finds what already exists (adopt before create);
- `NoteTarget`: v1 notes, an attachment with no custom fields; a reference line in the content
  identifies ours;
- `DealProductTarget`: a product attached to a deal (v2 `/deals/{id}/products`), addressed through the
  parent deal's id; ours are the attachments our links name.

A record deleted in Pipedrive answers an update with 404 or with 200 and `is_deleted: true`; both raise
`Gone`, and the engine recreates and relinks.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from connectors.base import ConnectorError, NotFound

SCAN_MARGIN = timedelta(minutes=5)  # clock skew between us and Pipedrive's update_time


@dataclass(frozen=True)
class BulkCosts:
    """A target's token costs (the spec's x-token-cost) for one record and for one bulk call; the
    engine sends bulk calls where they cost less (syncs/bulk.py)."""

    single_add: int
    bulk_add: int
    single_delete: int
    bulk_delete: int
    bulk_max: int


class Gone(ConnectorError):
    """The linked Pipedrive record was deleted there."""

    def __init__(self, entity: str, target_id: Any):
        super().__init__(f"The Pipedrive {entity} {target_id} was deleted there.", permanent=True, status=404)


class RecordTarget:
    scannable = True  # carries the external id in a custom field: a list finds what exists

    def __init__(self, client: Any, entity: str):
        self.client = client
        self.entity = entity

    def create(self, body: dict[str, Any], *, parent_id: int | None = None) -> int:
        return int(self.client.entity_create(self.entity, body)["id"])

    def update(self, target_id: int, body: dict[str, Any], *, parent_id: int | None = None) -> int:
        try:
            data = self.client.entity_update(self.entity, target_id, body)
        except NotFound:
            raise Gone(self.entity, target_id) from None
        if data.get("is_deleted") or data.get("active_flag") is False:
            raise Gone(self.entity, target_id)
        return int(data.get("id") or target_id)

    def delete(self, target_id: int, *, parent_id: int | None = None) -> bool:
        return self.client.entity_delete(self.entity, target_id)

    def pages(self, *, key: str, since: datetime | None = None) -> Iterable[list[dict[str, Any]]]:
        return self.client.entity_pages(self.entity, updated_since=since, custom_field_keys=[key])

    def find_created(self, wanted: dict[str, Any], *, key: str, since: datetime, **_: Any) -> dict[str, int]:
        """External id → Pipedrive id of live records carrying one of the `wanted` external ids."""
        found: dict[str, int] = {}
        for page in self.pages(key=key, since=since):
            for item in page:
                ext = str((item.get("custom_fields") or {}).get(key) or "").strip()
                if ext in wanted and ext not in found and not item.get("is_deleted"):
                    found[ext] = int(item["id"])
        return found


class NoteTarget:
    scannable = False
    entity = "notes"

    def __init__(self, client: Any):
        self.client = client

    @staticmethod
    def marker(source_object: str, external_id: str) -> str:
        """The line that says which ERP record a note came from (notes have no custom fields)."""
        return f"<p><small>ml-connector: {html.escape(source_object)} {html.escape(external_id)}</small></p>"

    def create(self, body: dict[str, Any], *, parent_id: int | None = None) -> int:
        return int(self.client.note_create(content=body["content"], org_id=body.get("org_id"),
                                           deal_id=body.get("deal_id"), person_id=body.get("person_id"))["id"])

    def update(self, target_id: int, body: dict[str, Any], *, parent_id: int | None = None) -> int:
        try:
            data = self.client.note_update(target_id, content=body["content"])
        except NotFound:
            raise Gone("note", target_id) from None
        if data.get("active_flag") is False:
            raise Gone("note", target_id)
        return int(data.get("id") or target_id)

    def delete(self, target_id: int, *, parent_id: int | None = None) -> bool:
        return self.client.note_delete(target_id)

    def find_created(self, wanted: dict[str, Any], *, source_object: str, **_: Any) -> dict[str, int]:
        """Notes are found on the record they hang on: one list per organization or deal."""
        found: dict[str, int] = {}
        by_parent: dict[tuple[str, int], list[str]] = {}
        for ext, body in wanted.items():
            for field in ("org_id", "deal_id"):
                if body.get(field):
                    by_parent.setdefault((field, int(body[field])), []).append(ext)
                    break
        for (field, parent), exts in by_parent.items():
            markers = {self.marker(source_object, ext): ext for ext in exts}
            for page in self.client.note_pages(**{field: parent}):
                for note in page:
                    content = str(note.get("content") or "")
                    for mark, ext in markers.items():
                        if mark in content and ext not in found and note.get("active_flag", True):
                            found[ext] = int(note["id"])
        return found


class DealProductTarget:
    scannable = False
    entity = "deal_products"
    # x-token-cost of addDealProduct / addManyDealProducts / deleteDealProduct / deleteManyDealProducts
    bulk_costs = BulkCosts(single_add=5, bulk_add=25, single_delete=3, bulk_delete=15, bulk_max=100)

    def __init__(self, client: Any):
        self.client = client

    def create(self, body: dict[str, Any], *, parent_id: int | None = None) -> int:
        return int(self.client.deal_product_add(_parent(parent_id), body)["id"])

    def update(self, target_id: int, body: dict[str, Any], *, parent_id: int | None = None) -> int:
        try:
            data = self.client.deal_product_update(_parent(parent_id), target_id, body)
        except NotFound:
            raise Gone("deal product", target_id) from None
        return int(data.get("id") or target_id)

    def delete(self, target_id: int, *, parent_id: int | None = None) -> bool:
        return self.client.deal_product_delete(_parent(parent_id), target_id)

    def create_many(self, bodies: list[dict[str, Any]], *, parent_id: int | None = None) -> list[int]:
        """Ids of the attachments, in the order of `bodies` (all or none, one call)."""
        return [int(item["id"]) for item in self.client.deal_products_add_many(_parent(parent_id), bodies)]

    def delete_many(self, target_ids: list[int], *, parent_id: int | None = None) -> list[int]:
        return self.client.deal_products_delete_many(_parent(parent_id), target_ids)

    def find_created(self, wanted: dict[str, Any], *, parent_ids: dict[str, int], known_ids: set[int],
                     **_: Any) -> dict[str, int]:
        """Attachments nobody links yet whose product, quantity and price match the line we sent."""
        found: dict[str, int] = {}
        taken = set(known_ids)
        deals: dict[int, list[str]] = {}
        for ext in wanted:
            if parent_ids.get(ext):
                deals.setdefault(parent_ids[ext], []).append(ext)
        for deal_id, exts in deals.items():
            attached = [item for page in self.client.deal_product_pages(deal_id) for item in page]
            for ext in exts:
                body = wanted[ext]
                for item in attached:
                    if item["id"] in taken or item.get("product_id") != body.get("product_id"):
                        continue
                    if float(item.get("quantity") or 0) == float(body.get("quantity") or 0):
                        found[ext] = int(item["id"])
                        taken.add(item["id"])
                        break
        return found


def _parent(parent_id: int | None) -> int:
    if not parent_id:
        raise ConnectorError("The deal this product line belongs to is not in Pipedrive yet.", permanent=False)
    return int(parent_id)


def target_for(client: Any, entity: str) -> RecordTarget | NoteTarget | DealProductTarget:
    if entity == "notes":
        return NoteTarget(client)
    if entity == "deal_products":
        return DealProductTarget(client)
    return RecordTarget(client, entity)
