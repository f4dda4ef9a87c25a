"""An optional HTTPS listener on 127.0.0.1 serving the same sandbox, with a self-signed certificate
made at start (on-premise Service Layers usually present one), so clients can test a CA bundle or a
pinned fingerprint. Started once, on the first GET /_sandbox/sap_b1/tls."""

from __future__ import annotations

import hashlib
import ipaddress
import os
import socket
import ssl
import tempfile
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from sandbox.core import Request, Server, bound_handler

HANDSHAKE_TIMEOUT_S = 10


def self_signed() -> tuple[bytes, bytes]:
    """(certificate PEM, private key PEM): EC P-256, SAN IP:127.0.0.1 and DNS:localhost."""
    from cryptography import x509  # imported here: only a test asking for HTTPS pays for it
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ml-connector sandbox (SAP B1)")])
    now = datetime.now(UTC)
    public = key.public_key()
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                    x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


class TlsServer(Server):
    """Handshakes in the per-connection thread, so a silent client never stalls the accept loop."""

    context: ssl.SSLContext

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(HANDSHAKE_TIMEOUT_S)
        try:
            conn = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        try:
            self.RequestHandlerClass(conn, client_address, self)
        finally:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()


class TlsListener:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.server: TlsServer | None = None
        self.info: dict[str, Any] = {}

    def serves(self, req: Request) -> bool:
        port = self.info.get("port")
        return bool(port) and req.headers.get("host", "").endswith(f":{port}")

    def start(self, sandbox: Any) -> dict[str, Any]:
        with self.lock:
            if self.server is None:
                cert_pem, key_pem = self_signed()
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                context.minimum_version = ssl.TLSVersion.TLSv1_2
                # load_cert_chain reads files only; the key file lives just long enough to be loaded
                with tempfile.TemporaryDirectory() as tmp:
                    cert_path, key_path = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
                    with open(cert_path, "wb") as fh:
                        fh.write(cert_pem)
                    with open(os.open(key_path, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as fh:
                        fh.write(key_pem)
                    context.load_cert_chain(cert_path, key_path)
                server = TlsServer(("127.0.0.1", 0), bound_handler(sandbox))
                server.context = context
                threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True,
                                 name="sap-b1-https").start()
                self.server = server
                der = ssl.PEM_cert_to_DER_cert(cert_pem.decode())
                digest = hashlib.sha256(der).hexdigest()
                port = server.server_address[1]
                self.info = {"port": port, "url": f"https://127.0.0.1:{port}", "cert_pem": cert_pem.decode(),
                             "sha256": digest,
                             "sha256_colon": ":".join(digest[i:i + 2].upper() for i in range(0, 64, 2))}
            return self.info
