"""Write-back in action mode: a deal moved into a stage the flow maps runs that stage's action on the ERP
document the deal came from (IFS: Pipedrive stage → a bound action on the customer order).

Exactly once per stage change: the key is (deal, stage, the deal's `stage_change_time`), one
`WritebackAction` row each, claimed by one handler at a time. Duplicate deliveries, the poll seeing the
deal again, and the deal updates our own action causes (the inbound orders flow writing the new order
status onto the deal) all carry the same key, or no stage change at all, so they stop there. A deal the
inbound flow creates has never changed stage (`stage_change_time` empty) and starts nothing. A missed
webhook is caught by the poll of deals changed since its cursor. A stale ETag is re-read and retried
once by the client, then left failed (transient, retried by later polls); a refusal (an invalid
transition) is a failed audit row and a note on the deal saying why.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from connectors.base import BudgetExhausted, ConnectorError, FlowKind
from syncs.models import Flow, SyncRecord, SyncRun, WritebackAction
from syncs.writeback_core import (
    DEAL,
    Batch,
    audit_close,
    audit_open,
    audit_skip,
    latest_failure,
    linked_keys,
    note_add,
    pipedrive_id,
    poll_run,
)

logger = logging.getLogger(__name__)

CLAIM_STALE = timedelta(minutes=10)  # a handler gone mid-call: the next one re-reads the order first
State = WritebackAction.State


# --- the flow's table: Pipedrive stage → action -----------------------------------------------------
def stage_actions_clean(*, kind: FlowKind, value: Any) -> dict[str, str]:
    """The `stage_actions` option as {"<stage id>": "<action>"}; ValueError in plain words otherwise."""
    known = [name for name, _ in kind.writeback.actions]
    if value in (None, ""):
        return {}
    if not isinstance(value, dict):
        raise ValueError('The stage table must map Pipedrive stage ids to actions, like {"3": "Release"}.')
    table: dict[str, str] = {}
    for stage, action in value.items():
        try:
            stage_id = int(str(stage).strip())
        except ValueError:
            stage_id = 0
        if stage_id <= 0:
            raise ValueError(f"“{stage}” is not a Pipedrive stage id (a whole number above 0).")
        name = str(action or "").strip()
        match = next((k for k in known if k.lower() == name.lower()), None)
        if match is None:
            raise ValueError(f"“{name}” is not an action this flow can run on an order (stage {stage_id}). "
                             f"Known actions: {', '.join(known)}.")
        table[str(stage_id)] = match
    return table


def stage_actions(flow: Flow, kind: FlowKind) -> dict[int, str]:
    try:
        table = stage_actions_clean(kind=kind, value=(flow.options or {}).get("stage_actions"))
    except ValueError:
        logger.warning("flow %s: its stage table is invalid; no stage runs an action", flow.pk)
        return {}
    return {int(stage): action for stage, action in table.items()}


def _moment(value: Any) -> datetime | None:
    """Pipedrive's times: v2 `2026-11-29T10:00:00Z`, v1 `2026-11-29 10:00:00` (both UTC)."""
    if value in (None, ""):
        return None
    try:
        moment = datetime.fromisoformat(str(value).strip().replace(" ", "T").replace("Z", "+00:00"))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC).replace(microsecond=0)


def stage_change(flow: Flow, deal: dict[str, Any]) -> tuple[int, str] | None:
    """(stage id, stage change time) of the deal's last move, or None: never moved (a deal the inbound
    flow created), moved before this flow existed, deleted, or no stage."""
    if not deal or deal.get("is_deleted") or deal.get("status") == "deleted":
        return None
    moment = _moment(deal.get("stage_change_time"))
    stage = pipedrive_id(deal.get("stage_id"))
    if moment is None or stage is None or moment < flow.created.replace(microsecond=0) - timedelta(seconds=1):
        return None
    return stage, moment.isoformat()


# --- the exactly-once claim ---------------------------------------------------------------------
def action_claim(*, flow: Flow, deal_id: str, stage_id: int, changed_at: str, action: str,
                 retry_failed: bool = False) -> tuple[WritebackAction, str]:
    """(row, token); token "" when the change is done, held by a live handler, or failed for a reason
    only a replay (`retry_failed`) should retry."""
    row, _ = WritebackAction.objects.get_or_create(
        flow=flow, deal_id=deal_id, stage_id=stage_id, changed_at=changed_at,
        defaults={"tenant_id": flow.tenant_id, "action": action})
    now = timezone.now()
    token = uuid.uuid4().hex
    claimable = Q(state=State.PENDING) | Q(state=State.SENDING, claimed_at__lt=now - CLAIM_STALE)
    claimable |= Q(state=State.FAILED) if retry_failed else Q(state=State.FAILED, error_kind="transient")
    taken = WritebackAction.objects.filter(claimable, pk=row.pk).update(state=State.SENDING, claim_token=token,
                                                                       claimed_at=now, action=action)
    row.refresh_from_db()
    return row, (token if taken else "")


