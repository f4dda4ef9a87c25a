""" "Try it with the sandbox": the local simulators' companies and a connection pair pointing at them.

Development only: offered when settings.SANDBOX_URL is set (`make run` sets it). What each ERP's
sandbox needs comes from its package's SANDBOX (connectors/<system>/__init__.py), so an ERP that
lands later with a SANDBOX entry is offered here with no change. The sandbox is reached over HTTP
like any outside system; nothing here imports it."""

from __future__ import annotations

import requests
from django.conf import settings
from django.db import transaction

from connectors.base import ConnectorError
from connectors.models import Connection
from connectors.registry import package_attr
from connectors.services import connection_create
from tenants.models import Tenant

CONTROL_TIMEOUT_S = 30


def sandbox_url() -> str:
    return str(getattr(settings, "SANDBOX_URL", "") or "").rstrip("/")


def sandbox_offered(*, system: str) -> bool:
    return bool(sandbox_url()) and bool(package_attr(system, "SANDBOX"))


def _control(path: str, body: dict) -> dict:
    try:
        resp = requests.post(f"{sandbox_url()}/_sandbox/{path}", json=body, timeout=CONTROL_TIMEOUT_S)
    except requests.RequestException:
        raise ConnectorError(
            f"The sandbox is not answering at {sandbox_url()}; start it with "
            "`python -m sandbox` (make run does)."
        ) from None
    if resp.status_code >= 400:
        raise ConnectorError(
            f"The sandbox refused to set up {path.split('/')[0]} (HTTP {resp.status_code}).", permanent=True
        )
    return resp.json()


def sandbox_connections_create(*, tenant: Tenant, system: str) -> tuple[Connection, Connection]:
    """Seed the ERP's sandbox company and a Pipedrive sandbox company for this tenant, and store a
    connection to each (status 'new': the wizard's next step tests them)."""
    spec = package_attr(system, "SANDBOX")
    if not sandbox_url() or not spec:
        raise ConnectorError("The sandbox is not available here.", permanent=True)
    control_path, seed = spec["seed"]
    _control(control_path, seed)
    company = _control("pipedrive/companies", {"name": tenant.name[:80], "plan": "growth", "seats": 1})
    label = Connection.System(system).label
    with transaction.atomic():
        erp = connection_create(
            tenant=tenant,
            system=system,
            name=f"{label} (sandbox)",
            base_url=sandbox_url() + spec["path"],
            options=dict(spec["options"]),
            credentials=dict(spec["credentials"]),
        )
        pipedrive = connection_create(
            tenant=tenant,
            system="pipedrive",
            name="Pipedrive (sandbox)",
            base_url=sandbox_url(),
            credentials={"api_token": company["api_token"]},
            options={"auth": "api_token", "plan": "growth", "seats": 1},
        )
    return erp, pipedrive
