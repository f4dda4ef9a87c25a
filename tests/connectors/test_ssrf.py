"""SSRF guard: tenants choose the URLs we call. Loopback only: a stub resolver maps the names,
127.0.0.2 counts as "public" (OUTBOUND_ALLOWED_NETWORKS) and 127.0.0.1 is the internal service."""

from __future__ import annotations

import pytest
from django.urls import reverse

from connectors import http
from connectors.base import ConnectorError
from connectors.models import Connection
from connectors.pipedrive.client import PipedriveClient
from connectors.sage300.client import Sage300Client
from connectors.services import connection_ping
from tests.connectors import netguard
from tests.connectors.netguard import INTERNAL_IP, INTERNAL_SECRET, PUBLIC_IP
from tests.factories import ConnectionFactory

resolver, guarded, servers = netguard.resolver, netguard.guarded, netguard.servers  # fixtures

NAME = "erp.example.test"

# Hosts (as written in a URL) that must be refused, and what a stub resolver answers for the names.
REFUSED_HOSTS = [
    "127.0.0.1", "2130706433", "0177.0.0.1", "0x7f.0.0.1", "0x7f000001", "127.1", "127.0.0.1.",
    "[::ffff:127.0.0.1]", "[::1]", "0.0.0.0", "0", "[::]",
    "169.254.169.254", "[fd00:ec2::254]", "100.100.100.200", "100.64.0.1", "[fe80::1]",
    "10.0.0.1", "172.16.0.1", "192.168.1.1", "224.0.0.1", "240.0.0.1", "255.255.255.255",
    "[2002:7f00:1::]",          # 6to4 of 127.0.0.1
    "[2002:a9fe:a9fe::]",       # 6to4 of 169.254.169.254
    "[64:ff9b::7f00:1]",        # NAT64 of 127.0.0.1
    "[64:ff9b::a9fe:a9fe]",     # NAT64 of 169.254.169.254
    "[64:ff9b:1::a9fe:a9fe]",   # local-use NAT64
    "[::ffff:a9fe:a9fe]",       # IPv4-mapped 169.254.169.254
    "metadata.example.test", "cgnat.example.test", "mixed.example.test", "internal.example.test",
]
NAMES = {
    "metadata.example.test": ["169.254.169.254"],
    "cgnat.example.test": ["100.100.100.200"],
    "mixed.example.test": [PUBLIC_IP, "10.1.2.3"],  # one bad address refuses the name
    "internal.example.test": ["fd00:ec2::254"],
}


@pytest.fixture
def names(guarded):
    for name, addresses in NAMES.items():
        guarded.map(name, addresses)
    guarded.map(NAME, [PUBLIC_IP])
    return guarded


def resolved_addresses(host: str) -> list[str]:
    return NAMES.get(host, [])


SAGE_FORM = {"name": "Sage UK", "opt_company": "SAMLTD", "opt_user": "ADMIN", "secret_password": "portal-SECRET-1234"}
SAGE_API = {"system": "sage300", "name": "Sage UK", "credentials": {"password": "api-SAGE-secret-7777"},
            "options": {"company": "SAMLTD", "user": "ADMIN"}}


# --- every address form, everywhere a URL enters ----------------------------------------------------

@pytest.mark.parametrize("host", REFUSED_HOSTS)
def test_url_check_refuses_every_form_without_naming_the_address(names, host):
    with pytest.raises(ConnectorError) as caught:
        http.url_check(f"https://{host}:8443/Sage300WebApi/v1.0")
    assert caught.value.permanent
    assert "not allowed" in caught.value.message
    for address in resolved_addresses(host):
        assert address not in caught.value.message


@pytest.mark.parametrize("host", ["erp.example.test", "[::ffff:127.0.0.2]", "127.0.0.2"])
def test_url_check_allows_public_hosts(names, host):
    http.url_check(f"https://{host}/Sage300WebApi/v1.0")


@pytest.mark.django_db
@pytest.mark.parametrize("host", REFUSED_HOSTS)
def test_portal_form_refuses_every_form(names, owner_client, host):
    response = owner_client.post(reverse("connection_create", kwargs={"system": "sage300"}),
                                 {**SAGE_FORM, "base_url": f"http://{host}/"})
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert "not allowed" in " ".join(errors["base_url"])
    assert not Connection.objects.exists()
    for address in resolved_addresses(host):
        assert address not in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("host", REFUSED_HOSTS)
def test_api_refuses_every_form(names, owner_api, tenant, host):
    response = owner_api.post("/api/connections/", {**SAGE_API, "base_url": f"http://{host}/"}, format="json")
    assert response.status_code == 400
    assert "not allowed" in response.json()["fields"]["base_url"][0]
    for address in resolved_addresses(host):
        assert address not in response.content.decode()
    connection = ConnectionFactory(tenant=tenant, base_url="https://erp.example.test/")
    patched = owner_api.patch(f"/api/connections/{connection.pk}/", {"base_url": f"http://{host}/"}, format="json")
    assert patched.status_code == 400 and "not allowed" in patched.json()["fields"]["base_url"][0]


