"""A flow's plan: the operations one source record becomes, and how each one's body is built.

The record's own operation comes first (an organization, a product, a note, a deal), with references
to other flows' records resolved from their links (a deal's `org_id` is the organization linked to its
customer). Then each children collection (contact employees → persons, order lines → deal products),
whose bodies carry the parent's Pipedrive id. Every operation has its own links (namespaced by
`source_object`), hashes and audit rows, so each is idempotent, free when unchanged, and replayable.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from connectors.base import Children, ConnectorError, FlowKind, MappingSpec, Reference
from syncs.mapping import Mapper, MappingError, Rule
from syncs.models import Flow, RecordLink
from syncs.targets import NoteTarget, target_for

CHILD_SEP = "/"  # child external id = "<parent key>/<child key>"


@dataclass
class Op:
    """One operation of the plan: the record's own (`name == ""`) or a children collection's."""

    name: str
    source_object: str  # the links' namespace
    key_field: str
    entity: str
    target: Any
    mapper: Mapper
    references: tuple[Reference, ...] = ()
    additive_only: bool = False
    parent_field: str = ""
    collection: str = ""
    remove_missing: bool = False
    skip_when: tuple[tuple[str, Any], ...] = ()

    @property
    def is_child(self) -> bool:
        return bool(self.name)

    @property
    def label(self) -> str:
        return self.name or self.source_object


def child_source_object(kind: FlowKind, child: Children) -> str:
    return f"{kind.source_object}.{child.name}"


def child_external_id(parent_key: str, child_key: Any) -> str:
    return f"{parent_key}{CHILD_SEP}{child_key}"


def parent_of(external_id: str) -> str:
    return external_id.rsplit(CHILD_SEP, 1)[0]


def _rules(specs: Iterable[Any]) -> list[Rule]:
    return [Rule(source=m.source, target=m.target, lookup=m.lookup, required=m.required, field_type=m.field_type)
            for m in specs]


def ops_build(*, flow: Flow, kind: FlowKind, pipedrive: Any, resolver: Any) -> tuple[Op, list[Op]]:
    """The root operation and the children operations, with field keys resolved once per run."""
    create_missing = flow.options.get("create_missing_fields", True)
    root = Op(
        name="", source_object=kind.source_object, key_field=kind.key_field, entity=kind.target_entity,
        target=target_for(pipedrive, kind.target_entity),
        mapper=Mapper(rules=_rules(flow.mappings.all()), entity=kind.target_entity, resolver=resolver,
                      external_id_field=kind.external_id_field, create_missing_fields=create_missing),
        references=kind.references, additive_only=kind.additive_only)
    children = []
    for child in kind.children:
        specs: Iterable[MappingSpec] = child.mappings  # the flow's own mapping rows are the root's
        children.append(Op(
            name=child.name, source_object=child_source_object(kind, child), key_field=child.key_field,
            entity=child.target_entity, target=target_for(pipedrive, child.target_entity),
            mapper=Mapper(rules=_rules(specs), entity=child.target_entity, resolver=resolver,
                          external_id_field=child.external_id_field, create_missing_fields=create_missing),
            references=child.references, parent_field=child.parent_field, collection=child.collection,
            remove_missing=child.remove_missing, skip_when=child.skip_when))
    return root, children


def body_build(op: Op, record: dict[str, Any], external_id: str, *, parent_id: int | None = None) -> dict[str, Any]:
    """The mapped body; references are filled in afterwards by `references_fill` (one query per page)."""
    body = op.mapper.body(record, external_id)
    if isinstance(op.target, NoteTarget):
        body["content"] = str(body.get("content") or "") + NoteTarget.marker(op.source_object, external_id)
    if op.parent_field and parent_id is not None:
        body[op.parent_field] = parent_id
    return body


def children_of(op: Op, record: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The record's children for `op`; None when the record does not carry the collection at all (a read
    that left it out must not look like every child was removed)."""
    if op.collection not in record:
        return None
    value = record.get(op.collection)
    if value is None:
        return []
    if isinstance(value, dict) and isinstance(value.get("results"), list):
        value = value["results"]
    if not isinstance(value, list):
        raise MappingError(f"{op.collection} is not a list.")
    return [c for c in value if isinstance(c, dict) and not any(c.get(f) == v for f, v in op.skip_when)]


def references_fill(*, flow: Flow, op: Op, items: dict[str, tuple[dict, dict]]) -> dict[str, ConnectorError]:
    """Put the Pipedrive ids of referenced records into each body; returns the items whose required
    reference is not linked yet (a transient failure: the owning flow has not synced that record)."""
    errors: dict[str, ConnectorError] = {}
    for ref in op.references:
        wanted = {str(record.get(ref.source) or "").strip() for record, _ in items.values()} - {""}
        linked = dict(RecordLink.objects.filter(
            source_connection_id=flow.source_id, target_connection_id=flow.target_id,
            source_object=ref.source_object, external_id__in=list(wanted),
        ).values_list("external_id", "target_id")) if wanted else {}
        for external_id, (record, body) in items.items():
            key = str(record.get(ref.source) or "").strip()
            if key and key in linked:
                body[ref.target] = linked[key]
            elif ref.required or key:  # an optional reference that names a record still waits for it
                what = ref.label or ref.source_object
                errors[external_id] = ConnectorError(
                    f"The {what} {key or '(none)'} ({ref.source}) is not in Pipedrive yet; this record is sent "
                    f"again once the {ref.source_object} flow has synced it." if key else
                    f"The record has no {ref.source}, so it cannot be attached to a {what} in Pipedrive.",
                    permanent=not key)
    return errors