def action_settle(row: WritebackAction, token: str, **fields: Any) -> None:
    WritebackAction.objects.filter(pk=row.pk, claim_token=token).update(claim_token="", claimed_at=None, **fields)
    for name, value in fields.items():
        setattr(row, name, value)


# --- one stage change ---------------------------------------------------------------------------
def document_key(batch: Batch, deal: dict[str, Any]) -> str:
    """The ERP document the deal came from, through the inbound flow's link."""
    ref = batch.wb.document_of
    deal_pd_id = pipedrive_id(deal.get(ref.source))
    key = linked_keys(batch.flow, ref.source_object, {deal_pd_id} if deal_pd_id else set()).get(deal_pd_id)
    if not key:
        system = batch.flow.source.get_system_display()
        raise ConnectorError(f"The deal is not linked to a {system} {ref.label or ref.source_object}: only deals "
                             f"the {ref.source_object} flow made from {system} can change its status.", permanent=True)
    return key


def stage_apply(*, batch: Batch, deal: dict[str, Any], retry_failed: bool = False,
                replay_of: SyncRecord | None = None) -> str:
    """Run the action of the deal's current stage once. Returns what happened, in one word."""
    flow, wb = batch.flow, batch.wb
    deal_id = str(deal.get("id") or "").strip()
    change = stage_change(flow, deal)
    action = stage_actions(flow, batch.kind).get(change[0]) if change else None
    if not change or not action:
        if replay_of is not None:
            audit_skip(batch, deal_id=deal_id, deal=deal, replay_of=replay_of,
                       reason="The deal is no longer in a stage this flow maps to an action; nothing was sent.")
        return "not triggered"
    stage_id, changed_at = change
    claim, token = action_claim(flow=flow, deal_id=deal_id, stage_id=stage_id, changed_at=changed_at,
                                action=action, retry_failed=retry_failed)
    if not token:
        if replay_of is not None:
            audit_skip(batch, deal_id=deal_id, deal=deal, replay_of=replay_of,
                       reason=f"Already done for this stage change: {claim.result or claim.state}.")
        else:
            batch.counts.unchanged += 1
        return claim.state
    batch.counts.read += 1
    replay_of = replay_of or latest_failure(flow, deal_id)
    done_state = dict(wb.actions).get(action, "")
    row = None
    try:
        key = document_key(batch, deal)
        row = audit_open(batch, deal_id=deal_id, action=SyncRecord.Action.UPDATE, deal=deal, replay_of=replay_of,
                         target_id=key, payload={"action": action, "stage_id": stage_id, "stage_change_time": changed_at})
        outcome = getattr(batch.erp, wb.act)(**{wb.document_of.target: key}, action=action, done_state=done_state)
    except BudgetExhausted:
        action_settle(claim, token, state=State.FAILED, error_kind="transient", error_message="Pipedrive budget")
        raise
    except ConnectorError as exc:
        return _failed(batch, claim, token, deal, exc, row=row, replay_of=replay_of, action=action)
    before = (outcome.get("order") or {}).get("Objstate", "")
    if outcome.get("ran"):
        batch.counts.updated += 1
        result = f"{action} ran on {wb.document} {key}" + (f" (was {before})" if before else "")
    else:
        batch.counts.unchanged += 1
        result = f"{wb.document} {key} is already {before}; nothing sent"
    action_settle(claim, token, state=State.DONE, document_id=key, result=result[:200], error_kind="",
                  error_message="")
    audit_close(row, outcome=SyncRecord.Outcome.OK, response_status=200 if outcome.get("ran") else 304,
                response_excerpt=result)
    return "done"


def _failed(batch: Batch, claim: WritebackAction, token: str, deal: dict[str, Any], exc: ConnectorError, *,
            row: SyncRecord | None, replay_of: SyncRecord | None, action: str) -> str:
    """A failed audit row in plain words; a refusal (permanent) also gets a note on the deal."""
    system = batch.flow.source.get_system_display()
    message = f"{action} was not run in {system} for this deal's stage change: {exc.message}"
    failure = ConnectorError(message, permanent=exc.permanent, auth=exc.auth, status=exc.status)
    failure.body = getattr(exc, "body", "")
    if row is None:
        row = audit_open(batch, deal_id=claim.deal_id, action=SyncRecord.Action.FAIL, payload=None, deal=deal,
                         replay_of=replay_of)
    audit_close(row, outcome=SyncRecord.Outcome.FAILED, error=failure)
    batch.counts.failed += 1
    if failure.permanent and not failure.auth:
        note_add(batch, claim.deal_id, (
            f"<b>ml-connector could not move the {system} order for this deal.</b><br>{message}<br>Move the deal "
            f"back, or fix it in {system} and replay the failed record of the flow “{batch.flow.name}”."))
    action_settle(claim, token, state=State.FAILED, error_kind=failure.kind, error_message=message)
    return "failed"


