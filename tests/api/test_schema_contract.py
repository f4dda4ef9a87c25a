"""The API keeps its OpenAPI contract: schemathesis (`--checks all`) against a live test server with a
token, over every operation of /api/schema/, with real objects behind the path ids. A failure names
each failing operation (schemathesis prints `METHOD /path` above each), so a new endpoint that
breaks the contract after a merge says which one it is."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

from tests.factories import ConnectionFactory, MembershipFactory, api_client_for, make_record, make_run

pytestmark = pytest.mark.django_db(transaction=True)

SCHEMATHESIS = str(Path(sys.executable).with_name("schemathesis"))

# The only exceptions to "a request valid by the schema is accepted", with their reason: a connection's
# fields depend on its system (which secrets and options it needs) and its URL must pass the network
# guard (DNS and address checks); the alert webhook URL too. Such a body can match the schema and still
# be refused with 400, whose `fields` name what to fix. A flow's `stage_actions` keys must be stage ids
# and the table is only for stage write-back kinds (OpenAPI 3.0 cannot constrain object keys), and a
# replay names either `records` or a `flow` (one of the two, which the body schema leaves open).
CONFIG = """
[parameters]
"path.id" = {connection}
"path.flow_id" = {flow}
"path.run_id" = {run}
"path.record_id" = {record}
"path.member_id" = {member}
"path.invite_id" = {invite}

[[operations]]
include-operation-id = ["connections_create", "connections_update", "connections_partial_update",
                        "alerts_settings_update", "flows_create", "flows_partial_update",
                        "records_replay_selection"]
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404", "409"]
"""


def test_spectacular_validate_is_clean(tmp_path):
    out = tmp_path / "schema.yml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    assert "/api/team/members/" in out.read_text()


@pytest.fixture
def seeded(tenant, owner, pipedrive):
    from syncs.services import flow_create
    from tenants.models import Membership
    from tenants.team import invite_create

    sage = ConnectionFactory(tenant=tenant, name="Contract Sage")
    flow = flow_create(
        tenant=tenant, source=sage, target=pipedrive, kind="customers_to_organizations", name="Contract flow"
    )
    run = make_run(flow, status="partial", failed=1)
    record = make_record(run, "C-1", outcome="failed", error_kind="permanent", error_message="Bad name")
    member = MembershipFactory(
        tenant=tenant, role=Membership.Role.VIEWER, user__email="viewer@contract.example"
    )
    invite = invite_create(
        tenant=tenant, email="new@contract.example", role="viewer", actor=owner, base_url="http://127.0.0.1/"
    )
    return {
        "connection": sage.pk,
        "flow": flow.pk,
        "run": run.pk,
        "record": record.pk,
        "member": member.pk,
        "invite": invite.pk,
    }


def _failing_operations(output: str) -> list[str]:
    return re.findall(r"^_+ ((?:GET|POST|PUT|PATCH|DELETE) \S+) _+$", output, flags=re.M)


def test_api_honours_its_openapi_contract(live_server, seeded, owner, tmp_path):
    token = api_client_for(owner.user)._credentials["HTTP_AUTHORIZATION"]
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG.format(**seeded))
    # Bounded: a few examples per operation, no shrinking, and not the coverage phase (1,000+ boundary
    # cases, ~90 s here; run it by hand, see README "API contract") keep it under ~40 s on a quiet box;
    # a fixed seed makes a failure reproducible (schemathesis prints `st replay` lines too).
    cmd = [
        SCHEMATHESIS,
        "--config-file",
        str(config),
        "run",
        f"{live_server.url}/api/schema/",
        "--checks",
        "all",
        "-H",
        f"Authorization: {token}",
        "--max-examples",
        "6",
        "--seed",
        "14",
        "--phases",
        "fuzzing,stateful",
        "--no-shrink",
        "--continue-on-failure",
        "--request-timeout",
        "20",
        "--exclude-path-regex",
        "^/api/(schema|docs)/",
    ]
    env = {**os.environ, "NO_COLOR": "1", "SCHEMATHESIS_HOOKS": ""}
    # cwd: schemathesis keeps a cache folder where it runs; not in the work tree
    result = subprocess.run(
        cmd, capture_output=True, text=True, timeout=240, env=env, check=False, cwd=tmp_path
    )
    output = result.stdout + result.stderr
    failing = _failing_operations(output)
    assert result.returncode == 0 and not failing, (
        f"contract failures in: {', '.join(failing) or '(see output)'}\n\n{output[-20000:]}"
    )
    assert re.search(r"Tested: (\d+)", output) and int(re.search(r"Tested: (\d+)", output).group(1)) >= 20, (
        output
    )
