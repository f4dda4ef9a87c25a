"""The S/4HANA simulator's operator API (/_sandbox/s4hana/...), documented in app.py."""

from __future__ import annotations

import random
import time
from datetime import date
from typing import TYPE_CHECKING, Any

from sandbox.core import Request, Response, json_response
from sandbox.s4hana.data import CUSTOMER_ROLES, SUPPLIER_ROLES, System, build

if TYPE_CHECKING:
    from sandbox.s4hana.app import S4HanaSimulator


class ControlError(ValueError):
    pass


class Control:
    def __init__(self, sim: S4HanaSimulator):
        self.sim = sim

    def route(self, req: Request, subpath: str) -> Response:
        try:
            data = req.json() or {}
        except ValueError:
            return json_response({"error": "the body is not JSON"}, 400)
        parts = [p for p in subpath.split("/") if p]
        try:
            with self.sim.lock:
                return self.dispatch(req.method, parts, data)
        except (ControlError, KeyError, TypeError, ValueError) as exc:
            return json_response({"error": str(exc) or type(exc).__name__}, 400)

    def dispatch(self, method: str, parts: list[str], data: dict[str, Any]) -> Response:
        sim = self.sim
        if parts == ["reset"] and method == "POST":
            sim.reset()
            return json_response({"ok": True})
        if parts == ["settings"]:
            if method == "POST":
                for key in ("page_size", "token_ttl_s", "latency_ms"):
                    if key in data:
                        sim.settings[key] = int(data[key])
                if "error_500" in data:
                    sim.settings["error_500"] = float(data["error_500"])
                if "seed" in data:
                    sim.rng.seed(int(data["seed"]))
            return json_response(sim.settings)
        if parts == ["expire_tokens"] and method == "POST":
            expired = 0
            for token, (client, expires_at) in list(sim.tokens.items()):
                if expires_at > time.time():
                    expired += 1
                sim.tokens[token] = (client, 0.0)
            return json_response({"expired": expired})
        if parts == ["stats"]:
            if method == "DELETE":
                sim.clear_stats()
            return json_response({**sim.stats, "recent": list(sim.recent)})
        if parts == ["systems"] and method == "POST":
            system = self.system_create(data)
            return json_response(info(system), 201)
        if len(parts) >= 2 and parts[0] == "systems":
            system = sim.systems.get(parts[1])
            if system is None:
                return json_response({"error": f"no system {parts[1]}"}, 404)
            return self.system_action(method, system, parts[2:], data)
        return json_response({"error": "unknown control path"}, 404)

    def system_create(self, data: dict[str, Any]) -> System:
        contacts_max = int(data.get("contacts_max", 3))
        if not 0 <= contacts_max <= 5:
            raise ControlError("contacts_max must be between 0 and 5")
        system = build(
            client_id=str(data["client_id"]),
            client_secret=str(data["client_secret"]),
            partners=int(data.get("partners", 20)),
            contacts_max=contacts_max,
            seed=int(data.get("seed", 0)),
            today=date.fromisoformat(data.get("today", "2026-11-20")),
        )
        system.clock = str(data.get("time", system.clock))
        system.extension_fields = bool(data.get("extension_fields", False))
        self.sim.systems[system.client_id] = system
        return system

    def system_action(self, method: str, system: System, rest: list[str], data: dict[str, Any]) -> Response:
        if not rest:
            if method == "DELETE":
                del self.sim.systems[system.client_id]
                return json_response({"ok": True})
            return json_response(info(system))
        action = rest[0]
        if action == "partners" and len(rest) == 2:
            partner = system.partners.get(rest[1])
            return json_response(partner) if partner else json_response({"error": "no such partner"}, 404)
        if method != "POST":
            return json_response({"error": "POST only"}, 405)
        if "today" in data:
            system.today = date.fromisoformat(data["today"])
        if "time" in data:
            system.clock = str(data["time"])
        if action == "clock":
            return json_response(info(system))
        if action == "change":
            keys = data.get("partners")
            if keys is None:
                pool = sorted(k for k, p in system.partners.items() if not p["_contact_of"])
                keys = sorted(random.Random(int(data.get("seed", 0))).sample(pool, int(data["count"])))
            for key in keys:
                partner = _partner(system, key)
                name = partner["BusinessPartnerFullName"]
                name = name[:-4] if name.endswith(" Ltd") else f"{name[:76]} Ltd"
                partner.update(BusinessPartnerFullName=name, BusinessPartnerName=name)
                if partner["BusinessPartnerCategory"] == "2":
                    partner.update(OrganizationBPName1=name[:40], OrganizationBPName2=name[40:80])
                else:
                    partner["LastName"] = name.partition(" ")[2][:40]
                system.stamp(partner)
            return json_response({"changed": list(keys)})
        if action in ("contact_email", "remove_contact"):
            partner = _partner(system, data["partner"])
            contacts = partner["_contacts"]
            person = data.get("person")
            contact = next((c for c in contacts if person in (None, c["BusinessPartnerPerson"])), None)
            if contact is None:
                raise ControlError(f"partner {partner['BusinessPartner']} has no such contact person")
            if action == "contact_email":
                contact["_function"]["EmailAddress"] = str(data["email"])
            else:
                contacts.remove(contact)
                person = system.partners[contact["BusinessPartnerPerson"]]
                person["_contact_of"] = ""
                system.stamp(person)  # the relationship was the person's too
            system.stamp(partner)
            return json_response(
                {"partner": partner["BusinessPartner"], "person": contact["BusinessPartnerPerson"]}
            )
        if action == "remove_role":
            partner = _partner(system, data["partner"])
            kind = data.get("kind", "supplier")
            roles, number_field = {
                "supplier": (SUPPLIER_ROLES, "Supplier"),
                "customer": (CUSTOMER_ROLES, "Customer"),
            }[kind]
            partner["_roles"] = [r for r in partner["_roles"] if r["BusinessPartnerRole"] not in roles]
            partner[number_field] = ""
            system.stamp(partner)
            return json_response(
                {
                    "partner": partner["BusinessPartner"],
                    "roles": [r["BusinessPartnerRole"] for r in partner["_roles"]],
                }
            )
        return json_response({"error": f"unknown action {action}"}, 404)


def _partner(system: System, key: Any) -> dict[str, Any]:
    partner = system.partners.get(str(key))
    if partner is None:
        raise ControlError(f"no partner {key}")
    return partner


def info(system: System) -> dict[str, Any]:
    return {
        "client_id": system.client_id,
        "today": system.today.isoformat(),
        "time": system.clock,
        "counts": system.counts(),
    }
