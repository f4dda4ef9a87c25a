"""Every `make reliability` suite at its small size, against the test database and the shared sandbox:
their zero figures are the guarantees (lost, duplicated, leaks, secrets found, probes reached, crashes)."""

from __future__ import annotations

import pytest

from reliability.base import Context
from reliability.suites import suite_run

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def ctx(sandbox_server):
    from testkit.processes import current_database_url

    # No sandbox reset: suites name their own companies (a reset would reuse Pipedrive company ids).
    return Context(sandbox=sandbox_server, database_url=current_database_url(), size="small", seed=1)


def test_fault_suite_loses_and_duplicates_nothing(ctx):
    r = suite_run("fault_suite", ctx)
    fired = r["faults_fired"]
    assert sum(fired["sage300"].values()) > 0, r
    assert all(fired["pipedrive"].get(k) for k in ("5xx", "429", "drop", "slow", "after_commit")), r
    assert r["converged"], r
    assert (r["lost"], r["duplicated"], r["orphans"], r["differing_from_fault_free"]) == (0, 0, 0, 0), r
    assert r["ok"], r


def test_crash_suite_loses_and_duplicates_nothing(ctx):
    r = suite_run("crash_suite", ctx)
    assert r["kills"] == 3 and r["missed_kills"] == 0, r
    assert r["kills_by_process"]["manage.py sync"] and r["kills_by_process"]["qcluster worker"], r
    assert r["killed_runs"] >= 1 and r["killed_runs_not_interrupted"] == 0, r
    assert (r["lost"], r["duplicated"], r["orphans"], r["left_in_flight"], r["left_running"]) == (0, 0, 0, 0, 0), r
    assert r["final_status"] == "succeeded" and r["rerun_pipedrive_calls"] == 0, r
    assert r["ok"], r


def test_tenant_isolation_leaks_nothing_and_covers_every_pattern(ctx):
    r = suite_run("tenant_isolation", ctx)
    assert r["uncovered"] == [], r
    assert r["patterns_covered"] > 100, r  # portal, API and admin patterns
    assert (r["leaks"], r["unexpected_answers"]) == (0, 0), r
    assert r["ok"], r


def test_secrets_scan_finds_no_secret(ctx):
    r = suite_run("secrets_scan", ctx)
    assert r["pings_ok"][:2] == [True, True] and not any(r["pings_ok"][2:]), r  # the failing pings did fail
    assert r["failed_records"] >= 1 and r["pages_searched"] > 50, r
    assert r["found"] == 0, r
    assert r["ok"], r


def test_ssrf_probes_reach_nothing(ctx):
    r = suite_run("ssrf", ctx)
    assert r["probes"] >= 25, r
    assert (r["reached"], r["passed_url_check"]) == (0, 0), r


def test_bad_input_crashes_no_run_and_fails_each_bad_record_alone(ctx):
    r = suite_run("bad_input", ctx)
    assert r["generated_records"] == 60 and r["good_records_not_once_in_pipedrive"] == 0, r
    assert (r["crashed_runs"], r["unaccounted_or_silent"]) == (0, 0), r
    hooks = r["webhooks"]
    assert hooks["bodies"] == 150 and hooks["stored"] >= 1 and hooks["answers"].get("400", 0) >= 1, hooks
    assert (hooks["server_errors"], hooks["internal_errors"], hooks["left_unprocessed"]) == (0, 0, 0), hooks
    assert r["ok"], r
