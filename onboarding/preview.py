"""Step 5's look-ups: the target entity's live Pipedrive fields, creating one, and a preview of a few
real ERP records mapped by the flow's current mappings (the exact bodies, errors per record).

The preview reads the ERP and Pipedrive's field list and writes nothing to either: a custom field the
first run would create shows a placeholder key instead."""

from __future__ import annotations

from itertools import islice
from typing import Any

from connectors.base import ConnectorError
from connectors.pipedrive.fields import FieldResolver
from connectors.registry import connector_for
from syncs.kinds import flow_kind_get
from syncs.mapping import ENTITIES_WITHOUT_CUSTOM_FIELDS, STANDARD_FIELDS
from syncs.models import Flow
from syncs.plan import body_build, children_of, ops_build, references_fill

PREVIEW_SIZE = 3
CHILDREN_SHOWN = 3
NEW_FIELD = "<new field: {name}>"


class PreviewResolver:
    """A FieldResolver that never creates: a missing field gets a placeholder key, and its values are
    converted as the type it would be created with."""

    def __init__(self, inner: FieldResolver) -> None:
        self.inner = inner
        self.missing: dict[str, str] = {}  # name → field type it would be created with

    def ensure(
        self, entity: str, name: str, field_type: str = "varchar", options: list[str] | None = None
    ) -> str:
        field = self.inner.find(entity, name)
        if field is None:
            self.missing[name] = field_type
            return NEW_FIELD.format(name=name.strip())
        return field["field_code"]

    def key(self, entity: str, name: str) -> str:
        return self.inner.key(entity, name)

    def field(self, entity: str, name: str) -> dict[str, Any]:
        if name in self.missing:
            return {"field_type": self.missing[name], "field_code": NEW_FIELD.format(name=name.strip())}
        return self.inner.field(entity, name)

    convert = staticmethod(FieldResolver.convert)


def _entity_fields(resolver: FieldResolver, entity: str) -> list[dict[str, Any]]:
    standard = [
        {"name": name, "key": name, "type": "standard", "custom": False}
        for name in sorted(STANDARD_FIELDS.get(entity, {}))
    ]
    if entity in ENTITIES_WITHOUT_CUSTOM_FIELDS:
        return standard
    resolver.invalidate(entity)  # live: what Pipedrive has now, not the cached list
    custom = sorted(
        (
            {"name": f["field_name"], "key": f["field_code"], "type": f["field_type"], "custom": True}
            for f in resolver.definitions(entity)
            if f.get("is_custom_field")
        ),
        key=lambda f: f["name"].casefold(),
    )
    return standard + custom


def _sample(erp: Any, kind: Any, size: int) -> list[dict[str, Any]]:
    """The first `size` records the first run would send (reads one page at most)."""
    pages = erp.changed_since(kind.source_object, {})
    try:
        page = next(pages, None)
    finally:
        pages.close()
    records = page.records if page else []
    return list(islice((r for r in records if not (kind.skip and kind.skip(r))), size))


def _record_preview(
    flow: Flow, kind: Any, root: Any, children: list, record: dict[str, Any]
) -> dict[str, Any]:
    external_id = str(record.get(kind.key_field, ""))
    item: dict[str, Any] = {
        "external_id": external_id,
        "body": None,
        "error": "",
        "notes": [],
        "children": [],
    }
    try:
        derived = {**record, **kind.derive(record)} if kind.derive else record
        body = body_build(root, derived, external_id)
    except ConnectorError as exc:
        item["error"] = exc.message
        return item
    for ref_error in references_fill(flow=flow, op=root, items={external_id: (derived, body)}).values():
        item["notes"].append(ref_error.message)  # the other flow links it first; not this mapping's fault
    item["body"] = body
    for op in children:
        try:
            rows = children_of(op, derived) or []
            for child in rows[:CHILDREN_SHOWN]:
                child_id = f"{external_id}/{child.get(op.key_field, '')}"
                item["children"].append(
                    {
                        "name": op.name,
                        "external_id": child_id,
                        "body": body_build(op, child, child_id, parent_id=None),
                    }
                )
        except ConnectorError as exc:
            item["children"].append({"name": op.name, "external_id": "", "error": exc.message})
    return item


def mapping_preview(*, flow: Flow, size: int = PREVIEW_SIZE) -> dict[str, Any]:
    """{"entity", "fields", "sample_fields", "records": [{external_id, body, error, notes, children}],
    "new_fields", "error"}. A failure reaching either system is the whole preview's `error`."""
    kind = flow_kind_get(system=flow.source.system, name=flow.kind)
    result: dict[str, Any] = {
        "entity": kind.target_entity,
        "fields": [],
        "sample_fields": [],
        "records": [],
        "new_fields": [],
        "error": "",
    }
    erp = connector_for(flow.source)
    pipedrive = connector_for(flow.target)
    try:
        resolver = FieldResolver(pipedrive, pipedrive.company_key)
        result["fields"] = _entity_fields(resolver, kind.target_entity)
        if kind.direction != "to_pipedrive":
            result["error"] = (
                "This flow writes Pipedrive deals back to the ERP: it has no mapping to preview."
            )
            return result
        preview_resolver = PreviewResolver(resolver)
        root, children = ops_build(flow=flow, kind=kind, pipedrive=pipedrive, resolver=preview_resolver)
        records = _sample(erp, kind, size)
        result["sample_fields"] = sorted(
            {
                key
                for record in records
                for key, value in record.items()
                if not isinstance(value, (dict, list))
            }
        )
        result["records"] = [_record_preview(flow, kind, root, children, r) for r in records]
        result["new_fields"] = sorted(preview_resolver.missing)
    except ConnectorError as exc:
        result["error"] = exc.message
    finally:
        getattr(erp, "close", lambda: None)()
    return result


def pipedrive_field_create(*, flow: Flow, name: str, field_type: str = "varchar") -> dict[str, Any]:
    """Create the custom field `name` on the flow's target entity (once: an existing one is reused)."""
    kind = flow_kind_get(system=flow.source.system, name=flow.kind)
    if kind.target_entity in ENTITIES_WITHOUT_CUSTOM_FIELDS:
        raise ConnectorError(f"Pipedrive {kind.target_entity} have no custom fields.", permanent=True)
    pipedrive = connector_for(flow.target)
    resolver = FieldResolver(pipedrive, pipedrive.company_key)
    key = resolver.ensure(kind.target_entity, name, field_type)
    return {"name": " ".join(name.split()), "key": key, "type": field_type}
