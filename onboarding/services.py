"""Writes of the onboarding wizard: the chosen flows (created paused), mapping rows added with the field
picker, look-ups queued for a worker, and enabling."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from connectors.base import ConnectorError
from connectors.models import Connection
from connectors.registry import SYSTEMS, flow_kinds
from onboarding.models import WizardJob
from onboarding.sandbox import sandbox_offered
from syncs.kinds import flow_kind_get
from syncs.models import Flow
from syncs.services import flow_create, flow_mappings_set, flow_pause, flow_resume, flow_schedule_set
from tenants.models import Tenant

NOT_STARTED = "Not started yet: finish the set-up wizard (or press Resume)."


def erp_choices() -> list[dict[str, Any]]:
    """Every ERP in the registry: available when it has a client and flows, "coming soon" otherwise."""
    choices = []
    for system in SYSTEMS:
        if system.key == "pipedrive":
            continue
        kinds = flow_kinds(system.key)
        available = bool(system.client) and bool(kinds)
        choices.append(
            {
                "key": system.key,
                "label": system.label,
                "available": available,
                "kinds": [k.label for k in kinds.values()],
                "sandbox": available and sandbox_offered(system=system.key),
            }
        )
    return choices


def wizard_flows_create(
    *, tenant: Tenant, source: Connection, target: Connection, kinds: list[str]
) -> list[Flow]:
    """One paused flow per chosen kind (in the registry's order, so referenced flows come first); the
    wizard enables them at its last step."""
    known = flow_kinds(source.system)
    unknown = [k for k in kinds if k not in known]
    if unknown or not kinds:
        raise ValueError(
            f"Choose what to sync among {', '.join(known)}."
            if not kinds
            else f"{source.get_system_display()} cannot sync {', '.join(unknown)}."
        )
    flows = []
    with transaction.atomic():
        for name in [k for k in known if k in kinds]:
            flow = Flow.objects.filter(tenant=tenant, source=source, target=target, kind=name).first()
            if flow is None:
                flow = flow_create(tenant=tenant, source=source, target=target, kind=name, enabled=False)
                flow_pause(flow=flow, reason=NOT_STARTED)
            flows.append(flow)
    return flows


def wizard_mapping_add(*, flow: Flow, source: str, target: str) -> None:
    """Append one mapping row (the field picker's choice); a row already writing `target` is replaced."""
    rows = [
        {"id": m.pk, "source": m.source, "target": m.target, "lookup": m.lookup, "required": m.required}
        for m in flow.mappings.all()
        if m.target != target
    ]
    rows.append({"source": source, "target": target, "lookup": None, "required": False})
    flow_mappings_set(flow=flow, rows=rows)


def wizard_job_queue(
    *, tenant: Tenant, kind: str, flow: Flow | None = None, params: dict[str, Any] | None = None
) -> WizardJob:
    """Store the look-up and hand it to a worker (`onboarding.tasks.wizard_job_task`); the caller polls it."""
    from django_q.tasks import async_task

    job = WizardJob.objects.create(tenant=tenant, kind=kind, flow=flow, params=params or {})
    async_task("onboarding.tasks.wizard_job_task", job.pk, task_name=f"wizard-{kind}-{job.pk}")
    job.refresh_from_db()  # in django-q2's sync mode (tests) the worker has run already
    return job


def wizard_job_execute(*, job: WizardJob) -> WizardJob:
    """A worker's half: run the look-up and store its result, or a plain-words error. Never raises."""
    from onboarding.estimate import flows_estimate
    from onboarding.preview import mapping_preview, pipedrive_field_create

    result: Any = None
    error = ""
    try:
        if job.kind == WizardJob.Kind.MAP:
            result = mapping_preview(flow=job.flow)
        elif job.kind == WizardJob.Kind.FIELD_CREATE:
            created = pipedrive_field_create(
                flow=job.flow, name=job.params["name"], field_type=job.params.get("field_type") or "varchar"
            )
            result = {**mapping_preview(flow=job.flow), "created": created}
        elif job.kind == WizardJob.Kind.ESTIMATE:
            flows = list(
                Flow.objects.filter(tenant=job.tenant, pk__in=job.params.get("flow_ids") or [])
                .select_related("source", "target")
                .order_by("pk")
            )
            result = flows_estimate(flows=flows)
        else:
            error = f"Unknown look-up {job.kind!r}."
    except ConnectorError as exc:
        error = exc.message
    except Exception:  # a bug must not leave the page polling forever; the message stays generic
        import logging

        logging.getLogger(__name__).exception("wizard job %s failed", job.pk)
        error = "The look-up failed unexpectedly. Support has been notified."
    WizardJob.objects.filter(pk=job.pk).update(
        status=WizardJob.Status.FAILED if error else WizardJob.Status.DONE,
        result=result,
        error=error,
        finished=timezone.now(),
    )
    job.refresh_from_db()
    return job


def wizard_enable(*, flows: list[Flow], interval_minutes: int) -> list[Flow]:
    """Set the schedule, resume every flow, and start the first sync now (not at the next dispatcher tick)."""
    from django_q.tasks import async_task

    enabled = []
    for flow in flows:
        flow_kind_get(system=flow.source.system, name=flow.kind)  # LookupError for a kind gone since
        flow = flow_schedule_set(
            flow=flow,
            name=flow.name,
            interval_minutes=interval_minutes,
            create_missing_fields=bool((flow.options or {}).get("create_missing_fields", True)),
        )
        enabled.append(flow_resume(flow=flow))
    for flow in enabled:
        async_task("syncs.tasks.flow_run_task", flow.pk, "manual", task_name=f"flow-{flow.pk}-first")
    return enabled
