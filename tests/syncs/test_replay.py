"""Replay from the admin, the command line and the service: new audit rows, history kept."""

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.urls import reverse

from syncs.models import SyncRecord
from syncs.services import flow_run, record_replay
from tests.syncs.world import World

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def broken(sandbox, tenant):
    """A flow whose first run failed one record (no name), then the ERP record was fixed."""
    world = World.build(sandbox, tenant, customers=10)
    key = next(iter(world.sage_ctl("POST", "malformed", json={"kinds": ["missing_name"]})["created"]))
    run = flow_run(flow=world.flow)
    failed = SyncRecord.objects.get(run=run, outcome="failed")
    assert failed.external_id == key and failed.error_kind == "permanent"
    world.sage_ctl("PATCH", f"customers/{key}", json={"CustomerName": "Fixed Ltd"})
    return world, failed


def assert_replayed(world, failed):
    new = SyncRecord.objects.filter(replay_of=failed).get()
    assert new.outcome == "ok" and new.action == "create" and new.attempt == 2
    failed.refresh_from_db()
    assert failed.outcome == "failed" and failed.error_message  # history is not rewritten
    assert world.by_external_id()[failed.external_id] == 1


def test_replay_from_the_admin_action(broken, client, q_sync):
    world, failed = broken
    admin = get_user_model().objects.create_superuser("support@example.com", "support@example.com", "pw-support-123")
    client.force_login(admin)
    resp = client.post(reverse("admin:syncs_syncrecord_changelist"),
                       {"action": "replay_records", "_selected_action": [failed.pk]}, follow=True)
    assert resp.status_code == 200
    assert b"Replay run" in resp.content
    assert_replayed(world, failed)


def test_replay_with_the_management_command(broken, capsys):
    world, failed = broken
    call_command("replay", "--run", str(failed.run_id))
    assert "Replay run" in capsys.readouterr().out
    assert_replayed(world, failed)


def test_replay_of_a_record_already_in_pipedrive_costs_nothing_and_leaves_a_row(broken):
    world, failed = broken
    record_replay(record=failed)
    before = world.stats()["requests"]
    record_replay(record=failed)  # the second replay finds it up to date
    assert world.stats()["requests"] == before
    assert SyncRecord.objects.filter(replay_of=failed, action="skip", outcome="ok").exists()
