"""Shared fixtures: a real sandbox process over loopback HTTP, and tenants."""

from __future__ import annotations

from pathlib import Path

import pytest

from testkit.harness import SandboxProcess, free_port  # noqa: F401 — free_port is imported from here by tests
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

