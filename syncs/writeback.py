"""Write-back: a Pipedrive deal that is won (or reaches a mapped stage) becomes one ERP document; the
entry points (webhook events, the poll, replays) also hand `action`-mode flows to syncs/writeback_stage.py.

Follow one deal: a webhook event (`deal_event_handle`, from the receiver's task) or the scheduled poll
of deals changed since a cursor (`deals_poll`, a write-back flow's run, so a missed webhook loses
nothing) finds a deal that matches the flow's trigger. `deal_writeback` claims the deal's
`WritebackLink` (one handler at a time; a done link ends it there: duplicates, the poll seeing it
again and our own number write coming back as a webhook all stop here), resolves the deal's
organization and products to ERP keys through the inbound flows' links, writes the audit row in
flight, looks in the ERP for a document carrying our reference (adopt) before creating one, looks
again when a create's answer was lost, records the document on the link, and writes its number back
to the deal. A rejection leaves a failed audit row in plain words and one note on the deal; it waits
for a fix and a replay (`records_replay`), while transient failures are retried by the next poll.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from connectors.base import BudgetExhausted, ConnectorError, FlowKind, WriteBack
from syncs import writeback_stage
from syncs.models import Flow, SyncRecord, SyncRun, WritebackLink
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
    writeback_kind,
)

logger = logging.getLogger(__name__)

CLAIM_STALE = timedelta(minutes=10)  # a handler gone mid-send: the next one looks by reference before creating
State = WritebackLink.State
__all__ = ["writeback_kind", "deal_event_handle", "deals_poll", "records_replay"]


# --- the flow's rule ---------------------------------------------------------------------------
def trigger_of(flow: Flow, kind: FlowKind) -> tuple[bool, frozenset[int]]:
    """(on won, stage ids) from the flow's `trigger` option: "won", a stage id or a list of them."""
    value = (flow.options or {}).get("trigger", kind.writeback.trigger)
    if value in (None, "", "won"):
        return True, frozenset()
    if isinstance(value, str):
        value = [part for part in value.replace(";", ",").split(",") if part.strip()]
    if not isinstance(value, list | tuple):
        value = [value]
    stages = set()
    for part in value:
        if str(part).strip() == "won":
            continue
        try:
            stages.add(int(str(part).strip()))
        except ValueError:
            continue
    return "won" in [str(v).strip() for v in value], frozenset(stages)


def trigger_matches(flow: Flow, kind: FlowKind, deal: dict[str, Any]) -> str:
    """Why the deal is due for write-back ("won", "stage 3"), or "" when it is not."""
    if not deal or deal.get("is_deleted") or deal.get("status") == "deleted":
        return ""
    on_won, stages = trigger_of(flow, kind)
    if on_won and deal.get("status") == "won":
        return "won"
    stage = deal.get("stage_id")
    if stages and stage in stages and deal.get("status") != "lost":
        return f"stage {stage}"
    return ""


def reference_of(wb: WriteBack, deal_id: str) -> str:
    return wb.reference.format(deal_id=deal_id)


# --- links: the exactly-once claim -------------------------------------------------------------
def link_claim(*, flow: Flow, deal_id: str, retry_failed: bool = False) -> tuple[WritebackLink, str]:
    """Claim the deal's link for this handler: (link, token), token "" when it is done, held by another
    live handler, or failed for a reason only a replay (`retry_failed`) should retry."""
    link, _ = WritebackLink.objects.get_or_create(flow=flow, deal_id=deal_id, defaults={"tenant_id": flow.tenant_id})
    now = timezone.now()
    token = uuid.uuid4().hex
    claimable = Q(state__in=[State.PENDING, State.CREATED]) | Q(state=State.SENDING, claimed_at__lt=now - CLAIM_STALE)
    claimable |= Q(state=State.FAILED) if retry_failed else Q(state=State.FAILED, error_kind="transient")
    taken = WritebackLink.objects.filter(claimable, pk=link.pk).update(state=State.SENDING, claim_token=token,
                                                                      claimed_at=now)
    link.refresh_from_db()
    return link, (token if taken else "")


