"""Where alerts learn of state changes: syncs' `run_finished` and connectors' `connection_tested`
signals (alerts depends on them; they never import alerts). Each rule maps what happened onto a
subject's state; `alert_state_change` sends one message per change."""

from __future__ import annotations

from datetime import UTC

from django.dispatch import receiver
from django.urls import reverse

from alerts.models import Alert
from alerts.services import OK, AlertMessage, alert_state_change
from connectors.models import Connection
from connectors.signals import connection_tested
from syncs.models import Flow, SyncRun
from syncs.signals import run_finished

FAILING, REJECTED, RESERVE = "failing", "rejected", "reserve_reached"
# Runs that say nothing about health: still going, stopped by a pause, or cut off by a dead worker.
_FLOW_OK = (SyncRun.Status.SUCCEEDED, SyncRun.Status.PARTIAL)


@receiver(run_finished, dispatch_uid="alerts.run_finished")
def on_run_finished(sender, run: SyncRun | None, **kwargs) -> None:
    if run is None:
        return
    flow = Flow.objects.select_related("tenant", "source", "target").get(pk=run.flow_id)
    flow_state_follow(flow=flow, run=run)
    for connection in (flow.source, flow.target):
        connection_state_follow(connection=connection)
    budget_state_follow(flow=flow, run=run)


@receiver(connection_tested, dispatch_uid="alerts.connection_tested")
def on_connection_tested(sender, connection: Connection, **kwargs) -> None:
    connection_state_follow(connection=connection)


def flow_state_follow(*, flow: Flow, run: SyncRun) -> None:
    link = reverse("flow_detail", kwargs={"id": flow.pk})
    if run.status == SyncRun.Status.FAILED:
        message = AlertMessage(
            Alert.Kind.FLOW_FAILING,
            Alert.Level.PROBLEM,
            f"Flow “{flow.name}” is failing",
            f"The last run of “{flow.name}” failed: {run.error or 'no detail'} "
            "Runs go on at the flow's schedule; you get one message when it recovers.",
            link,
        )
        alert_state_change(tenant=flow.tenant, subject=f"flow:{flow.pk}", state=FAILING, message=message)
    elif run.status in _FLOW_OK:
        message = AlertMessage(
            Alert.Kind.FLOW_RECOVERED,
            Alert.Level.RECOVERY,
            f"Flow “{flow.name}” recovered",
            f"“{flow.name}” ran successfully again.",
            link,
        )
        alert_state_change(tenant=flow.tenant, subject=f"flow:{flow.pk}", state=OK, message=message)


def connection_state_follow(*, connection: Connection) -> None:
    """BROKEN is only ever set for rejected credentials (engine and connection test alike)."""
    connection.refresh_from_db(fields=["status", "status_message", "name"])
    link = reverse("connection_detail", kwargs={"id": connection.pk})
    subject = f"connection:{connection.pk}"
    if connection.status == Connection.Status.BROKEN:
        message = AlertMessage(
            Alert.Kind.CREDENTIALS_REJECTED,
            Alert.Level.PROBLEM,
            f"{connection.name} rejected the credentials",
            f"{connection.status_message or 'The credentials were rejected.'} Flows using {connection.name} are "
            "paused: update the credentials on the connection, test it, then resume the flows.",
            link,
        )
        alert_state_change(tenant=connection.tenant, subject=subject, state=REJECTED, message=message)
    elif connection.status == Connection.Status.OK:
        message = AlertMessage(
            Alert.Kind.CREDENTIALS_ACCEPTED,
            Alert.Level.RECOVERY,
            f"{connection.name} accepts the credentials again",
            f"{connection.name} answered with the stored credentials.",
            link,
        )
        alert_state_change(tenant=connection.tenant, subject=subject, state=OK, message=message)


def budget_state_follow(*, flow: Flow, run: SyncRun) -> None:
    """The reserve of the target's daily budget: alerted when reached; back to normal silently after
    the reset (a run that is not paused), so the next exhaustion alerts again."""
    subject = f"budget:{flow.target_id}"
    if run.status == SyncRun.Status.PAUSED and flow.paused_until:
        resets = flow.paused_until.astimezone(UTC)
        message = AlertMessage(
            Alert.Kind.BUDGET_RESERVE,
            Alert.Level.PROBLEM,
            f"Pipedrive budget reserve reached on {flow.target.name}",
            f"{flow.target.name} has used its daily Pipedrive token budget down to the reserve, so its flows are "
            f"paused until the budget resets at {resets:%Y-%m-%d %H:%M} UTC; they resume by themselves then. "
            "To stay under the budget: lower the frequency of flows (a longer interval), or upgrade the "
            "Pipedrive plan or add seats (the daily budget grows with both).",
            reverse("flow_detail", kwargs={"id": flow.pk}),
        )
        alert_state_change(tenant=flow.tenant, subject=subject, state=RESERVE, message=message)
    elif run.status in _FLOW_OK:
        alert_state_change(tenant=flow.tenant, subject=subject, state=OK, message=None)
