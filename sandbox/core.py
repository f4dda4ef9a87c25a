"""The sandbox's HTTP plumbing: one threaded server, several simulated systems, fault injection.

Each simulator is an object with `prefixes` (URL path prefixes it owns), `handle(req) -> Response`
for the system's own API, and `control(req, subpath) -> Response` for the test/operator API under
`/_sandbox/<name>/...`. Faults (5xx, 429, slow, timeouts, dropped connections) are injected here, per
system, before the simulator sees the request, so every simulator gets them the same way; each one is
counted by kind and HTTP method (`GET /_sandbox/<name>/faults` -> counts, counts_by_method), so a test
can show that the faults it asked for really fired.
This package imports no product code: it stands in for outside systems reached only over HTTP.
"""

from __future__ import annotations

import json
import random
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    client: str = ""

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    def json(self) -> Any:
        if not self.body:
            return None
        return json.loads(self.body)


@dataclass
class Response:
    status: int = 200
    body: bytes | str | dict | list | None = None
    headers: dict[str, str | list[str]] = field(default_factory=dict)  # a list sends the header once per value
    content_type: str = "application/json"

    def payload(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body, separators=(",", ":"), default=str).encode()


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(status=status, body=data, headers=headers or {})


def control_input(req: Request, subpath: str) -> tuple[list[str], dict[str, Any]] | Response:
    """The path segments and JSON-object body of a call to a simulator's control API, or the 400 to
    answer when the body is not a JSON object."""
    parts = [unquote(p) for p in subpath.strip("/").split("/") if p]
    try:
        data = req.json() if req.body else {}
    except ValueError:
        return json_response({"error": "the body must be JSON"}, 400)
    data = data or {}
    if not isinstance(data, dict):
        return json_response({"error": "the body must be a JSON object"}, 400)
    return parts, data


class Simulator(Protocol):
    name: str
    prefixes: tuple[str, ...]

    def handle(self, req: Request) -> Response: ...

    def control(self, req: Request, subpath: str) -> Response: ...

    def reset(self) -> None: ...


@dataclass
class Faults:
    """Per-system fault knobs; fractions are probabilities per request (seeded, reproducible)."""

    error_5xx: float = 0.0
    rate_429: float = 0.0
    slow: float = 0.0
    slow_seconds: float = 2.0
    drop: float = 0.0
    timeout: float = 0.0  # hold the request `timeout_seconds` (longer than the client waits), then drop it
    timeout_seconds: float = 5.0
    seed: int = 0
    exclude_prefixes: tuple[str, ...] = ()
    _rng: random.Random = field(default_factory=random.Random, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def configure(self, data: dict[str, Any]) -> None:
        with self._lock:
            for key in ("error_5xx", "rate_429", "slow", "slow_seconds", "drop", "timeout", "timeout_seconds"):
                if key in data:
                    setattr(self, key, float(data[key]))
            if "exclude_prefixes" in data:
                self.exclude_prefixes = tuple(data["exclude_prefixes"])
            self.seed = int(data.get("seed", self.seed))
            self._rng.seed(self.seed)

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("error_5xx", "rate_429", "slow", "slow_seconds", "drop", "timeout",
                                              "timeout_seconds", "seed")}

    def draw(self, path: str) -> str | None:
        """Which fault (if any) hits this request: 'drop', 'timeout', '5xx', '429', 'slow' or None."""
        if any(path.startswith(p) for p in self.exclude_prefixes):
            return None
        with self._lock:
            roll = self._rng.random()
        for name, chance in (("drop", self.drop), ("timeout", self.timeout), ("5xx", self.error_5xx),
                             ("429", self.rate_429), ("slow", self.slow)):
            if roll < chance:
                return name
            roll -= chance
        return None


