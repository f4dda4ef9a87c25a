"""The engine's books: audit rows (written in flight before a call, completed after) and record links
(source key → Pipedrive id + payload hash), for every operation of a flow's plan."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import connection as db_connection
from django.db import transaction
from django.utils import timezone

from connectors.base import ConnectorError
from syncs.models import Flow, RecordLink, SyncRecord, SyncRun
from syncs.plan import Op

EXCERPT = 500
CREATES = (SyncRecord.Action.CREATE, SyncRecord.Action.RECREATE)
Replays = dict[tuple[str, str], SyncRecord]  # (source_object, external_id) → the failed row replayed


@dataclass
class Work:
    """One operation on one record that needs a Pipedrive call."""

    op: Op
    external_id: str
    body: dict[str, Any]
    digest: str
    source: dict[str, Any]
    link: RecordLink | None
    action: str
    audit: SyncRecord | None = None
    replay_of: SyncRecord | None = None
    result_id: int | None = None
    error: ConnectorError | None = None
    parent_key: str = ""
    parent_id: int | None = None


@dataclass
class Counters:
    read: int = 0
    created: int = 0
    updated: int = 0
    adopted: int = 0
    unchanged: int = 0
    skipped: int = 0
    failed: int = 0
    deleted: int = 0

    def ok(self, action: str) -> None:
        if action in CREATES:
            self.created += 1
        elif action == SyncRecord.Action.ADOPT:
            self.adopted += 1
        elif action == SyncRecord.Action.DELETE:
            self.deleted += 1
        else:
            self.updated += 1


def storable(value: Any) -> Any:
    """PostgreSQL refuses NUL in text and JSON: one bad ERP value must not fail the audit write (and with
    it the run), so NULs are shown as U+FFFD in what we keep."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd") if "\x00" in value else value
    if isinstance(value, dict):
        return {storable(k): storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [storable(v) for v in value]
    return value


def audit_target_id(value: Any) -> str:
    """Audit rows hold target ids as text (ERP document keys are not always numbers)."""
    return "" if value is None else str(value)


def excerpt(value: Any) -> str:
    text = storable(str(value))
    return text if len(text) <= EXCERPT else text[:EXCERPT] + "…"


class Ledger:
    def __init__(self, *, flow: Flow, run: SyncRun, counts: Counters):
        self.flow = flow
        self.run = run
        self.counts = counts

    def _links(self, op: Op):
        return RecordLink.objects.filter(source_connection=self.flow.source, target_connection=self.flow.target,
                                         source_object=op.source_object)

    def links_for(self, op: Op, keys: Iterable[str]) -> dict[str, RecordLink]:
        return {link.external_id: link for link in self._links(op).filter(external_id__in=list(keys))}

    def child_links_for(self, op: Op, parent_keys: Iterable[str]) -> dict[str, list[RecordLink]]:
        found: dict[str, list[RecordLink]] = {}
        for link in self._links(op).filter(parent_external_id__in=list(parent_keys)):
            found.setdefault(link.parent_external_id, []).append(link)
        return found

    def audit_new(self, *, op: Op, external_id: str, action: str, outcome: str, body=None, source=None,
                  replay_of: SyncRecord | None = None, **extra: Any) -> SyncRecord:
        if "target_id" in extra:
            extra["target_id"] = audit_target_id(extra["target_id"])
        return SyncRecord(
            tenant_id=self.flow.tenant_id, run=self.run, flow=self.flow, source_object=op.source_object,
            external_id=storable(external_id), target_object=op.entity, action=action, outcome=outcome,
            payload=storable(body), source_data=storable(source), replay_of=replay_of,
            attempt=(replay_of.attempt + 1) if replay_of else 1,
            **{k: storable(v) for k, v in extra.items()})

    def in_flight(self, work: list[Work]) -> None:
        """The audit rows of calls about to be made, committed before any call (a crash leaves them
        visible). The ERP record is kept only when the attempt fails; the payload is always kept."""
        for w in work:
            w.audit = self.audit_new(op=w.op, external_id=w.external_id, action=w.action,
                                     outcome=SyncRecord.Outcome.IN_FLIGHT, body=w.body, replay_of=w.replay_of,
                                     target_id=w.link.target_id if w.link else None)
        SyncRecord.objects.bulk_create([w.audit for w in work])

    def fail_unmapped(self, op: Op, record: dict, external_id: str, exc: ConnectorError,
                      replay_of: SyncRecord | None = None) -> None:
        self.counts.failed += 1
        self.audit_new(op=op, external_id=external_id or "(none)", action=SyncRecord.Action.FAIL,
                       outcome=SyncRecord.Outcome.FAILED, source=record, replay_of=replay_of,
                       error_kind=exc.kind, error_message=exc.message, completed=timezone.now()).save()

    def skip_foreign(self, op: Op, record, external_id, body, digest, link, replay_of) -> None:
        """Additive flows leave records they did not create alone; remembering the payload's hash makes
        the next unchanged re-read free and row-less, and a later ERP change leaves one row again."""
        RecordLink.objects.filter(pk=link.pk).update(payload_hash=digest)
        self.audit_new(op=op, external_id=external_id, action=SyncRecord.Action.SKIP, outcome=SyncRecord.Outcome.OK,
                       body=body, source=record, replay_of=replay_of, target_id=link.target_id,
                       response_excerpt="Left untouched: this Pipedrive record was not created by ml-connector "
                                        "and the flow is additive-only.",
                       completed=timezone.now()).save()

    def replay_unchanged(self, op: Op, external_id: str, body, record, link, replay_of) -> None:
        """A replay always leaves a row behind, even when nothing needs sending."""
        self.audit_new(op=op, external_id=external_id, action=SyncRecord.Action.SKIP, outcome=SyncRecord.Outcome.OK,
                       body=body, source=record, replay_of=replay_of, target_id=link.target_id,
                       response_excerpt="Already up to date in Pipedrive; no call needed.",
                       completed=timezone.now()).save()

    def link_for(self, w: Work) -> RecordLink:
        created_by_us = w.action in CREATES or (w.link is not None and w.link.created_by_us)
        return RecordLink(tenant_id=self.flow.tenant_id, source_connection=self.flow.source,
                          target_connection=self.flow.target, source_object=w.op.source_object,
                          external_id=w.external_id, target_object=w.op.entity, target_id=w.result_id,
                          payload_hash=w.digest, created_by_us=created_by_us, last_synced=timezone.now(),
                          parent_external_id=w.parent_key, parent_target_id=w.parent_id)

    def complete(self, work: list[Work]) -> None:
        """Links, audit completion and counters of one batch in one commit (a few statements, not 2N)."""
        now = timezone.now()
        rows, links, gone = [], [], []
        for w in work:
            audit = w.audit
            if w.error is None and w.result_id is not None:
                audit.outcome, audit.target_id = SyncRecord.Outcome.OK, audit_target_id(w.result_id)
                audit.response_status = 201 if w.action in CREATES else 200
                if w.action == SyncRecord.Action.DELETE:
                    gone.append(w.link.pk)
                else:
                    links.append(self.link_for(w))
                self.counts.ok(w.action)
            else:
                error = w.error or ConnectorError("No answer recorded.")
                audit.outcome, audit.error_kind = SyncRecord.Outcome.FAILED, error.kind
                audit.error_message, audit.response_status = storable(error.message[:2000]), error.status
                audit.response_excerpt = excerpt(getattr(error, "body", "") or "")
                if not getattr(error, "not_sent", False):
                    self.counts.failed += 1
            rows.append((now, audit.outcome, audit.target_id, audit.response_status, audit.error_kind,
                         audit.error_message, audit.response_excerpt, audit.action, audit.pk))
        with transaction.atomic():
            if links:
                RecordLink.objects.bulk_create(
                    links, update_conflicts=True,
                    unique_fields=["source_connection", "source_object", "target_connection", "external_id"],
                    update_fields=["target_id", "payload_hash", "created_by_us", "target_object", "last_synced",
                                   "parent_external_id", "parent_target_id"])
            if gone:
                RecordLink.objects.filter(pk__in=gone).delete()
            with db_connection.cursor() as cursor:
                cursor.executemany(
                    f"UPDATE {SyncRecord._meta.db_table} SET completed=%s, outcome=%s, target_id=%s, "
                    "response_status=%s, error_kind=%s, error_message=%s, response_excerpt=%s, action=%s "
                    "WHERE id=%s", rows)
            for w in work:
                if w.audit.outcome == SyncRecord.Outcome.FAILED:
                    SyncRecord.objects.filter(pk=w.audit.pk).update(source_data=storable(w.source))
