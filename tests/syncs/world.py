"""A tenant wired to the Sage 300 and Pipedrive simulators, with one flow — the engine's test bed."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from connectors.models import Connection
from syncs.models import Flow, RecordLink, SyncRun
from syncs.services import flow_create

EXTERNAL_ID_FIELD = "Sage 300 customer number"


@dataclass
class World:
    sandbox: Any
    tenant: Any
    sage: Connection
    pipedrive: Connection
    flow: Flow
    company_id: int
    sage_company: str = "SAMLTD"

    @classmethod
    def build(cls, sandbox, tenant, *, customers: int, seed: int = 7, today: str = "2026-11-20",
              pipedrive_settings: dict | None = None, flow_options: dict | None = None,
              pipedrive_options: dict | None = None) -> World:
        sandbox.control("POST", "sage300/companies", json={
            "company": "SAMLTD", "user": "ADMIN", "password": "ADMIN", "customers": customers, "seed": seed,
            "today": today})
        company = sandbox.control("POST", "pipedrive/companies", json={
            "name": f"{tenant.name} CRM", "plan": "ultimate", "unlimited": True, **(pipedrive_settings or {})})
        sage = Connection.objects.create(
            tenant=tenant, system="sage300", name="Sage 300", base_url=f"{sandbox.url}/Sage300WebApi/v1.0",
            options={"company": "SAMLTD", "user": "ADMIN"}, credentials={"password": "ADMIN"})
        pipedrive = Connection.objects.create(
            tenant=tenant, system="pipedrive", name="Pipedrive", base_url=sandbox.url,
            options={"auth": "api_token", "plan": "ultimate", "seats": 1, "company_id": company["company_id"],
                     **(pipedrive_options or {})},
            credentials={"api_token": company["api_token"]})
        flow = flow_create(tenant=tenant, source=sage, target=pipedrive, kind="customers_to_organizations",
                           options=flow_options)
        return cls(sandbox, tenant, sage, pipedrive, flow, company["company_id"])

    # --- Pipedrive side (free: the control API costs no tokens) ---
    def pd(self, method: str, path: str, **kwargs) -> Any:
        return self.sandbox.control(method, f"pipedrive/companies/{self.company_id}/{path}", **kwargs)

    def organizations(self) -> list[dict]:
        return self.pd("GET", "records/organizations?include_deleted=0")["records"]

    def external_key(self) -> str:
        fields = self.pd("GET", "fields/organizations")["fields"]
        return next(f["field_code"] for f in fields if f["field_name"] == EXTERNAL_ID_FIELD)

    def by_external_id(self) -> Counter:
        key = self.external_key()
        return Counter((o.get("custom_fields") or {}).get(key) for o in self.organizations())

    def stats(self) -> dict:
        return self.pd("GET", "stats")

    def writes(self) -> int:
        calls = self.stats()["calls_by_operation"]
        return sum(n for op, n in calls.items() if op.startswith(("add", "update", "delete")))

    # --- Sage side ---
    def sage_ctl(self, method: str, path: str, **kwargs) -> Any:
        return self.sandbox.control(method, f"sage300/companies/{self.sage_company}/{path}", **kwargs)

    def customers(self) -> list[dict]:
        """Every customer as Sage holds it (read through the real API, no cost)."""
        from connectors.sage300.client import Sage300Client

        client = Sage300Client.from_connection(self.sage)
        return [r for page in client.changed_since("customers", {}) for r in page.records]

    # --- the end state, compared at both ends ---
    def link_audit(self) -> dict[str, list]:
        """Links against the organizations Pipedrive really holds: which ERP customers are lost (no
        live organization with their id, or no link to it), duplicated (several organizations carry
        their id) or orphaned (a link to an organization that does not exist)."""
        key = self.external_key()
        orgs = self.organizations()
        by_ext: dict[str, list[int]] = {}
        for org in orgs:
            ext = (org.get("custom_fields") or {}).get(key)
            by_ext.setdefault(str(ext) if ext is not None else "", []).append(org["id"])
        links = dict(RecordLink.objects.filter(source_connection=self.sage, target_connection=self.pipedrive)
                     .values_list("external_id", "target_id"))
        live = {org["id"] for org in orgs}
        lost = [c["CustomerNumber"] for c in self.customers()
                if len(by_ext.get(c["CustomerNumber"], [])) != 1 or links.get(c["CustomerNumber"])
                not in by_ext.get(c["CustomerNumber"], [])]
        return {"lost": lost, "duplicated": [ext for ext, ids in by_ext.items() if len(ids) > 1],
                "orphan_links": [ext for ext, target in links.items() if target not in live],
                "without_external_id": by_ext.get("", [])}


def scheduled_run(world: World) -> SyncRun:
    """One run the way production starts it: the dispatcher claims the flow only once it is due
    (next_run_at honoured: it is not claimed before), and the worker task runs it as "schedule".
    Instead of waiting out the interval, the flow's schedule is moved back by exactly one interval."""
    from datetime import timedelta

    from syncs.services import flows_claim_due
    from syncs.tasks import flow_run_task

    flow = Flow.objects.get(pk=world.flow.pk)
    if flow.next_run_at is not None and flow.runs.exists():
        assert flows_claim_due() == [], "claimed before it was due"
        Flow.objects.filter(pk=flow.pk).update(next_run_at=flow.next_run_at - timedelta(minutes=flow.interval_minutes))
    tokens: dict[int, str] = {}
    assert flows_claim_due(tokens=tokens) == [flow.pk]
    result = flow_run_task(flow.pk, "schedule", tokens[flow.pk])
    world.flow.refresh_from_db()
    return SyncRun.objects.get(pk=int(result.split()[1].rstrip(":")))


def dispatcher_until_run(world: World, *, timeout: float) -> SyncRun:
    """Tick the dispatcher (every second, not every minute) until it hands the flow to a worker, then
    run that task: nothing is moved by hand, the flow becomes due by itself."""
    from syncs.services import flows_claim_due
    from syncs.tasks import flow_run_task
    from tests.processes import wait_for

    tokens: dict[int, str] = {}
    wait_for(lambda: flows_claim_due(tokens=tokens), timeout=timeout, interval=1.0, message="the flow to be due")
    assert list(tokens) == [world.flow.pk]
    result = flow_run_task(world.flow.pk, "schedule", tokens[world.flow.pk])
    world.flow.refresh_from_db()
    return SyncRun.objects.get(pk=int(result.split()[1].rstrip(":")))