class Sandbox:
    """All simulators behind one port. Routing is by path prefix."""

    def __init__(self, simulators: list[Simulator]):
        self.simulators = {sim.name: sim for sim in simulators}
        self.faults = {sim.name: Faults() for sim in simulators}
        self.fault_counts: dict[str, dict[str, int]] = {sim.name: {} for sim in simulators}
        self.fault_counts_by_method: dict[str, dict[str, dict[str, int]]] = {sim.name: {} for sim in simulators}
        self._counts_lock = threading.Lock()
        for sim in simulators:  # a simulator serving a second listener (SAP B1's HTTPS) needs the whole sandbox
            bind = getattr(sim, "bind", None)
            if bind:
                bind(self)

    def fault_count(self, name: str, fault: str, method: str) -> None:
        with self._counts_lock:
            counts = self.fault_counts[name]
            counts[fault] = counts.get(fault, 0) + 1
            by_method = self.fault_counts_by_method[name].setdefault(fault, {})
            by_method[method] = by_method.get(method, 0) + 1

    def route(self, path: str) -> Simulator | None:
        lowered = path.lower()
        for sim in self.simulators.values():
            if any(path.startswith(prefix) for prefix in sim.prefixes):
                return sim
            # IIS-hosted systems (SYSPRO) match paths whatever their case
            if getattr(sim, "case_insensitive_prefixes", False) and any(
                    lowered.startswith(prefix.lower()) for prefix in sim.prefixes):
                return sim
        return None

    def dispatch(self, req: Request) -> Response | None:
        """None means: drop the connection without answering."""
        if req.path.startswith("/_sandbox/"):
            return self.control(req)
        sim = self.route(req.path)
        if sim is None:
            return json_response({"error": f"no simulated system serves {req.path}"}, 404)
        fault = self.faults[sim.name].draw(req.path)
        if fault:
            self.fault_count(sim.name, fault, req.method)
            if fault == "drop":
                return None
            if fault == "timeout":  # the client gives up first; the request is never served
                time.sleep(self.faults[sim.name].timeout_seconds)
                return None
            if fault == "5xx":
                maker = getattr(sim, "injected_5xx", None)  # a simulator may answer in its own envelope
                return maker(req) if maker else json_response({"success": False, "error": "Injected server error"},
                                                              503)
            if fault == "429":
                return self.fault_429(sim, req)
            if fault == "slow":
                time.sleep(self.faults[sim.name].slow_seconds)
        return sim.handle(req)

    def fault_429(self, sim: Simulator, req: Request) -> Response:
        maker = getattr(sim, "injected_429", None)
        if maker:
            return maker(req)
        return json_response({"error": "Too many requests"}, 429, {"Retry-After": "1"})

    def control(self, req: Request) -> Response:
        parts = req.path.strip("/").split("/", 2)  # _sandbox, name, rest
        if len(parts) == 2 and parts[1] == "health":
            return json_response({"ok": True, "systems": sorted(self.simulators)})
        if len(parts) == 2 and parts[1] == "reset" and req.method == "POST":
            for name, sim in self.simulators.items():
                sim.reset()
                self.faults[name] = Faults()
                self.fault_counts[name] = {}
                self.fault_counts_by_method[name] = {}
            return json_response({"ok": True})
        if len(parts) < 2 or parts[1] not in self.simulators:
            return json_response({"error": "unknown sandbox control path"}, 404)
        name, rest = parts[1], parts[2] if len(parts) > 2 else ""
        if rest == "faults":
            if req.method == "POST":
                self.faults[name].configure(req.json() or {})
            with self._counts_lock:
                return json_response({"faults": self.faults[name].as_dict(), "counts": dict(self.fault_counts[name]),
                                      "counts_by_method": {k: dict(v) for k, v in
                                                           self.fault_counts_by_method[name].items()}})
        return self.simulators[name].control(req, rest)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: clients reuse connections as they would in production
    disable_nagle_algorithm = True  # headers and body go out in two writes: without this, +40 ms per response
    sandbox: Sandbox

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet by default
        pass

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        req = Request(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            client=self.client_address[0],
        )
        try:
            resp = self.sandbox.dispatch(req)
        except Exception as exc:  # a simulator bug must look like a server error, not hang the client
            resp = json_response({"success": False, "error": f"sandbox internal error: {exc!r}"}, 500)
        if resp is None:
            self.close_connection = True
            try:
                self.connection.shutdown(2)
            except OSError:
                pass
            return
        payload = resp.payload()
        if any(key.lower() == "date" for key in resp.headers):  # a simulated clock: its Date, not ours
            self.log_request(resp.status)
            self.send_response_only(resp.status)
        else:
            self.send_response(resp.status)
        if payload or resp.status not in (204, 304):
            self.send_header("Content-Type", resp.content_type)
        self.send_header("Content-Length", str(len(payload)))
        for key, value in resp.headers.items():
            for item in value if isinstance(value, list) else (value,):
                self.send_header(key, item)
        self.end_headers()
        if payload and self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256


def bound_handler(sandbox: Sandbox) -> type[Handler]:
    return type("BoundHandler", (Handler,), {"sandbox": sandbox})


def serve(sandbox: Sandbox, host: str = "127.0.0.1", port: int = 8100) -> Server:
    return Server((host, port), bound_handler(sandbox))
