"""Pipedrive's records as the engine uses them: v2 entities (create, update, get, delete, paged lists),
v1 notes, v2 deal products, v1 webhooks and users/me — thin methods over PipedriveClient.request."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any
from urllib.parse import quote

from connectors.base import ConnectorError, NotFound
from connectors.pipedrive.common import ENTITIES, _rfc3339, _scrub

DEAL_PRODUCTS_BULK_MAX = 100  # addManyDealProducts maxItems, deleteManyDealProducts "Maximum 100 IDs"


class ResourcesMixin:
    # -- entities ----------------------------------------------------------------------------

    @staticmethod
    def _entity(entity: str) -> str:
        if entity not in ENTITIES:
            raise ConnectorError(f"Unknown Pipedrive entity {entity!r} (expected one of {', '.join(ENTITIES)}).",
                                 permanent=True)
        return entity

    def entity_create(self, entity: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.request("POST", f"/api/v2/{self._entity(entity)}", json=body).get("data") or {}

    def entity_update(self, entity: str, id: int | str, body: dict[str, Any]) -> dict[str, Any]:
        """PATCH; a record deleted in Pipedrive raises NotFound, whether Pipedrive answers 404 or 200
        with `is_deleted: true` (soft-deleted records live on for 30 days, wire doc §1.1)."""
        path = f"/api/v2/{self._entity(entity)}/{quote(str(id), safe='')}"
        data = self.request("PATCH", path, json=body).get("data") or {}
        if data.get("is_deleted") is True:
            raise NotFound(f"Pipedrive has no such record (PATCH {path}): it is deleted.", code="deleted",
                           status=200)
        return data

    def entity_get(self, entity: str, id: int | str) -> dict[str, Any] | None:
        try:
            return self.request("GET", f"/api/v2/{self._entity(entity)}/{quote(str(id), safe='')}").get("data")
        except NotFound:
            return None

    def entity_delete(self, entity: str, id: int | str) -> bool:
        """True when deleted now, False when it was already gone (a retried DELETE is not an error)."""
        try:
            self.request("DELETE", f"/api/v2/{self._entity(entity)}/{quote(str(id), safe='')}")
        except NotFound:
            return False
        return True

    def entity_pages(self, entity: str, *, updated_since: datetime | str | None = None,
                     custom_field_keys: list[str] | None = None, sort_by: str = "id") -> Iterator[list[dict[str, Any]]]:
        """Pages of records, oldest first by `sort_by`; with `updated_since` only those changed since.

        v2 /products has no updated_since filter: its pages come newest-first by update_time and stop
        at the first older record, so incremental product reads stay bounded."""
        params: dict[str, Any] = {"sort_by": sort_by, "sort_direction": "asc"}
        if custom_field_keys and len(custom_field_keys) <= 15 and entity != "activities":
            params["custom_fields"] = ",".join(custom_field_keys)  # at most 15; more means all fields
        path = f"/api/v2/{self._entity(entity)}"
        if updated_since and entity == "products":
            return self._pages_changed_since(path, params, _rfc3339(updated_since))
        if updated_since:
            params["updated_since"] = _rfc3339(updated_since)
        return self.iter_pages(path, params=params)

    def _pages_changed_since(self, path: str, params: dict[str, Any], since: str) -> Iterator[list[dict[str, Any]]]:
        threshold = datetime.fromisoformat(since.replace("Z", "+00:00"))
        params = {**params, "sort_by": "update_time", "sort_direction": "desc"}
        for page in self.iter_pages(path, params=params):
            fresh = [r for r in page if r.get("update_time")
                     and datetime.fromisoformat(str(r["update_time"]).replace("Z", "+00:00")) >= threshold]
            if fresh:
                yield fresh
            if len(fresh) < len(page):
                return

    def entity_search_field(self, entity: str, field_key: str, term: str | int) -> list[dict[str, Any]]:
        """Records whose custom field `field_key` equals `term` exactly (case-sensitive)."""
        term = str(term)
        if not term.strip():
            return []
        params = {"term": term, "entity_type": ENTITIES[self._entity(entity)], "field": field_key, "match": "exact"}
        found = []
        for page in self.iter_pages("/api/v2/itemSearch/field", params=params):
            for entry in page:
                found.append(entry["item"] if isinstance(entry.get("item"), dict) else entry)
        return found

    # -- v1: notes, webhooks, current user ---------------------------------------------------

    def note_create(self, *, content: str, org_id: int | None = None, deal_id: int | None = None,
                    person_id: int | None = None) -> dict[str, Any]:
        targets = {k: v for k, v in {"org_id": org_id, "deal_id": deal_id, "person_id": person_id}.items() if v}
        if not targets:
            raise ConnectorError("A Pipedrive note needs an organization, deal or person.", permanent=True)
        return self.request("POST", "/v1/notes", json={"content": content, **targets}).get("data") or {}

    def note_update(self, id: int | str, *, content: str) -> dict[str, Any]:
        """PUT a note's content; a note deleted in Pipedrive raises NotFound."""
        return self.request("PUT", f"/v1/notes/{quote(str(id), safe='')}", json={"content": content}).get("data") or {}

    def note_delete(self, id: int | str) -> bool:
        try:
            self.request("DELETE", f"/v1/notes/{quote(str(id), safe='')}")
        except NotFound:
            return False
        return True

    def note_pages(self, *, org_id: int | None = None, deal_id: int | None = None) -> Iterator[list[dict[str, Any]]]:
        params = {k: v for k, v in {"org_id": org_id, "deal_id": deal_id}.items() if v}
        return self.iter_pages("/v1/notes", params=params)

    # -- deal products (v2) ------------------------------------------------------------------

    def deal_product_add(self, deal_id: int, body: dict[str, Any]) -> dict[str, Any]:
        return self.request("POST", f"/api/v2/deals/{int(deal_id)}/products", json=body).get("data") or {}

    def deal_product_update(self, deal_id: int, attachment_id: int, body: dict[str, Any]) -> dict[str, Any]:
        path = f"/api/v2/deals/{int(deal_id)}/products/{int(attachment_id)}"
        return self.request("PATCH", path, json=body).get("data") or {}

    def deal_product_delete(self, deal_id: int, attachment_id: int) -> bool:
        try:
            self.request("DELETE", f"/api/v2/deals/{int(deal_id)}/products/{int(attachment_id)}")
        except NotFound:
            return False
        return True

    def deal_products_add_many(self, deal_id: int, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """addManyDealProducts: up to DEAL_PRODUCTS_BULK_MAX lines in one call (25 tokens against 5 per
        single add); Pipedrive attaches all or none, and answers them in the order sent."""
        if not 0 < len(bodies) <= DEAL_PRODUCTS_BULK_MAX:
            raise ConnectorError(f"A bulk add takes 1 to {DEAL_PRODUCTS_BULK_MAX} deal products (got {len(bodies)}).",
                                 permanent=True)
        path = f"/api/v2/deals/{int(deal_id)}/products/bulk"
        return self.request("POST", path, json={"data": bodies}).get("data") or []

    def deal_products_delete_many(self, deal_id: int, attachment_ids: list[int]) -> list[int]:
        """deleteManyDealProducts: up to DEAL_PRODUCTS_BULK_MAX attachments in one call (15 tokens against 3
        per single delete); returns the ids deleted now (ids already gone are not an error)."""
        if not 0 < len(attachment_ids) <= DEAL_PRODUCTS_BULK_MAX:
            raise ConnectorError(f"A bulk delete takes 1 to {DEAL_PRODUCTS_BULK_MAX} deal products "
                                 f"(got {len(attachment_ids)}).", permanent=True)
        path = f"/api/v2/deals/{int(deal_id)}/products"
        try:
            data = self.request("DELETE", path, params={"ids": ",".join(str(int(i)) for i in attachment_ids)})
        except NotFound:  # the deal itself is gone: so are its lines
            return []
        return [int(i) for i in ((data.get("data") or {}).get("ids") or [])]

    def deal_product_pages(self, deal_id: int) -> Iterator[list[dict[str, Any]]]:
        return self.iter_pages(f"/api/v2/deals/{int(deal_id)}/products")

    def webhook_list(self) -> list[dict[str, Any]]:
        return self.request("GET", "/v1/webhooks").get("data") or []

    def webhook_create(self, *, subscription_url: str, event_action: str, event_object: str, http_auth_user: str,
                       http_auth_password: str, name: str, version: str = "2.0") -> dict[str, Any]:
        body = {"subscription_url": subscription_url, "event_action": event_action, "event_object": event_object,
                "http_auth_user": http_auth_user, "http_auth_password": http_auth_password, "version": version,
                "name": name}
        try:
            return self.request("POST", "/v1/webhooks", json=body).get("data") or {}
        except ConnectorError as exc:
            scrubbed = _scrub(exc.message, [http_auth_password])
            if scrubbed == exc.message:
                raise
            exc.message = scrubbed
            exc.args = (scrubbed,)
            raise

    def webhook_delete(self, id: int | str) -> bool:
        try:
            self.request("DELETE", f"/v1/webhooks/{quote(str(id), safe='')}")
        except NotFound:
            return False
        return True

    def users_me(self) -> dict[str, Any]:
        return self.request("GET", "/v1/users/me").get("data") or {}