def link_update(link: WritebackLink, token: str, **fields: Any) -> None:
    """Record progress while keeping the claim."""
    WritebackLink.objects.filter(pk=link.pk, claim_token=token).update(**fields)
    for name, value in fields.items():
        setattr(link, name, value)


def link_settle(link: WritebackLink, token: str, **fields: Any) -> None:
    """Record the outcome and let go of the claim."""
    WritebackLink.objects.filter(pk=link.pk, claim_token=token).update(claim_token="", claimed_at=None, **fields)
    for name, value in fields.items():
        setattr(link, name, value)



# --- building the ERP call from the deal -------------------------------------------------------
def _resolve(flow: Flow, refs, rows: list[dict[str, Any]], what: str) -> list[dict[str, Any]]:
    """Each row with its references' ERP keys filled in; a reference not linked is a permanent failure
    (the record was not synced from the ERP, so the ERP has no key for it)."""
    out = [dict(row) for row in rows]
    for ref in refs:
        ids = {pipedrive_id(row.get(ref.source)) for row in out} - {None}
        keys = linked_keys(flow, ref.source_object, ids)
        for row in out:
            pd_id = pipedrive_id(row.get(ref.source))
            if pd_id is not None and pd_id in keys:
                row[ref.target] = keys[pd_id]
            elif ref.required:
                label = ref.label or ref.source_object
                raise ConnectorError(
                    f"The {what}'s {label} {pd_id} is not linked to a {flow.source.get_system_display()} record "
                    f"({ref.target}); only records synced from there can go back." if pd_id else
                    f"The {what} has no {label}, so there is no {ref.target} to send.", permanent=True)
    return out


def payload_build(batch: Batch, deal: dict[str, Any], deal_id: str) -> dict[str, Any]:
    """The ERP client's create arguments: references resolved, the deal's products as lines (read
    from Pipedrive now: webhooks and deal lists do not carry them)."""
    wb = batch.wb
    resolved = _resolve(batch.flow, wb.references, [deal], "deal")[0]
    lines = [line for page in batch.pipedrive.deal_product_pages(int(deal_id)) for line in page
             if line.get("is_enabled", True) is not False]
    lines = _resolve(batch.flow, wb.line_references, lines, "deal product")
    try:
        return wb.build(resolved, lines, reference_of(wb, deal_id))
    except (KeyError, TypeError, ValueError) as exc:
        raise ConnectorError(f"The deal could not be turned into a {wb.document} ({exc}).", permanent=True) from None


# --- one deal ----------------------------------------------------------------------------------
def deal_writeback(*, batch: Batch, deal: dict[str, Any], trigger: str, retry_failed: bool = False,
                   replay_of: SyncRecord | None = None) -> str:
    """Write one deal back to the ERP, exactly once. Returns what happened, in one word."""
    flow, wb = batch.flow, batch.wb
    deal_id = str(deal.get("id") or "").strip()
    link, token = link_claim(flow=flow, deal_id=deal_id, retry_failed=retry_failed)
    if not token:
        if link.state == State.DONE:
            if replay_of is None:
                batch.counts.unchanged += 1
            else:  # a replay always leaves a row behind
                audit_skip(batch, deal_id=deal_id, deal=deal, replay_of=replay_of,
                           reason=f"Already written back: {wb.document} {link.document_number} (id {link.document_id}).")
        return link.state
    batch.counts.read += 1
    replay_of = replay_of or latest_failure(flow, deal_id)
    if link.document_id:  # the ERP has it already: only its number is missing on the deal
        return _number_step(batch, link, token, deal, replay_of)
    row = None
    try:
        payload = payload_build(batch, deal, deal_id)
        row = audit_open(batch, deal_id=deal_id, action=SyncRecord.Action.CREATE, payload=payload, deal=deal,
                         replay_of=replay_of)
        document, adopted = _document_make(batch, payload)
    except ConnectorError as exc:
        return _failed(batch, link, token, deal, exc, row=row, replay_of=replay_of, trigger=trigger)
    doc_id, number = str(document.get(wb.id_field) or ""), str(document.get(wb.number_field) or "")
    # Still claimed: recorded at once, so whatever happens next, no handler makes a second document.
    link_update(link, token, document_id=doc_id, document_number=number, error_kind="", error_message="")
    if adopted:
        batch.counts.adopted += 1
    else:
        batch.counts.created += 1
    action = SyncRecord.Action.ADOPT if adopted else SyncRecord.Action.CREATE
    audit_close(row, outcome=SyncRecord.Outcome.IN_FLIGHT, action=action, target_id=doc_id,
                response_status=200 if adopted else 201,
                response_excerpt=f"{wb.document} {number} (id {doc_id}) " + ("found by our reference "
                                 f"{reference_of(wb, deal_id)}" if adopted else "created"))
    return _number_write(batch, link, token, row, number, deal_id)


