"""ssrf: the address forms of issue 8 §1, through `url_check` and through a real call with
ALLOW_PRIVATE_NETWORKS off. Traffic stays on loopback: loopback forms go to a counting listener on
127.0.0.1 (and ::1); every other address goes through a patched socket.connect that records the attempt
and refuses; host names come from a stub resolver (no DNS query leaves the machine), and "public"
addresses are routed to a loopback server (one of them answers with a redirect to the listener).
reached = probes whose listener counted a hit or whose non-loopback connect was attempted."""

from __future__ import annotations

import ipaddress
import socket
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from reliability.base import Context

PUBLIC = "93.184.216.34"  # stands for an allowed internet host; routed to a loopback server
REDIRECTOR = "93.184.216.35"  # an allowed host that answers 302 → the internal listener


class _Counting(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 — http.server's naming
        self.server.hits += 1
        if self.server.redirect_to and self.headers.get("Host", "").startswith("redirect."):
            self.send_response(302)
            self.send_header("Location", self.server.redirect_to)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = b"internal-service-answer"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_HEAD = do_GET

    def log_message(self, *args):
        pass


def _server(host: str, port: int = 0, redirect_to: str = "") -> ThreadingHTTPServer:
    cls = type("Server", (ThreadingHTTPServer,), {"address_family": socket.AF_INET6 if ":" in host
                                                   else socket.AF_INET, "daemon_threads": True})
    server = cls((host, port), _Counting)
    server.hits, server.redirect_to = 0, redirect_to
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _is_local(ip) -> bool:
    mapped = getattr(ip, "ipv4_mapped", None)
    return ip.is_loopback or ip.is_unspecified or bool(mapped and (mapped.is_loopback or mapped.is_unspecified))


class Network:
    """Stub DNS + a connect() that only ever reaches loopback."""

    def __init__(self, public_port: int):
        self.public_port = public_port
        self.names: dict[str, list[str]] = {}
        self.calls: dict[str, int] = {}
        self.attempts: list[str] = []

    def resolve(self, host: str) -> str | None:
        answers = self.names.get(host.lower().rstrip("."))
        if not answers:
            return None
        n = self.calls.get(host, 0)
        self.calls[host] = n + 1
        return answers[min(n, len(answers) - 1)]  # rebinding: each lookup may answer differently

    @contextmanager
    def installed(self):
        real_getaddrinfo, real_connect, real_connect_ex = socket.getaddrinfo, socket.socket.connect, \
            socket.socket.connect_ex
        net = self

        def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):  # noqa: A002
            if isinstance(host, bytes):
                host = host.decode()
            answer = net.resolve(host) if host else None
            if answer is not None:
                host = answer
            # numeric hosts only: a name nobody stubbed fails instead of querying DNS
            return real_getaddrinfo(host, port, family, type, proto, flags | socket.AI_NUMERICHOST)

        def route(address):
            host = address[0].split("%")[0]
            ip = ipaddress.ip_address(host)
            if str(ip) in (PUBLIC, REDIRECTOR):
                return ("127.0.0.1", net.public_port) if len(address) == 2 else None
            if _is_local(ip):
                return address
            net.attempts.append(str(ip))
            return None

        def connect(self, address):
            target = route(address) if isinstance(address, tuple) else address
            if target is None:
                raise ConnectionRefusedError(f"reliability ssrf suite: no traffic to {address[0]}")
            if self.family == socket.AF_INET6 and target[0] == "127.0.0.1":
                target = ("::ffff:127.0.0.1", target[1], 0, 0)
            return real_connect(self, target)

        def connect_ex(self, address):
            try:
                connect(self, address)
                return 0
            except OSError as exc:
                return exc.errno or 111

        socket.getaddrinfo, socket.socket.connect, socket.socket.connect_ex = getaddrinfo, connect, connect_ex
        try:
            yield self
        finally:
            socket.getaddrinfo, socket.socket.connect, socket.socket.connect_ex = real_getaddrinfo, real_connect, \
                real_connect_ex


