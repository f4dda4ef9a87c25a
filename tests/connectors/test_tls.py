"""TLS for self-signed ERP servers: a pinned fingerprint accepts exactly that certificate, a CA bundle
works (hostname checked on the name while connecting to the checked IP), and nothing is written to
the temporary directory. A self-signed certificate is made at test time; the server is on loopback."""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
import tempfile

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from connectors import http
from connectors.base import ConnectorError
from connectors.sage300.client import Sage300Client
from connectors.services import connection_create
from tests.connectors import netguard
from tests.connectors.netguard import PUBLIC_IP, Server

resolver, guarded = netguard.resolver, netguard.guarded  # fixtures

NAME = "erp.example.test"


def self_signed(common_name: str, *, dns: list[str], ips: list[str]) -> tuple[bytes, bytes, bytes]:
    """(cert PEM, key PEM, cert DER)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    sans = [x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem, cert.public_bytes(serialization.Encoding.DER)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tls")
    made = {}
    for label, dns in (("server", [NAME]), ("other", ["other.example.test"])):
        cert_pem, key_pem, der = self_signed(label, dns=dns, ips=[PUBLIC_IP])
        (folder / f"{label}.pem").write_bytes(cert_pem + key_pem)
        made[label] = {"pem": cert_pem.decode(), "der": der, "path": str(folder / f"{label}.pem")}
    return made


@pytest.fixture
def https(guarded, certs):
    """An HTTPS server on the "public" loopback address, presenting the `server` certificate."""
    guarded.map(NAME, [PUBLIC_IP])
    guarded.map("wrong-name.example.test", [PUBLIC_IP])
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certs["server"]["path"])
    server = Server(PUBLIC_IP, tls=context)
    yield server
    server.stop()


def get(url: str, **tls) -> str:
    return http.request(http.session_build(**tls), "GET", url, system="ERP").text


def colons(hex_digits: str) -> str:
    return ":".join(hex_digits[i:i + 2] for i in range(0, 64, 2)).upper()


def test_pinned_fingerprint_accepts_exactly_that_certificate(https, certs):
    pin = http.fingerprint_of(certs["server"]["der"])
    # Hostname need not match: the pin is the identity.
    assert "@odata.count" in get(f"https://wrong-name.example.test:{https.port}/", pinned_sha256=pin)
    assert "@odata.count" in get(f"https://{NAME}:{https.port}/", pinned_sha256=colons(pin))
    with pytest.raises(ConnectorError) as other:
        get(f"https://{NAME}:{https.port}/", pinned_sha256=http.fingerprint_of(certs["other"]["der"]))
    assert other.value.permanent and "certificate" in other.value.message
    with pytest.raises(ConnectorError) as unpinned:  # and without the pin the system CAs decide: no
        get(f"https://{NAME}:{https.port}/")
    assert unpinned.value.permanent and "certificate" in unpinned.value.message


def test_ca_bundle_works_and_leaves_no_temporary_files(https, certs, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # a directory no other process writes to
    before = set(os.listdir(tempfile.gettempdir()))
    for _ in range(20):
        session = http.session_build(ca_bundle_pem=certs["server"]["pem"])
        assert "@odata.count" in http.request(session, "GET", f"https://{NAME}:{https.port}/", system="ERP").text
        session.close()
    assert set(os.listdir(tempfile.gettempdir())) - before == set()
    with pytest.raises(ConnectorError) as wrong_name:  # connected to the checked IP, but the name is verified
        get(f"https://wrong-name.example.test:{https.port}/", ca_bundle_pem=certs["server"]["pem"])
    assert wrong_name.value.permanent and "certificate" in wrong_name.value.message
    with pytest.raises(ConnectorError) as other_ca:
        get(f"https://{NAME}:{https.port}/", ca_bundle_pem=certs["other"]["pem"])
    assert other_ca.value.permanent and "certificate" in other_ca.value.message


@pytest.mark.django_db
def test_sage_connection_with_a_pinned_fingerprint_pings(https, certs, tenant):
    connection = connection_create(
        tenant=tenant, system="sage300", name="Sage (self-signed)", base_url=f"https://{NAME}:{https.port}",
        credentials={"password": "pw-SECRET-123"}, options={"company": "SAMLTD", "user": "ADMIN"},
        tls_pinned_sha256=colons(http.fingerprint_of(certs["server"]["der"])))
    result = Sage300Client.from_connection(connection, sleep=lambda s: None).test_connection()
    assert result.ok, result.message
    assert https.hits and https.hits[0].startswith("/Sage300WebApi/v1.0/-/SAMLTD/AR/ARCustomers")


@pytest.mark.django_db
def test_an_unreadable_ca_bundle_is_a_field_error(tenant):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as caught:
        connection_create(tenant=tenant, system="sage300", name="Sage", base_url="https://127.0.0.2",
                          credentials={"password": "pw"}, options={"company": "SAMLTD", "user": "ADMIN"},
                          tls_ca_bundle="-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----")
    assert "tls_ca_bundle" in caught.value.message_dict
