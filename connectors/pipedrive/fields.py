"""Pipedrive custom fields by display name.

Keys are random 40-character hashes that differ per company (wire doc §1.4), so flows name fields
as the customer sees them ("ERP customer number") and this module finds the key, caches the
definitions per company and entity in the database (a re-run costs no field calls), and converts
Python values into the v2 write format of each field type.
"""

from __future__ import annotations

import logging
import math
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.db import connection as db_connection
from django.utils import timezone

from connectors.base import ConnectorError
from connectors.pipedrive.client import ENTITIES, PipedriveClient
from connectors.pipedrive.limiter import digest
from connectors.pipedrive.models import PipedriveFieldCache

log = logging.getLogger("connectors.pipedrive.fields")

SINGULAR = {**{v: v for v in ENTITIES.values()}, **ENTITIES}
FIELD_ENTITIES = ("organization", "person", "deal", "product", "activity")
STRING_TYPES = {"varchar": 255, "varchar_auto": 255, "phone": 255, "text": 65_000}
KEPT = ("field_code", "field_name", "field_type", "is_custom_field", "options", "subfields")


def name_key(name: str) -> str:
    """Display names compare case-insensitively, trimmed, with inner whitespace collapsed."""
    return " ".join(str(name).split()).casefold()


def _number(value: Any, field_label: str) -> int | float:
    if isinstance(value, bool):
        raise ConnectorError(f"{field_label} takes a number, not true/false.", permanent=True)
    if isinstance(value, int):
        return value
    if isinstance(value, float | Decimal):
        number = Decimal(str(value)) if isinstance(value, float) else value
    elif isinstance(value, str):
        text = value.strip().replace(" ", "").replace("_", "")
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise ConnectorError(f"{field_label} takes a number; {value!r} is not one.", permanent=True) from None
    else:
        raise ConnectorError(f"{field_label} takes a number, not {type(value).__name__}.", permanent=True)
    if not number.is_finite():
        raise ConnectorError(f"{field_label} takes a finite number; got {value!r}.", permanent=True)
    if number == number.to_integral_value() and abs(number) < 2**53:
        return int(number)
    result = float(number)
    if math.isinf(result):
        raise ConnectorError(f"{field_label}: {value!r} is too large.", permanent=True)
    return result


def _date(value: Any, field_label: str) -> str:
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        text = value.strip()
        if len(text) == 10 or text[10:11] in ("T", "t", " "):  # a date, or the date part of a date-time
            try:
                return date.fromisoformat(text[:10]).isoformat()
            except ValueError:
                pass
    raise ConnectorError(f"{field_label} takes a date (YYYY-MM-DD); {value!r} is not one.", permanent=True)