def probes(port: int) -> list[tuple[str, str, bool]]:
    """(name, url, the guard should refuse it at check time)."""
    hosts = {
        "loopback": "127.0.0.1", "decimal": "2130706433", "octal": "0177.0.0.1", "hex": "0x7f.0.0.1",
        "hex_whole": "0x7f000001", "short": "127.1", "ipv4_mapped": "[::ffff:127.0.0.1]",
        "ipv4_mapped_hex": "[::ffff:7f00:1]", "unspecified": "0.0.0.0", "ipv6_loopback": "[::1]",
        "localhost": "localhost", "private_10": "10.0.0.1", "private_172": "172.16.0.1",
        "private_192": "192.168.0.1", "link_local": "169.254.1.1", "metadata_aws": "169.254.169.254",
        "metadata_alibaba": "100.100.100.200", "cgnat_100_64": "100.64.0.1", "ipv6_link_local": "[fe80::1]",
        "ipv6_unique_local": "[fd00::1]", "metadata_aws_ipv6": "[fd00:ec2::254]",
        "6to4_loopback": "[2002:7f00:1::1]", "6to4_metadata": "[2002:a9fe:a9fe::1]",
        "nat64_loopback": "[64:ff9b::7f00:1]", "nat64_metadata": "[64:ff9b::a9fe:a9fe]",
        "name_to_metadata": "metadata.google.internal", "name_to_loopback": "internal.example",
    }
    out = [(name, f"http://{host}:{port}/", True) for name, host in hosts.items()]
    # allowed hosts whose danger only shows at call time
    out += [("dns_rebinding", f"http://rebind.example:{port}/", False),
            ("redirect_to_loopback", f"http://redirect.example:{port}/", False)]
    return out


def run(ctx: Context) -> dict:
    from django.test.utils import override_settings

    from connectors.base import ConnectorError
    from connectors.http import request, session_build, url_check

    listener = _server("127.0.0.1")
    port = listener.server_address[1]
    try:
        listener6 = _server("::1", port)
    except OSError:  # no IPv6 loopback here: the [::1] probe then counts as an attempt only
        listener6 = None
    public = _server("127.0.0.1", redirect_to=f"http://127.0.0.1:{port}/")
    net = Network(public.server_address[1])
    results = {}
    try:
        with override_settings(ALLOW_PRIVATE_NETWORKS=False), net.installed():
            for name, url, refuse in probes(port):
                net.names = {"localhost": ["127.0.0.1"], "metadata.google.internal": ["169.254.169.254"],
                             "internal.example": ["127.0.0.1"], "rebind.example": [PUBLIC, "127.0.0.1"],
                             "redirect.example": [REDIRECTOR]}
                row = {}
                for path in ("client", "call_time"):
                    net.calls, net.attempts = {}, []
                    before = listener.hits + (listener6.hits if listener6 else 0)
                    passed = True
                    if path == "client":  # what a client does: check the URL, then call it
                        try:
                            url_check(url)
                        except ConnectorError:
                            passed = False
                        row["check_passed"] = passed
                    if passed:
                        try:
                            request(session_build(), "GET", url, system="probe", timeout=(2, 2))
                        except ConnectorError:
                            pass
                    hits = listener.hits + (listener6.hits if listener6 else 0) - before
                    row[path] = bool(hits or net.attempts)
                row["should_refuse_at_check"] = refuse
                results[name] = row
    finally:
        for server in (listener, listener6, public):
            if server:
                server.shutdown()
                server.server_close()
    reached = sorted(n for n, r in results.items() if r["client"] or r["call_time"])
    passed_check = sorted(n for n, r in results.items() if r["check_passed"] and r["should_refuse_at_check"])
    return {"ok": not reached and not passed_check, "reached": len(reached), "probes": len(results),
            "passed_url_check": len(passed_check), "reached_probes": reached, "passed_url_check_probes": passed_check,
            "reached_through_client": sorted(n for n, r in results.items() if r["client"])}
