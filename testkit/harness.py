"""Django on a chosen database, a sandbox subprocess, a tenant wired to it, one JSON line per figure."""

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


def django_setup(database_url: str | None = None, *, debug: bool = False) -> None:
    # Production settings by default (DEBUG off: Django would otherwise keep every query for inspection,
    # which is memory a real worker does not spend), with throwaway keys.
    os.environ["DEBUG"] = "1" if debug else "0"
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
    os.environ.setdefault("FERNET_KEYS", secrets.token_urlsafe(32))
    os.environ["ALLOW_PRIVATE_NETWORKS"] = "1"
    if database_url:
        os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mlconnector.settings")
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def scratch_database_url(name: str) -> str:
    """A fresh PostgreSQL database `name` when the local server answers, else a new SQLite file."""
    try:
        import psycopg

        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True,
                             connect_timeout=3) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgres://postgres@127.0.0.1:5432/{name}"
    except Exception:  # no local PostgreSQL: SQLite is the documented fallback
        import tempfile

        handle, path = tempfile.mkstemp(prefix=f"{name}-", suffix=".sqlite3")
        os.close(handle)
        return f"sqlite:///{path}"


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


def free_port(host: str = "127.0.0.1") -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class SandboxProcess:
    """A `python -m sandbox` subprocess on loopback; `url` is its base, `control()` its operator API."""

    def __init__(self, *, timeout: float = 30) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen([sys.executable, "-m", "sandbox", "--port", str(self.port)], cwd=ROOT,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.url}/_sandbox/health", timeout=1).ok:
                    return
            except requests.ConnectionError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("sandbox did not start")

    def control(self, method: str, path: str, **kwargs):
        resp = requests.request(method, f"{self.url}/_sandbox/{path.lstrip('/')}", timeout=600, **kwargs)
        resp.raise_for_status()
        return resp.json()

    def reset(self) -> None:
        self.control("POST", "reset")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def wire_tenant(sandbox: SandboxProcess, *, customers: int | None, slug: str = "bench", unlimited: bool = True,
                plan: str | None = None, pipedrive_settings: dict | None = None, seed: int = 1,
                sage_company: str = "SAMLTD", sage_password: str = "ADMIN", api_token: str | None = None,
                tenant=None, today: str = "2026-11-20", interval_minutes: int = 15):
    """A Sage 300 company with `customers` generated customers (none created when None: reuse one), a
    Pipedrive company — unlimited by default, the real limits of `plan` when a plan is named — and a tenant
    with both connections and one customers → organizations flow. Returns (flow, pipedrive company info)."""
    from connectors.models import Connection
    from syncs.services import flow_create
    from tenants.models import Tenant

    if customers is not None:
        sandbox.control("POST", "sage300/companies", json={"company": sage_company, "user": "ADMIN",
                                                            "password": sage_password, "customers": customers,
                                                            "seed": seed, "today": today})
    settings = {"name": slug, "plan": plan or "ultimate", **({"unlimited": unlimited} if plan is None else {}),
                **({"api_token": api_token} if api_token else {}), **(pipedrive_settings or {})}
    company = sandbox.control("POST", "pipedrive/companies", json=settings)
    if tenant is None:
        tenant = Tenant.objects.create(name=f"Bench {slug}", slug=f"{slug}-{int(time.time() * 1000)}")
    sage = Connection.objects.create(tenant=tenant, system="sage300", name="Sage 300",
                                     base_url=f"{sandbox.url}/Sage300WebApi/v1.0",
                                     options={"company": sage_company, "user": "ADMIN"},
                                     credentials={"password": sage_password})
    pipedrive = Connection.objects.create(tenant=tenant, system="pipedrive", name="Pipedrive", base_url=sandbox.url,
                                          options={"auth": "api_token", "plan": settings["plan"], "seats": 1},
                                          credentials={"api_token": company["api_token"]})
    flow = flow_create(tenant=tenant, source=sage, target=pipedrive, kind="customers_to_organizations",
                       interval_minutes=interval_minutes)
    return flow, company
