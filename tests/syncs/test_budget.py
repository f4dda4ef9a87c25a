"""The daily Pipedrive budget: under the reserve the run ends 'paused' and the flow resumes after the reset."""

from datetime import timedelta

import pytest
from django.utils import timezone

from connectors.pipedrive.client import PipedriveClient
from connectors.pipedrive.models import PipedriveBudget
from syncs.models import Flow
from syncs.services import flow_run, flows_claim_due
from syncs.tasks import flow_run_task
from tests.syncs.world import World

pytestmark = pytest.mark.django_db(transaction=True)


def test_budget_reserve_pauses_the_run_and_the_flow_resumes_after_the_reset(sandbox, tenant):
    world = World.build(sandbox, tenant, customers=300,
                        pipedrive_settings={"unlimited": False, "plan": "ultimate", "daily_token_limit": 1200})
    first = flow_run(flow=world.flow)
    assert first.status == "paused", first.error
    assert "budget" in first.error and "pauses until" in first.error
    assert 0 < first.created < 300 and first.failed == 0  # not sent is not failed: the page is read again
    flow = Flow.objects.get(pk=world.flow.pk)
    assert flow.paused_until is not None and flow.paused_until > timezone.now()
    assert flows_claim_due() == []  # not due while paused
    assert world.stats()["rate_limited"] == 0  # we stopped before Pipedrive had to refuse anything

    # Midnight passes, at Pipedrive and for us.
    world.pd("POST", "clock", json={"advance_s": 86400})
    past = timezone.now() - timedelta(seconds=1)
    PipedriveBudget.objects.filter(key=PipedriveClient.from_connection(world.pipedrive).company_key).update(
        resets_at=past)
    assert flow.next_run_at >= flow.paused_until  # the flow is scheduled for the reset itself
    Flow.objects.filter(pk=flow.pk).update(paused_until=past, next_run_at=past)
    assert flows_claim_due() == [flow.pk]
    assert flow_run_task(flow.pk, "schedule").endswith("succeeded")
    counts = world.by_external_id()
    assert len(counts) == 300 and set(counts.values()) == {1}