# --- entry points (called by syncs/writeback.py for action-mode flows) ----------------------------
def _stage_moved(event: Any) -> bool:
    """Whether the event can be a stage change: v2 `previous` holds only what changed, v1 the whole deal;
    a create has none (a deal made in a stage has not moved)."""
    previous = getattr(event, "previous", None)
    if not isinstance(previous, dict):
        return False
    if "stage_id" not in previous:
        return False
    return pipedrive_id(previous.get("stage_id")) != pipedrive_id((event.current or {}).get("stage_id"))


def stage_event_apply(*, flow: Flow, kind: FlowKind, event: Any) -> str:
    """A deal webhook: only a stage change into a mapped stage costs a call (the deal read fresh)."""
    if getattr(event, "action", "") != "change" or not _stage_moved(event):
        return "no stage change"  # our own status echo (a custom field) and the inbound flow's writes stop here
    current = {**event.current, "id": event.current.get("id") or event.entity_id}
    change = stage_change(flow, current)
    if change is None or change[0] not in stage_actions(flow, kind):
        return "not triggered"
    done = WritebackAction.objects.filter(flow=flow, deal_id=str(current["id"]), stage_id=change[0],
                                          changed_at=change[1]).exclude(state=State.PENDING).first()
    if done is not None and not (done.state == State.FAILED and done.error_kind == "transient"):
        return done.state  # a duplicate delivery
    batch = Batch(flow=flow, kind=kind, trigger=SyncRun.Trigger.WEBHOOK)
    try:
        fresh = batch.pipedrive.entity_get(DEAL, str(current["id"]))  # act on the deal as it is now
        outcome = stage_apply(batch=batch, deal=fresh or {})
        batch.finish()
        return outcome
    except BudgetExhausted as exc:
        batch.finish(SyncRun.Status.PAUSED, error=exc.message)
        return "paused"
    except ConnectorError as exc:
        logger.warning("flow %s: deal %s stage event not handled: %s", flow.pk, current["id"], exc.message)
        batch.finish(SyncRun.Status.FAILED, error=exc.message)
        return "failed"
    finally:
        batch.close()


def stages_poll(*, flow: Flow, kind: FlowKind, run: SyncRun) -> SyncRun:
    """Deals changed since the cursor whose latest stage change is mapped and not settled, plus transient
    failures of earlier attempts; the cursor moves after each page."""
    batch = Batch(flow=flow, kind=kind, trigger=run.trigger, run=run)
    table = stage_actions(flow, kind)

    def handle(page: list[dict[str, Any]]) -> None:
        due = {}
        for deal in page:
            change = stage_change(flow, deal)
            if change and change[0] in table:
                due[(str(deal["id"]), *change)] = deal
        settled = _settled(flow, due)
        for key, deal in due.items():
            if key in settled:
                batch.counts.unchanged += 1
                continue
            stage_apply(batch=batch, deal=deal)

    return poll_run(batch=batch, retry=_retry_outstanding, handle=handle)


def _settled(flow: Flow, due: dict[tuple[str, int, str], Any]) -> set[tuple[str, int, str]]:
    if not due:
        return set()
    rows = WritebackAction.objects.filter(flow=flow, deal_id__in={k[0] for k in due}).filter(
        Q(state=State.DONE) | Q(state=State.FAILED) & ~Q(error_kind="transient"))
    return {(r.deal_id, r.stage_id, r.changed_at) for r in rows.only("deal_id", "stage_id", "changed_at")}


def _retry_outstanding(batch: Batch) -> None:
    from syncs.selectors import record_failures_outstanding

    max_attempts = getattr(settings, "SYNC_MAX_AUTO_ATTEMPTS", 5)
    rows = list(record_failures_outstanding(flow=batch.flow).filter(
        error_kind="transient", attempt__lt=max_attempts).exclude(run=batch.run)[:500])
    for row in rows:
        deal = batch.pipedrive.entity_get(DEAL, row.external_id)
        stage_apply(batch=batch, deal=deal or {"id": row.external_id}, replay_of=row)


def stages_replay(*, flow: Flow, kind: FlowKind, run: SyncRun, rows: list[SyncRecord]) -> SyncRun:
    """Replay failed rows: the deal is read again and its current stage's action run (a change already
    done just says so)."""
    batch = Batch(flow=flow, kind=kind, trigger=run.trigger, run=run)
    try:
        for row in sorted(rows, key=lambda r: r.pk):
            deal = batch.pipedrive.entity_get(DEAL, row.external_id)
            stage_apply(batch=batch, deal=deal or {"id": row.external_id}, retry_failed=True, replay_of=row)
        return batch.finish()
    except BudgetExhausted as exc:
        return batch.finish(SyncRun.Status.PAUSED, error=exc.message)
    except ConnectorError as exc:
        return batch.finish(SyncRun.Status.FAILED, error=exc.message)
    finally:
        batch.close()
