"""Every ERP the wizard offers, end to end against the real sandbox over loopback: "Try it with the
sandbox" creates both connections, the ERP answers a ping, its flow kinds are listed, and the estimate
reads records and prices them. The list comes from the registry, so an ERP that lands later is covered
(and fails here until its package has a SANDBOX entry)."""

from __future__ import annotations

import pytest

from connectors.models import Connection
from connectors.registry import SYSTEMS, connector_for, flow_kinds, package_attr
from connectors.services import connection_ping
from onboarding.estimate import flows_estimate
from onboarding.sandbox import sandbox_connections_create, sandbox_offered
from onboarding.services import erp_choices, wizard_flows_create

pytestmark = pytest.mark.django_db

WIZARD_ERPS = [s.key for s in SYSTEMS if s.client and s.flows]


def test_every_erp_with_a_client_and_flows_is_offered_with_the_sandbox(settings):
    settings.SANDBOX_URL = "http://127.0.0.1:9"  # offered is a settings question: nothing is called
    offered = {c["key"]: c for c in erp_choices()}
    assert WIZARD_ERPS and {"syspro", "ifs", "s4hana"} <= set(WIZARD_ERPS)
    for system in WIZARD_ERPS:
        assert offered[system]["available"] and offered[system]["sandbox"], system
        assert sandbox_offered(system=system)


@pytest.mark.parametrize("system", WIZARD_ERPS)
def test_sandbox_connections_ping_list_kinds_and_estimate(sandbox, tenant, settings, system):
    settings.SANDBOX_URL = sandbox.url
    erp, pipedrive = sandbox_connections_create(tenant=tenant, system=system)
    assert erp.system == system and erp.base_url == sandbox.url + package_attr(system, "SANDBOX")["path"]
    assert erp.status == Connection.Status.NEW and pipedrive.system == "pipedrive"

    ping = connection_ping(connection=erp)
    erp.refresh_from_db()
    assert ping.ok and erp.last_ping_ok and erp.status == Connection.Status.OK, ping.message
    assert ping.message.strip() and "Traceback" not in ping.message and "{" not in ping.message
    for secret in erp.credentials.values():
        assert secret not in ping.message
    assert connection_ping(connection=pipedrive).ok

    kinds = flow_kinds(system)
    inbound = [name for name, kind in kinds.items() if kind.direction == "to_pipedrive"]
    assert inbound, f"{system} lists no flow into Pipedrive"
    choices = {c["key"]: c for c in erp_choices()}
    assert choices[system]["kinds"] == [k.label for k in kinds.values()]

    flows = wizard_flows_create(tenant=tenant, source=erp, target=pipedrive, kinds=inbound)
    assert [f.kind for f in flows] == [k for k in kinds if k in inbound] and not any(f.enabled for f in flows)
    estimate = flows_estimate(flows=flows)
    assert estimate["errors"] == [], estimate["errors"]
    # Every flow is priced (at least its list scan); the first (the master records every other flow
    # refers to) reads what a full read of the ERP returns. A later kind may be empty in the sandbox
    # (SAP B1's sandbox holds no sales orders until a write-back creates one).
    assert all(item["tokens"] > 0 and item["records"] >= 0 for item in estimate["flows"]), estimate["flows"]
    first = estimate["flows"][0]
    client = connector_for(erp)
    try:
        held = sum(len(page.records) for page in client.changed_since(kinds[inbound[0]].source_object, {}))
    finally:
        getattr(client, "close", lambda: None)()
    assert first["records"] == held > 0, (first, held)
    assert estimate["records"] > 0 and estimate["tokens"] > 0
    assert f"reads about {estimate['records']:,} records" in estimate["summary"]
    # Estimating writes nothing: the sandbox Pipedrive company holds none of the flows' records.
    token = pipedrive.credentials["api_token"]
    [company] = [
        c for c in sandbox.control("GET", "pipedrive/companies")["companies"] if c["api_token"] == token
    ]
    for entity in {kinds[name].target_entity for name in inbound}:
        held = sandbox.control("GET", f"pipedrive/companies/{company['company_id']}/records/{entity}")
        assert held["records"] == [], entity
