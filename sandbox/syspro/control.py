"""The SYSPRO simulator's operator API (/_sandbox/syspro/...), documented in app.py, and its transient
faults (HTTP 500/503, dropped connections, `ERROR:` bodies)."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

from sandbox.core import Request, Response, control_input, json_response
from sandbox.syspro.store import Company

if TYPE_CHECKING:
    from sandbox.syspro.app import SysproSimulator

FAULT_KINDS = ("500", "503", "drop", "error")
OPERATIONS = ("logon", "query", "logoff", "odata", "other")


@dataclass
class TransientFaults:
    rate: float = 0.0
    kinds: tuple[str, ...] = FAULT_KINDS
    operations: tuple[str, ...] = ("logon", "query", "logoff", "odata")
    seed: int = 0
    _rng: random.Random = field(default_factory=random.Random, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def configure(self, data: dict[str, Any]) -> None:
        with self._lock:
            if "rate" in data:
                rate = float(data["rate"])
                if not 0 <= rate <= 1:
                    raise ValueError("rate must be between 0 and 1")
                self.rate = rate
            if "kinds" in data:
                kinds = tuple(str(k) for k in data["kinds"])
                if not kinds or any(k not in FAULT_KINDS for k in kinds):
                    raise ValueError(f"kinds must be some of {', '.join(FAULT_KINDS)}")
                self.kinds = kinds
            if "operations" in data:
                ops = tuple(str(o) for o in data["operations"])
                if any(o not in OPERATIONS for o in ops):
                    raise ValueError(f"operations must be some of {', '.join(OPERATIONS)}")
                self.operations = ops
            self.seed = int(data.get("seed", self.seed))
            self._rng.seed(self.seed)

    def as_dict(self) -> dict[str, Any]:
        return {
            "rate": self.rate,
            "kinds": list(self.kinds),
            "operations": list(self.operations),
            "seed": self.seed,
        }

    def draw(self, operation: str) -> str | None:
        if not self.rate or operation not in self.operations:
            return None
        with self._lock:
            if self._rng.random() >= self.rate:
                return None
            return self.kinds[int(self._rng.random() * len(self.kinds))]


class Control:
    def __init__(self, sim: SysproSimulator):
        self.sim = sim

    def route(self, req: Request, subpath: str) -> Response:
        got = control_input(req, subpath)
        if isinstance(got, Response):
            return got
        parts, data = got
        try:
            with self.sim.lock:
                return self.dispatch(req.method, parts, data)
        except KeyError as exc:
            return json_response({"error": str(exc.args[0]) if exc.args else "not found"}, 404)
        except (ValueError, TypeError) as exc:
            return json_response({"error": str(exc)}, 400)

    def dispatch(self, method: str, parts: list[str], data: dict[str, Any]) -> Response:
        sim = self.sim
        if parts == ["stats"]:
            if method == "DELETE":
                sim.clear_stats()
            return json_response(
                {**sim.stats, "sessions_active": sim.sessions.live(), "recent": list(sim.recent)}
            )
        if parts == ["settings"]:
            if method == "POST":
                self.settings(data)
            return json_response(sim.settings)
        if parts == ["reset"] and method == "POST":
            sim.reset()
            return json_response({"ok": True})
        if parts == ["expire_sessions"] and method == "POST":
            return json_response({"expired": sim.sessions.expire_all()})
        if parts == ["transient_faults"]:
            if method == "POST":
                sim.transient.configure(data)
            return json_response(sim.transient.as_dict())
        if parts == ["companies"]:
            if method == "POST":
                return json_response(self.company_create(data), 201)
            return json_response({"companies": [c.info() for c in sim.companies.values()]})
        if len(parts) < 2 or parts[0] != "companies":
            return json_response({"error": "unknown syspro control path"}, 404)
        company = sim.companies.get(parts[1])
        if company is None:
            return json_response({"error": f"no company {parts[1]!r}"}, 404)
        return self.company_path(method, company, parts[2:], data)

    def settings(self, data: dict[str, Any]) -> None:
        settings = self.sim.settings
        for key in ("licence_limit", "latency_ms"):
            if key in data:
                settings[key] = max(0, int(data[key]))
        for key in ("max_rows", "odata_page_size"):
            if key in data:
                settings[key] = max(1, int(data[key]))
        if "idle_timeout_s" in data:
            settings["idle_timeout_s"] = max(0.05, float(data["idle_timeout_s"]))

    def company_path(self, method: str, company: Company, rest: list[str], data: dict[str, Any]) -> Response:
        if not rest:
            if method == "DELETE":
                del self.sim.companies[company.company_id]
                return json_response({"deleted": company.company_id})
            return json_response(company.info())
        if rest == ["clock"] and method == "POST":
            company.set_clock(data["now"])
            return json_response(company.info())
        if rest == ["customers"] and method == "POST":
            return json_response(company.customer_create(data), 201)
        if rest == ["orders"] and method == "POST":
            return json_response(company.order_create(data), 201)
        if len(rest) == 2 and rest[0] == "customers" and method == "POST":
            return json_response(company.customer_change(rest[1], data))
        if len(rest) == 3 and rest[0] == "stock" and method == "POST":
            return json_response(company.stock_set(rest[1], rest[2], data))
        if len(rest) >= 2 and rest[0] == "orders":
            number, tail = rest[1], rest[2:]
            if not tail and method == "GET":
                return json_response({"header": company.order(number), "lines": company.order_lines(number)})
            if tail == ["status"] and method == "POST":
                return json_response(
                    company.order_status(number, data.get("order_status"), data.get("shipment_status"))
                )
            if tail == ["lines"] and method == "POST":
                return json_response(company.line_put(number, data))
            if len(tail) == 2 and tail[0] == "lines" and method == "DELETE":
                company.line_remove(number, int(tail[1]))
                return json_response({"removed": int(tail[1])})
            if tail == ["malformed"] and method == "POST":
                return json_response(company.malform(number, str(data.get("kind", ""))))
        return json_response({"error": "unknown syspro control path"}, 404)

    def company_create(self, data: dict[str, Any]) -> dict[str, Any]:
        company_id = str(data.get("company_id") or "SYS")
        operators = {str(data.get("operator") or "ADMIN"): str(data.get("password", "admin"))}
        operators.update({str(k): str(v) for k, v in (data.get("operators") or {}).items()})
        lines_max = int(data.get("lines_max", 20))
        if not 1 <= lines_max <= 20:
            raise ValueError("lines_max must be between 1 and 20")
        today = date.fromisoformat(str(data["today"])[:10]) if data.get("today") else date(2026, 11, 20)
        company = Company(
            company_id, str(data.get("company_password") or ""), operators, today, int(data.get("seed", 0))
        )
        company.populate(
            customers=max(0, int(data.get("customers", 0))),
            orders=max(0, int(data.get("orders", 0))),
            lines_max=lines_max,
            items=max(1, int(data.get("items", 200))),
        )
        self.sim.companies[company_id] = company
        return company.info()