class FieldResolver:
    """Custom fields of one company: name → definition, cached in PipedriveFieldCache."""

    def __init__(self, client: PipedriveClient, company_key: str | None = None) -> None:
        self.client = client
        self.company_key = company_key or client.company_key
        self.ttl = timedelta(seconds=float(getattr(settings, "PIPEDRIVE_FIELD_CACHE_TTL_S", 86_400)))
        self._fields: dict[str, list[dict[str, Any]]] = {}
        self._refreshed: set[str] = set()  # entities reloaded after a miss (at most once per resolver)

    # -- definitions -------------------------------------------------------------------------

    @staticmethod
    def entity_name(entity: str) -> str:
        singular = SINGULAR.get(entity)
        if singular not in FIELD_ENTITIES:
            raise ConnectorError(f"Pipedrive has no custom fields for {entity!r}.", permanent=True)
        return singular

    @staticmethod
    def _kept(definition: dict[str, Any]) -> dict[str, Any]:
        kept = {key: definition.get(key) for key in KEPT}
        if kept["options"]:
            kept["options"] = [{"id": o.get("id"), "label": o.get("label")} for o in kept["options"]]
        return kept

    def _load(self, entity: str) -> list[dict[str, Any]]:
        fields = [self._kept(field) for page in self.client.iter_pages(f"/api/v2/{entity}Fields") for field in page]
        PipedriveFieldCache.objects.update_or_create(company_key=self.company_key, entity=entity,
                                                     defaults={"fields": fields})
        self._fields[entity] = fields
        return fields

    def definitions(self, entity: str) -> list[dict[str, Any]]:
        """All field definitions of an entity, from memory, the database cache, or Pipedrive."""
        entity = self.entity_name(entity)
        if entity in self._fields:
            return self._fields[entity]
        cached = PipedriveFieldCache.objects.filter(company_key=self.company_key, entity=entity).first()
        if cached is not None and cached.fetched_at > timezone.now() - self.ttl:
            self._fields[entity] = cached.fields
            return cached.fields
        return self._load(entity)

    def invalidate(self, entity: str) -> None:
        """Forget the cached definitions (after Pipedrive rejected a value naming a field)."""
        entity = self.entity_name(entity)
        self._fields.pop(entity, None)
        self._refreshed.discard(entity)
        PipedriveFieldCache.objects.filter(company_key=self.company_key, entity=entity).delete()

    def _match(self, entity: str, name: str) -> dict[str, Any] | None:
        wanted = name_key(name)
        matches = [f for f in self.definitions(entity) if f.get("is_custom_field") and name_key(f["field_name"]) == wanted]
        if len(matches) > 1:
            raise ConnectorError(
                f"Pipedrive has {len(matches)} {entity} fields named {name.strip()!r}; rename all but one in "
                "Pipedrive so we know which one to fill.", permanent=True)
        return matches[0] if matches else None

    def find(self, entity: str, name: str) -> dict[str, Any] | None:
        """The definition of the custom field called `name`, or None (reloads once after a miss)."""
        entity = self.entity_name(entity)
        field = self._match(entity, name)
        if field is None and entity not in self._refreshed:
            self._refreshed.add(entity)
            self._load(entity)
            field = self._match(entity, name)
        return field

    def field(self, entity: str, name: str) -> dict[str, Any]:
        field = self.find(entity, name)
        if field is None:
            raise ConnectorError(
                f"Pipedrive has no {self.entity_name(entity)} field named {name.strip()!r}. Create it in Pipedrive or "
                "turn on 'create missing fields'.", permanent=True, code="missing_field")
        return field

    def key(self, entity: str, name: str) -> str:
        """The 40-character field_code of the custom field called `name`."""
        return self.field(entity, name)["field_code"]

    @contextmanager
    def _creation_lock(self, entity: str):
        """Serialize field creation per company and entity across processes (PostgreSQL advisory
        lock, held by the session, not a transaction, so no row lock spans the HTTP calls)."""
        if db_connection.vendor != "postgresql":
            yield
            return
        lock_id = int(digest(f"pipedrive-field|{self.company_key}|{entity}")[:15], 16)
        with db_connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [lock_id])
        try:
            yield
        finally:
            with db_connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [lock_id])

    def ensure(self, entity: str, name: str, field_type: str = "varchar",
               options: list[str] | None = None) -> str:
        """The key of the custom field called `name`, creating it in Pipedrive when it is missing
        (one reload and one create; concurrent workers create it once)."""
        entity = self.entity_name(entity)
        field = self._match(entity, name)
        if field is None:
            if field_type in ("enum", "set") and not options:
                raise ConnectorError(f"Creating the Pipedrive field {name.strip()!r} ({field_type}) needs its "
                                     "options.", permanent=True)
            with self._creation_lock(entity):
                if entity in self._refreshed:
                    # Pipedrive's list is fresh from this resolver; what other workers created since is in
                    # the shared cache (every creator records its field there): no call, no tokens.
                    cached = PipedriveFieldCache.objects.filter(company_key=self.company_key, entity=entity).first()
                    if cached is not None:
                        self._fields[entity] = cached.fields
                else:
                    self._load(entity)  # fresh: it may exist already, or another worker made it meanwhile
                    self._refreshed.add(entity)
                field = self._match(entity, name)
                if field is None:
                    body: dict[str, Any] = {"field_name": " ".join(name.split()), "field_type": field_type}
                    if options:
                        body["options"] = [{"label": label} for label in options]
                    try:
                        created = self.client.request("POST", f"/api/v2/{entity}Fields", json=body).get("data") or {}
                    except ConnectorError as exc:
                        if not getattr(exc, "ambiguous", False):
                            raise
                        # the answer was lost, the field may exist now: look before anyone creates it again
                        self._load(entity)
                        field = self._match(entity, name)
                        if field is None:
                            raise
                    else:
                        field = self._remember(entity, created)
                        log.info("Created Pipedrive %s field %r (%s)", entity, name, field_type)
        if field["field_type"] != field_type:
            log.info("Pipedrive %s field %r is %s, not %s; using it as it is", entity, name, field["field_type"],
                     field_type)
        return field["field_code"]

    def _remember(self, entity: str, definition: dict[str, Any]) -> dict[str, Any]:
        kept = self._kept(definition)
        fields = [*self._fields.get(entity, []), kept]
        PipedriveFieldCache.objects.update_or_create(company_key=self.company_key, entity=entity,
                                                     defaults={"fields": fields})
        self._fields[entity] = fields
        return kept

    # -- values ------------------------------------------------------------------------------

    def value_for(self, entity: str, name: str, value: Any) -> Any:
        """`value` in the v2 write format of the field's type (None clears the field)."""
        field = self.field(entity, name)
        return self.convert(field, value, label=f"The Pipedrive {self.entity_name(entity)} field {name.strip()!r}")

    def custom_fields(self, entity: str, values: dict[str, Any]) -> dict[str, Any]:
        """{display name: Python value} → the `custom_fields` object of a v2 create/update body."""
        return {self.key(entity, name): self.value_for(entity, name, value) for name, value in values.items()}

    @staticmethod
    def _option_id(field: dict[str, Any], value: Any, label: str) -> int:
        options = field.get("options") or []
        if isinstance(value, int) and not isinstance(value, bool) and any(o["id"] == value for o in options):
            return value
        wanted = name_key(str(value))
        for option in options:
            if name_key(option.get("label") or "") == wanted:
                return option["id"]
        allowed = ", ".join(repr(o.get("label")) for o in options) or "none"
        raise ConnectorError(f"{label} has no option {value!r}; allowed: {allowed}.", permanent=True,
                             code="unknown_option")

    @classmethod
    def convert(cls, field: dict[str, Any], value: Any, *, label: str = "The Pipedrive field") -> Any:
        kind = field.get("field_type")
        if value is None:
            return None
        if kind in STRING_TYPES:
            if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
                raise ConnectorError(f"{label} takes text, not {type(value).__name__}.", permanent=True)
            text = value if isinstance(value, str) else str(value)
            if len(text) > STRING_TYPES[kind]:
                raise ConnectorError(f"{label} takes at most {STRING_TYPES[kind]} characters; this value has "
                                     f"{len(text)}.", permanent=True)
            return text
        if kind in ("double", "int"):
            number = _number(value, label)
            return int(number) if kind == "int" else number
        if kind == "monetary":
            if isinstance(value, dict) and "value" in value:
                amount, currency = value.get("value"), value.get("currency")
            elif isinstance(value, list | tuple) and len(value) == 2:
                amount, currency = value
            else:
                raise ConnectorError(f"{label} is monetary: give an amount and a currency, e.g. "
                                     "{'value': 12.5, 'currency': 'EUR'}.", permanent=True)
            if not isinstance(currency, str) or not currency.strip():
                raise ConnectorError(f"{label} is monetary and needs a currency code.", permanent=True)
            return {"value": None if amount is None else _number(amount, label), "currency": currency.strip().upper()}
        if kind == "date":
            return _date(value, label)
        if kind == "daterange":
            if isinstance(value, dict):
                start, until = value.get("value"), value.get("until")
            elif isinstance(value, list | tuple) and len(value) == 2:
                start, until = value
            else:
                raise ConnectorError(f"{label} is a date range: give a start and an end date.", permanent=True)
            return {"value": _date(start, label), "until": _date(until, label)}
        if kind == "enum":
            return cls._option_id(field, value, label)
        if kind == "set":
            if isinstance(value, str):
                items = [part for part in value.split(",") if part.strip()]
            elif isinstance(value, list | tuple | set | frozenset):
                items = list(value)
            else:
                items = [value]
            ids = []
            for item in items:
                option = cls._option_id(field, item, label)
                if option not in ids:
                    ids.append(option)
            return ids or None  # Pipedrive rejects [] for set fields; null clears them
        if kind == "address":
            if isinstance(value, dict):
                if not value.get("value"):
                    raise ConnectorError(f"{label} is an address and needs its 'value' (the full address).",
                                         permanent=True)
                return value
            if isinstance(value, str):
                return {"value": value} if value.strip() else None
            raise ConnectorError(f"{label} is an address: give it as text.", permanent=True)
        if kind in ("user", "org", "people"):
            if isinstance(value, bool):
                raise ConnectorError(f"{label} takes a Pipedrive {kind} id.", permanent=True)
            try:
                return int(value)
            except (TypeError, ValueError):
                raise ConnectorError(f"{label} takes a Pipedrive {kind} id; {value!r} is not one.",
                                     permanent=True) from None
        if kind == "boolean":
            if isinstance(value, bool):
                return value
            raise ConnectorError(f"{label} takes true or false.", permanent=True)
        return value  # time, timerange and other types: the caller gives the v2 shape itself