def _document_make(batch: Batch, payload: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """(document, adopted): the one carrying our reference if the ERP has it, else a new one. A create
    whose answer was lost may have happened: look again before anything else."""
    wb, erp = batch.wb, batch.erp
    find, create = getattr(erp, wb.find), getattr(erp, wb.create)
    reference = payload.get("reference") or ""
    existing = find(reference=reference)
    if existing:
        return existing, True
    try:
        return create(**payload), False
    except ConnectorError as exc:
        if not getattr(exc, "ambiguous", False):
            raise
        logger.info("flow %s: the answer to creating %s was lost; looking for it", batch.flow.pk, reference)
    existing = find(reference=reference)
    if existing:
        return existing, True
    return create(**payload), False  # it did not happen: a second lost answer stays failed (transient)


def _number_step(batch: Batch, link: WritebackLink, token: str, deal: dict[str, Any],
                 replay_of: SyncRecord | None) -> str:
    row = audit_open(batch, deal_id=link.deal_id, action=SyncRecord.Action.UPDATE,
                     payload={batch.wb.deal_field: link.document_number}, deal=deal, replay_of=replay_of,
                     target_id=link.document_id)
    return _number_write(batch, link, token, row, link.document_number, link.deal_id, counted=True)


def _number_write(batch: Batch, link: WritebackLink, token: str, row: SyncRecord, number: str, deal_id: str,
                  counted: bool = False) -> str:
    """The document number onto the deal's custom field. Its own change event comes back as a webhook
    and stops at the done link; a failure leaves the link `created`, retried without a new document."""
    wb = batch.wb
    try:
        if wb.deal_field and number:
            create_missing = (batch.flow.options or {}).get("create_missing_fields", True)
            key = (batch.resolver.ensure(DEAL, wb.deal_field, "varchar") if create_missing
                   else batch.resolver.key(DEAL, wb.deal_field))
            batch.pipedrive.entity_update(DEAL, deal_id, {"custom_fields": {key: number}})
    except ConnectorError as exc:
        message = (f"The {batch.flow.source.get_system_display()} {wb.document} {number} exists, but writing its "
                   f"number to the deal failed: {exc.message}")
        failure = ConnectorError(message, permanent=exc.permanent and not exc.auth, status=exc.status)
        link_settle(link, token, state=State.CREATED, error_kind=failure.kind, error_message=message)
        audit_close(row, outcome=SyncRecord.Outcome.FAILED, error=failure)
        batch.counts.failed += 1
        return "failed"
    link_settle(link, token, state=State.DONE, error_kind="", error_message="")
    audit_close(row, outcome=SyncRecord.Outcome.OK)
    if counted:
        batch.counts.updated += 1
    return "done"


def _failed(batch: Batch, link: WritebackLink, token: str, deal: dict[str, Any], exc: ConnectorError, *,
            row: SyncRecord | None, replay_of: SyncRecord | None, trigger: str) -> str:
    """A failure in plain words on the audit row and the link; a permanent one (the ERP rejected the
    document, or the deal cannot be mapped) also gets one note on the deal, once per distinct reason."""
    wb = batch.wb
    system = batch.flow.source.get_system_display()
    if isinstance(exc, BudgetExhausted):
        link_settle(link, token, state=State.FAILED, error_kind="transient", error_message=exc.message)
        raise exc
    message = f"No {system} {wb.document} was made for this deal (trigger: {trigger}): {exc.message}"
    failure = ConnectorError(message, permanent=exc.permanent, auth=exc.auth, status=exc.status)
    failure.body = getattr(exc, "body", "")
    if row is None:
        row = audit_open(batch, deal_id=link.deal_id, action=SyncRecord.Action.FAIL, payload=None, deal=deal,
                         replay_of=replay_of)
    audit_close(row, outcome=SyncRecord.Outcome.FAILED, error=failure)
    batch.counts.failed += 1
    noted = link.noted_error
    if failure.permanent and not failure.auth and noted != message:
        noted = _note(batch, link.deal_id, message) or noted
    link_settle(link, token, state=State.FAILED, error_kind=failure.kind, error_message=message, noted_error=noted)
    return "failed"


def _note(batch: Batch, deal_id: str, message: str) -> str:
    """Tell the salesperson on the deal itself; returns the message noted ("" when the note failed)."""
    content = (f"<b>ml-connector could not create the {batch.flow.source.get_system_display()} "
               f"{batch.wb.document.rstrip('s')} for this deal.</b><br>{message}<br>Once it is fixed, replay the "
               f"failed record of the flow “{batch.flow.name}”.")
    return message if note_add(batch, deal_id, content) else ""


# --- webhook events ----------------------------------------------------------------------------
def own_change(batch: Batch, event: Any) -> bool:
    """The change event of our own write (the document number on the deal): nothing but that field
    changed, through the API."""
    previous = getattr(event, "previous", None)
    if not isinstance(previous, dict) or not batch.wb.deal_field:
        return False
    if str(getattr(event, "change_source", "") or "api") != "api":
        return False
    changed = set(previous) - {"update_time"}
    custom = previous.get("custom_fields")
    if changed != {"custom_fields"} or not isinstance(custom, dict) or not custom:
        return False
    try:
        field = batch.resolver.find(DEAL, batch.wb.deal_field)
    except ConnectorError:
        return False
    return field is not None and set(custom) == {field["field_code"]}


def deal_event_handle(*, event: Any) -> list[str]:
    """A deal event from the webhook receiver's task: hand the deal to every enabled write-back flow
    whose Pipedrive connection it came from. Returns one outcome per flow."""
    from syncs.selectors import writeback_flows

    if getattr(event, "object", "") != "deal" or getattr(event, "action", "") not in ("create", "change"):
        return []
    current = getattr(event, "current", None)
    if not isinstance(current, dict):
        return []
    outcomes = []
    for flow in writeback_flows(connection=event.connection):
        outcomes.append(deal_event_apply(flow=flow, event=event))
    return outcomes


def deal_event_apply(*, flow: Flow, event: Any) -> str:
    kind = writeback_kind(flow)
    if kind is None:
        return "not a write-back flow"
    if kind.writeback.mode == "action":
        return writeback_stage.stage_event_apply(flow=flow, kind=kind, event=event)
    deal = {**event.current, "id": event.current.get("id") or event.entity_id}
    deal_id = str(deal["id"])
    link = WritebackLink.objects.filter(flow=flow, deal_id=deal_id).only("state", "error_kind").first()
    if link is not None and (link.state in (State.DONE, State.SENDING)
                             or link.state == State.FAILED and link.error_kind != "transient"):
        return link.state  # repeated deliveries, our own number write coming back, a rejection awaiting replay
    if not trigger_matches(flow, kind, deal):
        return "not triggered"
    batch = Batch(flow=flow, kind=kind, trigger=SyncRun.Trigger.WEBHOOK)
    try:
        if own_change(batch, event):
            return "own change"
        fresh = batch.pipedrive.entity_get(DEAL, deal_id)  # the payload is a hint: act on the deal as it is now
        trigger = trigger_matches(flow, kind, fresh or {})
        if not trigger:
            return "not triggered"
        outcome = deal_writeback(batch=batch, deal=fresh, trigger=trigger)
        batch.finish()
        return outcome
    except BudgetExhausted as exc:  # the poll picks the deal up after the reset
        batch.finish(SyncRun.Status.PAUSED, error=exc.message)
        return "paused"
    except ConnectorError as exc:
        logger.warning("flow %s: deal %s event not handled: %s", flow.pk, deal_id, exc.message)
        batch.finish(SyncRun.Status.FAILED, error=exc.message)
        return "failed"
    finally:
        batch.close()


# --- the scheduled poll (a write-back flow's run) ----------------------------------------------
def deals_poll(*, flow: Flow, run: SyncRun) -> SyncRun:
    """Deals changed since the cursor that match the trigger and have no done link, plus the transient
    failures of earlier attempts; the cursor moves after each page."""
    kind = writeback_kind(flow)
    if kind is None:
        SyncRun.objects.filter(pk=run.pk).update(status=SyncRun.Status.FAILED, finished=timezone.now(),
                                                 error=f"{flow.kind} is not a write-back flow kind.")
        run.refresh_from_db()
        return run
    if kind.writeback.mode == "action":
        return writeback_stage.stages_poll(flow=flow, kind=kind, run=run)
    batch = Batch(flow=flow, kind=kind, trigger=run.trigger, run=run)

    def handle(page: list[dict[str, Any]]) -> None:
        due = {str(d["id"]): d for d in page if trigger_matches(flow, kind, d)}
        settled = set(WritebackLink.objects.filter(flow=flow, deal_id__in=list(due)).filter(
            Q(state=State.DONE) | Q(state=State.FAILED) & ~Q(error_kind="transient")).values_list(
            "deal_id", flat=True))
        for deal_id, deal in due.items():
            if deal_id in settled:
                batch.counts.unchanged += 1
                continue
            deal_writeback(batch=batch, deal=deal, trigger=trigger_matches(flow, kind, deal))

    return poll_run(batch=batch, retry=_retry_outstanding, handle=handle)


def _retry_outstanding(batch: Batch) -> None:
    """Transient failures of earlier attempts, bounded like the inbound direction's."""
    from syncs.selectors import record_failures_outstanding

    max_attempts = getattr(settings, "SYNC_MAX_AUTO_ATTEMPTS", 5)
    rows = list(record_failures_outstanding(flow=batch.flow).filter(
        error_kind="transient", attempt__lt=max_attempts).exclude(run=batch.run)[:500])
    if rows:
        _send_again(batch, rows, retry_failed=False)


def _send_again(batch: Batch, rows: list[SyncRecord], *, retry_failed: bool) -> None:
    """Read each row's deal as it is now and write it back again (replays and automatic retries)."""
    for row in rows:
        deal_id = row.external_id
        deal = batch.pipedrive.entity_get(DEAL, deal_id)
        trigger = trigger_matches(batch.flow, batch.kind, deal or {})
        if not trigger:
            reason = ("The deal is deleted in Pipedrive; nothing was sent." if not deal else
                      "The deal no longer matches the flow's trigger (won or a mapped stage); nothing was sent.")
            audit_skip(batch, deal_id=deal_id, deal=deal or {}, reason=reason, replay_of=row)
            continue
        deal_writeback(batch=batch, deal=deal, trigger=trigger, retry_failed=retry_failed, replay_of=row)


def records_replay(*, flow: Flow, run: SyncRun, rows: list[SyncRecord]) -> SyncRun:
    """Replay failed write-back rows (admin, portal, API, command line): the deal is read again and
    written back, adopting a document that a lost answer left behind; a link already done just says so."""
    kind = writeback_kind(flow)
    if kind.writeback.mode == "action":
        return writeback_stage.stages_replay(flow=flow, kind=kind, run=run, rows=rows)
    batch = Batch(flow=flow, kind=kind, trigger=run.trigger, run=run)
    try:
        _send_again(batch, sorted(rows, key=lambda r: r.pk), retry_failed=True)
        return batch.finish()
    except BudgetExhausted as exc:
        return batch.finish(SyncRun.Status.PAUSED, error=exc.message)
    except ConnectorError as exc:
        return batch.finish(SyncRun.Status.FAILED, error=exc.message)
    finally:
        batch.close()
