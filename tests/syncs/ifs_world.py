"""A tenant wired to the IFS Cloud and Pipedrive simulators: customers and orders flows, the stage write-back,
and counters read at both sandboxes."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from connectors.models import Connection
from syncs.models import Flow, RecordLink, SyncRun
from syncs.services import flow_create, flow_run

NS = "ifsdemo"
SECRET = "ifs-client-secret-pw"
CUSTOMERS = "customers_to_organizations"
ORDERS = "sales_orders_to_deals"
STAGES = "deal_stage_to_order_status"


@dataclass
class IfsWorld:
    sandbox: Any
    tenant: Any
    ifs: Connection
    pipedrive: Connection
    company_id: int
    flows: dict[str, Flow] = field(default_factory=dict)

    @classmethod
    def build(cls, sandbox, tenant, *, customers: int = 12, orders: int = 40, seed: int = 4,
              ifs_settings: dict | None = None) -> IfsWorld:
        sandbox.control("POST", "ifs/environments", json={
            "namespace": NS, "client_id": "ml-connector", "client_secret": SECRET, "customers": customers,
            "orders": orders, "seed": seed})
        if ifs_settings:
            sandbox.control("POST", "ifs/settings", json=ifs_settings)
        company = sandbox.control("POST", "pipedrive/companies", json={
            "name": "IFS CRM", "plan": "ultimate", "unlimited": True})
        ifs = Connection.objects.create(
            tenant=tenant, system="ifs", name="IFS", base_url=sandbox.url,
            options={"namespace": NS, "client_id": "ml-connector"}, credentials={"client_secret": SECRET})
        pipedrive = Connection.objects.create(
            tenant=tenant, system="pipedrive", name="Pipedrive", base_url=sandbox.url,
            options={"auth": "api_token", "plan": "ultimate", "seats": 1, "company_id": company["company_id"]},
            credentials={"api_token": company["api_token"]})
        world = cls(sandbox, tenant, ifs, pipedrive, company["company_id"])
        for kind in (CUSTOMERS, ORDERS):
            world.flows[kind] = flow_create(tenant=tenant, source=ifs, target=pipedrive, kind=kind)
        return world

    def run(self, kind: str) -> SyncRun:
        return flow_run(flow=Flow.objects.select_related("source", "target").get(pk=self.flows[kind].pk))

    # --- Pipedrive side (the control API costs no tokens) ---
    def pd(self, method: str, path: str, **kwargs) -> Any:
        return self.sandbox.control(method, f"pipedrive/companies/{self.company_id}/{path}", **kwargs)

    def records(self, entity: str) -> list[dict]:
        return self.pd("GET", f"records/{entity}?include_deleted=0")["records"]

    def key(self, entity: str, name: str) -> str:
        return next(f["field_code"] for f in self.pd("GET", f"fields/{entity}")["fields"] if f["field_name"] == name)

    def by_external(self, entity: str, name: str) -> Counter:
        key = self.key(entity, name)
        return Counter((r.get("custom_fields") or {}).get(key) for r in self.records(entity))

    def calls(self) -> dict:
        return self.pd("GET", "stats")["calls_by_operation"]

    # --- IFS side ---
    def ifsctl(self, method: str, path: str, **kwargs) -> Any:
        return self.sandbox.control(method, f"ifs/{path}", **kwargs)

    def stats(self) -> dict:
        return self.ifsctl("GET", f"environments/{NS}/stats")

    def order(self, order_no: str) -> dict:
        return self.ifsctl("GET", f"environments/{NS}/records/CustomerOrderSet/{order_no}")

    def ifs_all(self, obj: str) -> list[dict]:
        from connectors.ifs.client import IfsClient

        with IfsClient.from_connection(self.ifs) as client:
            return [r for page in client.changed_since(obj, {}) for r in page.records]

    def deal_of(self, order_no: str) -> int:
        return int(RecordLink.objects.get(source_object="sales_orders", external_id=order_no).target_id)
