"""The SAP B1 simulator's operator API (/_sandbox/sap_b1/...), documented in app.py."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

from sandbox.core import Request, Response, control_input, json_response
from sandbox.sap_b1.store import Company

if TYPE_CHECKING:
    from sandbox.sap_b1.app import SapB1Simulator


class Control:
    def __init__(self, sim: SapB1Simulator):
        self.sim = sim

    def route(self, req: Request, subpath: str) -> Response:
        got = control_input(req, subpath)
        if isinstance(got, Response):
            return got
        parts, data = got
        if parts == ["tls"]:  # outside the lock: starting the listener generates a key
            return json_response(self.sim.tls.start(self.sim.sandbox))
        try:
            with self.sim.lock:
                return self.dispatch(req.method, parts, data)
        except (ValueError, TypeError, KeyError) as exc:
            return json_response({"error": str(exc)}, 400)

    def dispatch(self, method: str, parts: list[str], data: dict[str, Any]) -> Response:
        sim = self.sim
        if parts == ["stats"]:
            if method == "DELETE":
                sim.clear_stats()
            return json_response({**sim.stats, "sessions_active": sim.sessions.live(), "recent": list(sim.recent)})
        if parts == ["settings"]:
            if method == "POST":
                for key in ("page_size", "latency_ms"):
                    if key in data:
                        sim.settings[key] = max(0, int(data[key]))
                if "session_timeout_s" in data:
                    sim.settings["session_timeout_s"] = max(0.1, float(data["session_timeout_s"]))
            return json_response(sim.settings)
        if parts == ["reset"] and method == "POST":
            sim.reset()
            return json_response({"ok": True})
        if parts == ["expire_sessions"] and method == "POST":
            return json_response({"expired": sim.sessions.expire_all()})
        if parts == ["commit_faults"]:
            if method == "POST":
                sim.commit_faults.configure(data)
            return json_response(sim.commit_faults.as_dict())
        if parts == ["companies"]:
            if method == "POST":
                return json_response(self.company_create(data), 201)
            return json_response({"companies": [c.info() for c in sim.companies.values()]})
        if len(parts) < 2 or parts[0] != "companies":
            return json_response({"error": "unknown sap_b1 control path"}, 404)
        company = sim.companies.get(parts[1])
        if company is None:
            return json_response({"error": f"no company {parts[1]!r}"}, 404)
        rest = parts[2:]
        if not rest:
            if method == "DELETE":
                del sim.companies[company.db]
                return json_response({"deleted": company.db})
            return json_response(company.info())
        if rest == ["mutate"] and method == "POST":
            return json_response(company.mutate(data))
        if rest == ["clock"] and method == "POST":
            company.set_clock(data.get("today"), data.get("time"))
            return json_response(company.info())
        if rest == ["orders"] and method == "GET":
            return json_response({"orders": company.posted_orders, "rejected": company.rejected_orders})
        if len(rest) == 3 and rest[0] == "records":
            return self.record(method, company, rest[1], rest[2], data)
        return json_response({"error": "unknown sap_b1 control path"}, 404)

    def company_create(self, data: dict[str, Any]) -> dict[str, Any]:
        db = str(data.get("company_db") or "SBODEMOUS")
        contacts_max = int(data.get("contacts_max", 3))
        if not 0 <= contacts_max <= 5:
            raise ValueError("contacts_max must be between 0 and 5")
        today = date.fromisoformat(str(data["today"])[:10]) if data.get("today") else date.today()
        company = Company(db, str(data.get("user") or "manager"), str(data.get("password", "manager")), today,
                          int(data.get("seed", 0)), contacts_max)
        company.populate(max(0, int(data.get("partners", 0))), max(0, int(data.get("items", 0))),
                         max(0, int(data.get("invoices", 0))))
        self.sim.companies[db] = company
        return company.info()

    @staticmethod
    def record(method: str, company: Company, entity: str, key_text: str, data: dict[str, Any]) -> Response:
        table = company.tables.get(entity)
        if table is None:
            return json_response({"error": f"no entity set {entity!r}"}, 404)
        key: Any = int(key_text) if table.key_type == "number" else key_text
        record = table.by_key.get(key)
        if record is None:
            return json_response({"error": f"no {entity} {key_text!r}"}, 404)
        if method == "GET":
            return json_response(record)
        if method == "DELETE":
            table.delete(key)
            return json_response({"deleted": key})
        if method != "PATCH":
            return json_response({"error": f"{method} not supported here"}, 405)
        if table.key_field in data and data[table.key_field] != key:
            raise ValueError(f"{table.key_field} cannot be changed")
        new = {**record, **data}
        if "UpdateDate" not in data and "UpdateDate" in record:
            company.stamp(new)
        table.put(new)
        return json_response(new)
