"""The stage write-back's pure rules: what counts as a stage change (v1 and v2 webhook shapes, polled
deals) and how the stage table is read."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from connectors.ifs.flows import DEAL_STAGE
from syncs.writeback_stage import _stage_moved, stage_actions_clean, stage_change

FLOW = SimpleNamespace(created=datetime(2026, 11, 29, 10, 0, tzinfo=UTC))


@pytest.mark.parametrize("deal, expected", [
    ({"id": 1, "stage_id": 3, "stage_change_time": "2026-11-29T11:00:00Z"}, (3, "2026-11-29T11:00:00+00:00")),
    ({"id": 1, "stage_id": 3, "stage_change_time": "2026-11-29 11:00:00"}, (3, "2026-11-29T11:00:00+00:00")),  # v1
    ({"id": 1, "stage_id": 3, "stage_change_time": None}, None),  # never moved: made in its stage
    ({"id": 1, "stage_id": 3, "stage_change_time": "2026-11-28T11:00:00Z"}, None),  # before the flow existed
    ({"id": 1, "stage_id": 3, "stage_change_time": "2026-11-29T11:00:00Z", "is_deleted": True}, None),
    ({"id": 1, "stage_id": None, "stage_change_time": "2026-11-29T11:00:00Z"}, None),
])
def test_a_stage_change_is_the_deal_stage_and_the_time_it_moved(deal, expected):
    assert stage_change(FLOW, deal) == expected


def event(previous, current=None):
    return SimpleNamespace(previous=previous, current=current or {"id": 1, "stage_id": 3})


def test_only_a_changed_stage_is_a_move_in_either_webhook_version():
    assert _stage_moved(event({"stage_id": 2}))  # v2: previous holds what changed
    assert not _stage_moved(event({"custom_fields": {"abc": "Released"}}))  # our status echo
    assert _stage_moved(event({"id": 1, "stage_id": 2, "title": "x"}))  # v1: the whole previous deal
    assert not _stage_moved(event({"id": 1, "stage_id": 3, "title": "x"}))
    assert not _stage_moved(event(None))  # a create


def test_the_stage_table_is_checked_in_plain_words():
    assert stage_actions_clean(kind=DEAL_STAGE, value={3: " release ", "05": "Close"}) == {"3": "Release",
                                                                                          "5": "Close"}
    assert stage_actions_clean(kind=DEAL_STAGE, value=None) == {}
    with pytest.raises(ValueError, match="“Ship” is not an action .* Known actions: Release, Reserve"):
        stage_actions_clean(kind=DEAL_STAGE, value={"3": "Ship"})
    with pytest.raises(ValueError, match="“-1” is not a Pipedrive stage id"):
        stage_actions_clean(kind=DEAL_STAGE, value={"-1": "Release"})
    with pytest.raises(ValueError, match="must map Pipedrive stage ids"):
        stage_actions_clean(kind=DEAL_STAGE, value=["Release"])
