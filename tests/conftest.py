"""Shared fixtures: a real sandbox process over loopback HTTP, and tenants."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.factories import (  # noqa: F401 — shared fixtures
    _clear_cache,
    connection,
    flow,
    other_connection,
    other_flow,
    other_owner,
    owner,
    owner_api,
    owner_client,
    pipedrive,
    q_sync,
    viewer,
    viewer_api,
    viewer_client,
)

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SandboxProcess:
    """A `python -m sandbox` subprocess; `url` is its base, `control()` its operator API."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sandbox", "--port", str(self.port)],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.url}/_sandbox/health", timeout=1).ok:
                    return
            except requests.ConnectionError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("sandbox did not start")

    def control(self, method: str, path: str, **kwargs):
        resp = requests.request(method, f"{self.url}/_sandbox/{path.lstrip('/')}", timeout=120, **kwargs)
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


@pytest.fixture(scope="session")
def sandbox_server():
    server = SandboxProcess()
    yield server
    server.stop()


@pytest.fixture
def sandbox(sandbox_server):
    """A sandbox with a clean state for this test."""
    sandbox_server.reset()
    return sandbox_server


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return SHARED


@pytest.fixture(autouse=True)
def _loopback_only(settings):
    settings.ALLOW_PRIVATE_NETWORKS = True  # the sandbox lives on 127.0.0.1


@pytest.fixture
def tenant(db):
    from tenants.models import Tenant

    return Tenant.objects.create(name="Acme Ltd", slug="acme")


@pytest.fixture
def other_tenant(db):
    from tenants.models import Tenant

    return Tenant.objects.create(name="Globex", slug="globex")