@pytest.mark.django_db
@pytest.mark.parametrize("host", REFUSED_HOSTS)
def test_call_time_refuses_a_connection_saved_while_private_networks_were_allowed(
        names, settings, servers, tenant, host):
    public, internal = servers()
    base_url = f"http://{host}:{internal.port}/Sage300WebApi/v1.0"
    connection = ConnectionFactory(tenant=tenant, base_url=base_url)
    settings.ALLOW_PRIVATE_NETWORKS = True
    client = Sage300Client.from_connection(connection, sleep=lambda s: None)  # built while allowed
    settings.ALLOW_PRIVATE_NETWORKS = False
    result = client.test_connection()
    assert not result.ok and "not allowed" in result.message
    assert INTERNAL_SECRET not in result.message
    for address in resolved_addresses(host):
        assert address not in result.message
    assert internal.hits == [] and public.hits == []

    stored = connection_ping(connection=connection)  # the portal's / API's test button
    assert not stored.ok and "not allowed" in stored.message
    assert internal.hits == []


@pytest.mark.django_db
def test_pipedrive_call_time_refusal(names, settings, servers, tenant):
    public, internal = servers()
    settings.ALLOW_PRIVATE_NETWORKS = True
    client = PipedriveClient(base_url=f"http://127.1:{internal.port}", api_token="pd-token-SECRET", plan="ultimate")
    settings.ALLOW_PRIVATE_NETWORKS = False
    with pytest.raises(ConnectorError) as caught:
        client.request("GET", "/v1/users/me")
    assert caught.value.permanent and "not allowed" in caught.value.message
    assert internal.hits == []


# --- redirects ---------------------------------------------------------------------------------------

def redirect_to(location: str):
    return lambda handler: (302, {"Location": location}, b"moved")


def test_redirect_to_an_internal_address_is_not_followed(names, servers):
    public, internal = servers()
    public.respond = redirect_to(f"http://{INTERNAL_IP}:{internal.port}/secret")
    client = Sage300Client(base_url=f"http://{NAME}:{public.port}", company="SAMLTD", user="ADMIN",
                           password="pw", sleep=lambda s: None)
    result = client.test_connection()
    assert not result.ok
    assert "redirect" in result.message and INTERNAL_SECRET not in result.message
    assert result.details["kind"] == "permanent"
    assert len(public.hits) == 1 and internal.hits == []


def test_redirect_to_a_name_resolving_internally_is_not_followed_by_the_session_either(names, servers):
    public, internal = servers()
    names.map("internal-alias.example.test", [INTERNAL_IP])
    public.respond = redirect_to(f"http://internal-alias.example.test:{internal.port}/secret")
    session = http.session_build()
    with pytest.raises(ConnectorError) as caught:
        http.request(session, "GET", f"http://{NAME}:{public.port}/", system="ERP")
    assert caught.value.permanent and "redirect" in caught.value.message
    # Even a caller asking the session itself to follow gets the 302, not the internal answer.
    answer = session.get(f"http://{NAME}:{public.port}/", allow_redirects=True, timeout=5)
    assert answer.status_code == 302 and INTERNAL_SECRET not in answer.text
    assert internal.hits == []


# --- DNS rebinding -----------------------------------------------------------------------------------

def test_rebinding_after_the_save_time_check_is_refused_at_connect(names, servers):
    public, internal = servers()
    names.map(NAME, [PUBLIC_IP], [INTERNAL_IP])  # public for the check, loopback afterwards
    http.url_check(f"http://{NAME}:{public.port}/")
    with pytest.raises(ConnectorError) as caught:
        http.request(http.session_build(), "GET", f"http://{NAME}:{public.port}/", system="ERP")
    assert "not allowed" in caught.value.message and INTERNAL_IP not in caught.value.message
    assert internal.hits == [] and public.hits == []


def test_connect_goes_to_the_checked_address_and_keeps_the_host_name(names, servers):
    public, internal = servers(lambda handler: (200, {}, handler.headers["Host"].encode()))
    names.map(NAME, [PUBLIC_IP], [INTERNAL_IP])  # a second lookup would be answered with loopback
    session = http.session_build()
    url = f"http://{NAME}:{public.port}/"
    answers = [http.request(session, "GET", url, system="ERP").text for _ in range(3)]
    assert answers == [f"{NAME}:{public.port}"] * 3  # Host header is the name
    assert names.calls == [NAME]  # one lookup; keep-alive reused the checked connection
    assert public.connections == 1
    names.map(NAME, [INTERNAL_IP])  # the next new connection is checked again
    with pytest.raises(ConnectorError) as caught:
        http.request(http.session_build(), "GET", url, system="ERP")
    assert "not allowed" in caught.value.message
    assert internal.hits == []
