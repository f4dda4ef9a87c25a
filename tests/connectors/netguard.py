"""Loopback plumbing for the SSRF and TLS tests: a stub resolver, a net that fails any test trying
to reach a non-loopback address, and small HTTP(S) servers on 127.0.0.x that count what they get.

127.0.0.2 plays the "public" ERP (settings.OUTBOUND_ALLOWED_NETWORKS says it counts as public);
127.0.0.1 plays the internal service an attacker wants to reach. No real name is ever resolved."""

from __future__ import annotations

import ipaddress
import socket
import ssl
import threading
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

PUBLIC_IP = "127.0.0.2"
INTERNAL_IP = "127.0.0.1"
INTERNAL_SECRET = "internal-service-SECRET-answer"

_real_getaddrinfo = socket.getaddrinfo
_real_connect = socket.socket.connect


class StubResolver:
    """Answers for the names a test maps (a list of answers is served in turn, the last repeats);
    IP literals go to the real resolver in numeric-only mode; any other name does not exist."""

    def __init__(self) -> None:
        self.names: dict[str, list[list[str]]] = {}
        self.calls: list[str] = []

    def map(self, name: str, *answers: Iterable[str] | str) -> None:
        self.names[name] = [[a] if isinstance(a, str) else list(a) for a in answers]

    def getaddrinfo(self, host, port, family=0, type=0, proto=0, flags=0):
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name.lower().rstrip(".") in self.names:
            self.calls.append(name)
            answers = self.names[name.lower().rstrip(".")]
            addresses = answers.pop(0) if len(answers) > 1 else answers[0]
            port = int(port or 0)
            result = []
            for address in addresses:
                if ":" in address:
                    result.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port, 0, 0)))
                else:
                    result.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port)))
            return result
        return _real_getaddrinfo(host, port, family, type, proto, flags | socket.AI_NUMERICHOST)


def _loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_loopback


@pytest.fixture
def resolver(monkeypatch):
    stub = StubResolver()
    monkeypatch.setattr(socket, "getaddrinfo", stub.getaddrinfo)

    def connect(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(address[0]):
            raise AssertionError(f"a test tried to connect to a non-loopback address {address[0]}")
        return _real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    return stub


@pytest.fixture
def guarded(settings, resolver):
    """Private networks refused; 127.0.0.2 counts as public, 127.0.0.1 does not."""
    settings.ALLOW_PRIVATE_NETWORKS = False
    settings.OUTBOUND_ALLOWED_NETWORKS = [f"{PUBLIC_IP}/32"]
    return resolver


class Server:
    """A threaded HTTP/1.1 (keep-alive) server; `respond(handler)` returns (status, headers, body)."""

    def __init__(self, host: str, port: int = 0, *, respond: Callable | None = None,
                 tls: ssl.SSLContext | None = None) -> None:
        self.hits: list[str] = []
        self.connections = 0
        self.respond = respond or (lambda handler: (200, {"Content-Type": "application/json"},
                                                    b'{"value": [], "@odata.count": 0}'))
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                server.connections += 1
                super().setup()

            def do_GET(self):
                server.hits.append(self.path)
                status, headers, body = server.respond(self)
                self.send_response(status)
                for key, value in {**headers, "Content-Length": str(len(body))}.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_GET

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def servers():
    """(public, internal): the same port on 127.0.0.2 and 127.0.0.1, so a connection that goes to
    the wrong address lands on the internal server and is counted there."""
    started: list[Server] = []

    def start(public_respond: Callable | None = None, *, tls: ssl.SSLContext | None = None):
        internal = Server(INTERNAL_IP, respond=lambda h: (200, {}, INTERNAL_SECRET.encode()), tls=tls)
        started.append(internal)
        public = Server(PUBLIC_IP, internal.port, respond=public_respond, tls=tls)
        started.append(public)
        return public, internal

    yield start
    for server in started:
        server.stop()
