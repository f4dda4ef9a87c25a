"""A tenant wired to the Sage 300 and Pipedrive simulators, with one flow — the engine's test bed."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from connectors.models import Connection
from syncs.models import Flow
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
              pipedrive_settings: dict | None = None, flow_options: dict | None = None) -> World:
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
            options={"auth": "api_token", "plan": "ultimate", "seats": 1, "company_id": company["company_id"]},
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
