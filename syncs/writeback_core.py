"""What both write-back modes share (syncs/writeback.py: deal won → a document; syncs/writeback_stage.py:
deal stage → an action on a document): the flow's kind, one batch's run and clients, the audit rows
(direction Pipedrive → ERP, written before the ERP call), reverse lookups through inbound links, notes on
the deal and the poll's starting point."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

from django.utils import timezone

from connectors.base import BudgetExhausted, ConnectorError, FlowKind
from connectors.registry import connector_for
from syncs.kinds import flow_kind_get
from syncs.ledger import Counters, excerpt
from syncs.models import Flow, RecordLink, SyncRecord, SyncRun

logger = logging.getLogger(__name__)

POLL_OVERLAP = timedelta(minutes=5)  # our clock vs. Pipedrive's update_time, and writes committing late
DEAL = "deals"


# --- the flow's kind -----------------------------------------------------------------------------
def writeback_kind(flow: Flow) -> FlowKind | None:
    """The flow's kind when it is a write-back flow (None for inbound flows and unknown kinds)."""
    try:
        kind = flow_kind_get(system=flow.source.system, name=flow.kind)
    except LookupError:
        return None
    return kind if kind.direction == "to_erp" and kind.writeback is not None else None


# --- collaborators of one batch (a webhook event or a poll) -------------------------------------
class Batch:
    """One SyncRun per webhook event (created only when there is something to do) or per poll, with
    the clients it uses and its counts."""

    def __init__(self, *, flow: Flow, kind: FlowKind, trigger: str, run: SyncRun | None = None):
        self.flow, self.kind, self.wb = flow, kind, kind.writeback
        self.trigger = trigger
        self._run = run
        self.counts = Counters()

    @property
    def run(self) -> SyncRun:
        if self._run is None:
            self._run = SyncRun.objects.create(tenant_id=self.flow.tenant_id, flow=self.flow, trigger=self.trigger)
        return self._run

    @property
    def started(self) -> bool:
        return self._run is not None

    @cached_property
    def erp(self) -> Any:
        return connector_for(self.flow.source)

    @cached_property
    def pipedrive(self) -> Any:
        return connector_for(self.flow.target)

    @cached_property
    def resolver(self) -> Any:
        from connectors.pipedrive.fields import FieldResolver

        return FieldResolver(self.pipedrive, self.pipedrive.company_key)

    def finish(self, status: str = "", error: str = "") -> SyncRun | None:
        if self._run is None:
            return None
        c = self.counts
        status = status or (SyncRun.Status.PARTIAL if c.failed else SyncRun.Status.SUCCEEDED)
        stats = getattr(self.__dict__.get("pipedrive"), "stats", None) or {}
        SyncRun.objects.filter(pk=self._run.pk).update(
            status=status, finished=timezone.now(), error=error[:2000], read=c.read, created=c.created,
            updated=c.updated, adopted=c.adopted, unchanged=c.unchanged, skipped=c.skipped, failed=c.failed,
            pipedrive_calls=stats.get("calls", 0), tokens_spent=stats.get("tokens", 0))
        self._run.refresh_from_db()
        return self._run

    def close(self) -> None:
        erp = self.__dict__.get("erp")
        if erp is not None and hasattr(erp, "close"):
            try:
                erp.close()  # B1 Logout
            except ConnectorError:
                pass


# --- audit rows --------------------------------------------------------------------------------
def audit_open(batch: Batch, *, deal_id: str, action: str, payload: Any, deal: dict[str, Any],
               replay_of: SyncRecord | None, target_id: str = "") -> SyncRecord:
    """The attempt's audit row, committed before the ERP call (a crash leaves it visible in flight)."""
    return SyncRecord.objects.create(
        tenant_id=batch.flow.tenant_id, run=batch.run, flow=batch.flow, direction=SyncRecord.Direction.TO_ERP,
        source_object=DEAL, external_id=deal_id, target_object=batch.wb.document, target_id=target_id,
        action=action, outcome=SyncRecord.Outcome.IN_FLIGHT, payload=payload, source_data=deal, replay_of=replay_of,
        attempt=(replay_of.attempt + 1) if replay_of else 1)


def audit_close(row: SyncRecord, *, outcome: str, error: ConnectorError | None = None, **fields: Any) -> None:
    fields.update(outcome=outcome, completed=timezone.now())
    if error is not None:
        fields.update(error_kind=error.kind, error_message=error.message[:2000], response_status=error.status,
                      response_excerpt=excerpt(getattr(error, "body", "") or ""))
    SyncRecord.objects.filter(pk=row.pk).update(**fields)
    for name, value in fields.items():
        setattr(row, name, value)


