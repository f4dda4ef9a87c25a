"""The daily Pipedrive budget: under the reserve the run ends 'paused' and the flow resumes by itself
after the reset, at midnight by Pipedrive's clock, whether or not Pipedrive sends its daily headers."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from connectors.pipedrive.limiter import daily_limit_for
from syncs.models import Flow
from syncs.services import flows_claim_due
from tests.syncs.world import World, dispatcher_until_run, scheduled_run

pytestmark = pytest.mark.django_db(transaction=True)

TO_MIDNIGHT_S = 30  # the Pipedrive company's clock starts this far before its midnight


@pytest.mark.parametrize("daily_headers", [True, False], ids=["daily-headers", "no-daily-headers"])
def test_budget_reserve_pauses_the_run_and_the_flow_resumes_by_itself_after_the_reset(sandbox, tenant,
                                                                                      daily_headers):
    if daily_headers:  # the headers say 1,200 tokens a day (the plan table would say 210,000)
        world = World.build(sandbox, tenant, customers=300, pipedrive_settings={
            "unlimited": False, "plan": "ultimate", "daily_token_limit": 1200})
    else:  # no headers: the plan's budget (premium, 150,000) counted here, all but 1,200 kept in reserve
        reserve = daily_limit_for("premium", 1) - 1200
        world = World.build(sandbox, tenant, customers=300,
                            pipedrive_settings={"unlimited": False, "plan": "premium", "daily_headers": False},
                            pipedrive_options={"plan": "premium", "budget_reserve": reserve})
    today = datetime.now(UTC).date()
    midnight = datetime(today.year, today.month, today.day, tzinfo=UTC) + timedelta(days=1)
    world.pd("POST", "clock", json={"set": (midnight - timedelta(seconds=TO_MIDNIGHT_S)).strftime("%Y-%m-%dT%H:%M:%SZ")})

    first = scheduled_run(world)
    assert first.status == "paused", first.error
    assert "budget" in first.error and "pauses until" in first.error
    assert 0 < first.created < 300 and first.failed == 0  # not sent is not failed: the page is read again
    flow = Flow.objects.get(pk=world.flow.pk)
    # paused until Pipedrive's midnight, read from its clock (ours is hours away from midnight)
    assert timezone.now() < flow.paused_until < timezone.now() + timedelta(seconds=TO_MIDNIGHT_S + 5)
    assert flow.next_run_at == flow.paused_until  # due again at the reset itself
    assert flows_claim_due() == []  # not due while paused
    stats = world.stats()
    # we stopped before Pipedrive had to refuse anything for the day (a burst 429 on a busy machine is
    # the limiter's business, paced and retried, and not what this test is about)
    assert stats["rate_limited_by_kind"].get("daily", 0) == 0, stats["rate_limited_by_kind"]
    assert stats["tokens_used_today"] <= 1200

    # Midnight passes at Pipedrive; the dispatcher finds the flow due and it finishes. Nothing edited.
    second = dispatcher_until_run(world, timeout=TO_MIDNIGHT_S + 60)
    assert second.status == "succeeded", second.error
    assert world.pd("GET", "stats")["rate_limited_by_kind"].get("daily", 0) == 0
    audit = world.link_audit()
    assert audit == {"lost": [], "duplicated": [], "orphan_links": [], "without_external_id": []}, audit
    assert len(world.organizations()) == 300
