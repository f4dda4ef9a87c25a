"""factory_boy factories for the models tests build most often."""

import factory
import pytest
from django.contrib.auth import get_user_model

from connectors.models import Connection
from syncs.models import SyncRecord, SyncRun
from syncs.services import flow_create
from tenants.models import Membership, Tenant

PASSWORD = "correct-horse-battery-staple"


class TenantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tenant
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Company {n}")
    slug = factory.Sequence(lambda n: f"company-{n}")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    username = factory.SelfAttribute("email")
    password = factory.django.Password(PASSWORD)


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    tenant = factory.SubFactory(TenantFactory)
    role = Membership.Role.OWNER


class ConnectionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Connection

    tenant = factory.SubFactory(TenantFactory)
    system = Connection.System.SAGE300
    name = factory.Sequence(lambda n: f"Sage 300 #{n}")
    # Loopback, discard port: a ping fails fast and never leaves the machine.
    base_url = "http://127.0.0.1:9/Sage300WebApi/v1.0"
    credentials = factory.LazyFunction(lambda: {"password": "s3cret-Sage-PASSWORD-9876"})
    options = factory.LazyFunction(lambda: {"company": "SAMLTD", "user": "ADMIN"})


# Fixtures shared by tests/tenants, tests/portal and tests/api (their conftest.py imports them) and
# tests/connectors/test_connection_secrets.py. tests/conftest.py holds the sandbox plumbing.


@pytest.fixture
def owner(tenant):
    return MembershipFactory(tenant=tenant, role=Membership.Role.OWNER, user__email="owner@acme.example")


@pytest.fixture
def viewer(tenant):
    return MembershipFactory(tenant=tenant, role=Membership.Role.VIEWER, user__email="viewer@acme.example")


@pytest.fixture
def other_owner(other_tenant):
    return MembershipFactory(tenant=other_tenant, role=Membership.Role.OWNER, user__email="owner@globex.example")


@pytest.fixture
def owner_client(client, owner):
    client.force_login(owner.user)
    return client


@pytest.fixture
def viewer_client(client, viewer):
    client.force_login(viewer.user)
    return client


@pytest.fixture
def connection(tenant):
    return ConnectionFactory(tenant=tenant, name="Acme Sage")


@pytest.fixture
def other_connection(other_tenant):
    return ConnectionFactory(tenant=other_tenant, name="Globex Secret Sage",
                             credentials={"password": "globex-only-PASSWORD-4321"})


def api_client_for(user):
    from rest_framework.test import APIClient

    from tenants.services import api_token_create

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {api_token_create(user=user).key}")
    return api


@pytest.fixture
def owner_api(owner):
    return api_client_for(owner.user)


@pytest.fixture
def viewer_api(viewer):
    return api_client_for(viewer.user)


@pytest.fixture
def q_sync(monkeypatch):
    """django-q2 runs queued tasks at once, in this process and transaction (its `sync` mode), for tests
    about what a task's result looks like rather than about the queue. Conf.SYNC, not a per-call flag:
    django-q2 keeps the caller's database connection open only when Conf.SYNC is set."""
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", True)


@pytest.fixture(autouse=True)
def _clear_cache():
    """Login throttling lives in the cache; each test starts with none recorded."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


# --- flows, runs and records (portal and API tests) ---

@pytest.fixture
def pipedrive(tenant):
    return ConnectionFactory(tenant=tenant, system="pipedrive", name="Acme Pipedrive",
                             credentials={"api_token": "pd-SECRET-token-5555"}, options={"auth": "api_token"})


@pytest.fixture
def flow(tenant, connection, pipedrive):
    return flow_create(tenant=tenant, source=connection, target=pipedrive, kind="customers_to_organizations",
                       name="Customers to Pipedrive")


@pytest.fixture
def other_flow(other_tenant, other_connection):
    other_pd = ConnectionFactory(tenant=other_tenant, system="pipedrive", name="Globex Pipedrive")
    return flow_create(tenant=other_tenant, source=other_connection, target=other_pd,
                       kind="customers_to_organizations", name="Globex customers")


def make_run(flow, **fields) -> SyncRun:
    return SyncRun.objects.create(tenant=flow.tenant, flow=flow, trigger=fields.pop("trigger", "schedule"), **fields)


def make_record(run, external_id, **fields) -> SyncRecord:
    defaults = {"source_object": "customers", "target_object": "organizations", "action": "create", "outcome": "ok"}
    return SyncRecord.objects.create(tenant=run.tenant, run=run, flow=run.flow, external_id=external_id,
                                     **{**defaults, **fields})