def audit_skip(batch: Batch, *, deal_id: str, deal: dict[str, Any], reason: str, replay_of: SyncRecord | None) -> None:
    batch.counts.skipped += 1
    SyncRecord.objects.create(
        tenant_id=batch.flow.tenant_id, run=batch.run, flow=batch.flow, direction=SyncRecord.Direction.TO_ERP,
        source_object=DEAL, external_id=deal_id, target_object=batch.wb.document, action=SyncRecord.Action.SKIP,
        outcome=SyncRecord.Outcome.OK, source_data=deal, replay_of=replay_of, response_excerpt=reason,
        attempt=(replay_of.attempt + 1) if replay_of else 1, completed=timezone.now())


def latest_failure(flow: Flow, deal_id: str) -> SyncRecord | None:
    from syncs.selectors import record_failures_outstanding

    return record_failures_outstanding(flow=flow).filter(external_id=deal_id).last()


def linked_keys(flow: Flow, source_object: str, pipedrive_ids: set[int]) -> dict[int, str]:
    """Pipedrive id → ERP key, from the links of the inbound flow that owns `source_object`."""
    if not pipedrive_ids:
        return {}
    rows = RecordLink.objects.filter(source_connection_id=flow.source_id, target_connection_id=flow.target_id,
                                     source_object=source_object, target_id__in=list(pipedrive_ids))
    return {target_id: external_id for external_id, target_id in rows.values_list("external_id", "target_id")}


def pipedrive_id(value: Any) -> int | None:
    if isinstance(value, dict):  # v1 payloads nest related records: {"value": 12, "name": ...}
        value = value.get("value", value.get("id"))
    try:
        return int(value) if value not in (None, "", 0) else None
    except (TypeError, ValueError):
        return None



def note_add(batch: Batch, deal_id: str, content: str) -> bool:
    """A note on the deal for the salesperson; False when it could not be written (logged, not raised:
    the failure is already on the audit row)."""
    try:
        batch.pipedrive.note_create(content=content, deal_id=int(deal_id))
    except ConnectorError as exc:
        logger.warning("flow %s: the note on deal %s failed: %s", batch.flow.pk, deal_id, exc.message)
        return False
    return True


# --- the scheduled poll (a write-back flow's run) ----------------------------------------------
def poll_since(flow: Flow) -> datetime:
    value = (flow.cursor or {}).get("deals_since")
    moment = None
    if value:
        try:
            moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            moment = None
    # A new flow starts from its creation: deals won before it existed are not written back.
    return (moment or flow.created) - POLL_OVERLAP



def poll_run(*, batch: Batch, retry: Callable[[Batch], None],
             handle: Callable[[list[dict[str, Any]]], None]) -> SyncRun:
    """The deal poll of both write-back modes: earlier transient failures first (`retry`), then the deals
    changed since the cursor a page at a time (`handle`), the cursor moving after each page; a budget pause
    or a connector failure ends the run in plain words."""
    flow = batch.flow
    try:
        retry(batch)
        latest = None
        for page in batch.pipedrive.entity_pages(DEAL, updated_since=poll_since(flow)):
            handle(page)
            stamps = [str(d.get("update_time")) for d in page if d.get("update_time")]
            if stamps:
                latest = max([latest or "", *stamps])
                cursor = {**(flow.cursor or {}), "deals_since": latest}
                Flow.objects.filter(pk=flow.pk).update(cursor=cursor, heartbeat_at=timezone.now())
                flow.cursor = cursor
        if not (flow.cursor or {}).get("deals_since"):  # nothing changed yet: start from now on
            cursor = {**(flow.cursor or {}), "deals_since": (timezone.now() - POLL_OVERLAP).isoformat()}
            Flow.objects.filter(pk=flow.pk).update(cursor=cursor)
            flow.cursor = cursor
        return batch.finish()
    except BudgetExhausted as exc:
        Flow.objects.filter(pk=flow.pk).update(paused_until=exc.resets_at, pause_reason=exc.message)
        return batch.finish(SyncRun.Status.PAUSED, error=exc.message)
    except ConnectorError as exc:
        return batch.finish(SyncRun.Status.FAILED, error=exc.message)
    finally:
        batch.close()
