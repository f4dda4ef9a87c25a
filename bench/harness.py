"""Shared set-up for benchmarks: Django on a chosen database, a sandbox subprocess, a wired tenant."""

from __future__ import annotations

import json
import os
import resource
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def django_setup(database_url: str | None = None) -> None:
    # Production settings (DEBUG off: Django would otherwise keep every query for inspection, which
    # is memory a real worker does not spend), with throwaway keys.
    os.environ["DEBUG"] = "0"
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
    os.environ.setdefault("FERNET_KEYS", secrets.token_urlsafe(32))
    os.environ["ALLOW_PRIVATE_NETWORKS"] = "1"
    if database_url:
        os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mlconnector.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def database_vendor() -> str:
    """"postgresql" or "sqlite": every figure says which database it was measured on."""
    from django.db import connection

    return connection.vendor


def emit(name: str, value: float, **extra) -> None:
    extra.pop("db", None)
    print(json.dumps({"bench": name, "value": round(value, 4) if isinstance(value, float) else value,
                      "database": database_vendor(), **extra}), flush=True)


class CpuClock:
    """User + system CPU seconds of this process (the engine runs here; the sandbox and PostgreSQL are
    other processes): a busy machine stretches wall time far more than the CPU a record costs."""

    def __init__(self) -> None:
        self.started = self.now()

    @staticmethod
    def now() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    def elapsed(self) -> float:
        return self.now() - self.started


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Sandbox:
    def __init__(self) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen([sys.executable, "-m", "sandbox", "--port", str(self.port)], cwd=ROOT,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(150):
            try:
                if requests.get(f"{self.url}/_sandbox/health", timeout=1).ok:
                    return
            except requests.ConnectionError:
                time.sleep(0.1)
        raise RuntimeError("sandbox did not start")

    def control(self, method: str, path: str, **kwargs):
        resp = requests.request(method, f"{self.url}/_sandbox/{path}", timeout=600, **kwargs)
        resp.raise_for_status()
        return resp.json()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def wire_tenant(sandbox: Sandbox, *, customers: int, slug: str = "bench", plan: str = "ultimate",
                pipedrive_settings: dict | None = None, seed: int = 1, sage_company: str = "SAMLTD",
                interval_minutes: int = 15):
    """A tenant, its Sage 300 company (`customers` generated) and Pipedrive company (real limits of
    `plan` unless `pipedrive_settings` say otherwise), and one flow between them."""
    from connectors.models import Connection
    from syncs.services import flow_create
    from tenants.models import Tenant

    if customers is not None:
        sandbox.control("POST", "sage300/companies", json={
            "company": sage_company, "user": "ADMIN", "password": "ADMIN", "customers": customers, "seed": seed,
            "today": "2026-11-20"})
    company = sandbox.control("POST", "pipedrive/companies", json={"name": slug, "plan": plan,
                                                                    **(pipedrive_settings or {})})
    tenant = Tenant.objects.create(name=f"Bench {slug}", slug=f"{slug}-{int(time.time() * 1000)}")
    sage = Connection.objects.create(tenant=tenant, system="sage300", name="Sage 300",
                                     base_url=f"{sandbox.url}/Sage300WebApi/v1.0",
                                     options={"company": sage_company, "user": "ADMIN"},
                                     credentials={"password": "ADMIN"})
    pipedrive = Connection.objects.create(tenant=tenant, system="pipedrive", name="Pipedrive", base_url=sandbox.url,
                                          options={"auth": "api_token", "plan": plan, "seats": 1,
                                                   "company_id": company["company_id"]},
                                          credentials={"api_token": company["api_token"]})
    flow = flow_create(tenant=tenant, source=sage, target=pipedrive, kind="customers_to_organizations",
                       interval_minutes=interval_minutes)
    return flow, company
