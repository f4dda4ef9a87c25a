"""The IFS simulator's operator API (/_sandbox/ifs/...), documented in app.py."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

from sandbox import generator
from sandbox.core import Request, Response, control_input, json_response
from sandbox.ifs import data
from sandbox.ifs.store import Environment, etag_of, new_stats

if TYPE_CHECKING:
    from sandbox.ifs.app import IfsSimulator

ENV_DEFAULTS = {
    "namespace": "ifsdemo",
    "client_id": "ml-connector",
    "client_secret": "s3cret",
    "customers": 50,
    "orders": 200,
    "seed": 0,
}


class Control:
    def __init__(self, sim: IfsSimulator):
        self.sim = sim

    def route(self, req: Request, subpath: str) -> Response:
        got = control_input(req, subpath)
        if isinstance(got, Response):
            return got
        parts, body = got
        try:
            with self.sim.lock:
                return self.dispatch(req.method, parts, body)
        except (ValueError, TypeError, KeyError) as exc:
            return json_response({"error": str(exc)}, 400)

    def dispatch(self, method: str, parts: list[str], body: dict[str, Any]) -> Response:
        sim = self.sim
        if parts == ["reset"] and method == "POST":
            sim.reset()
            return json_response({"ok": True})
        if parts == ["settings"]:
            if method == "POST":
                self.settings(body)
            return json_response(sim.settings)
        if parts == ["expire_tokens"] and method == "POST":
            if body.get("after_requests"):
                if body.get("namespace") not in sim.environments:
                    raise ValueError("after_requests needs the namespace of an environment")
                sim.expire_after[body["namespace"]] = max(1, int(body["after_requests"]))
                return json_response({"expires_after": sim.expire_after[body["namespace"]]})
            return json_response({"expired": sim.tokens.expire_all(body.get("namespace"))})
        if parts == ["commit_faults"]:
            if method == "POST":
                sim.commit_faults.configure(body)
            return json_response(sim.commit_faults.as_dict())
        if parts == ["stats"]:
            if method == "DELETE":
                sim.clear_stats()
            return json_response(
                {**{ns: self.stats_of(ns) for ns in sim.environments}, "unattributed": dict(sim.unattributed)}
            )
        if parts == ["environments"]:
            if method == "POST":
                return json_response(self.create(body), 201)
            return json_response({"environments": [e.info() for e in sim.environments.values()]})
        if len(parts) < 2 or parts[0] != "environments":
            return json_response({"error": "unknown ifs control path"}, 404)
        env = sim.environments.get(parts[1])
        if env is None:
            return json_response({"error": f"no environment {parts[1]!r}"}, 404)
        rest = parts[2:]
        if not rest:
            if method == "DELETE":
                del sim.environments[env.namespace]
                sim.tokens.drop(env.namespace)
                return json_response({"deleted": env.namespace})
            return json_response(env.info())
        if rest == ["mutate"] and method == "POST":
            return json_response(env.mutate(body))
        if rest == ["stats"]:
            return json_response(self.stats_of(env.namespace))
        if len(rest) == 3 and rest[0] == "records":
            return self.record(env, rest[1], rest[2])
        if len(rest) == 3 and rest[0] == "orders" and rest[2] == "change" and method == "POST":
            return self.change_order(env, rest[1], body)
        if len(rest) == 3 and rest[0] == "customers" and rest[2] == "change" and method == "POST":
            return self.change_customer(env, rest[1], body)
        return json_response({"error": "unknown ifs control path"}, 404)

    def settings(self, body: dict[str, Any]) -> None:
        settings = self.sim.settings
        if "token_ttl_s" in body:
            settings["token_ttl_s"] = max(0.05, float(body["token_ttl_s"]))
        if "rate_limit" in body:
            settings["rate_limit"] = max(0, int(body["rate_limit"]))
        if "rate_window_s" in body:
            settings["rate_window_s"] = max(0.05, float(body["rate_window_s"]))
        if "rate_limit" in body or "rate_window_s" in body:
            self.sim.windows.clear()  # a new limit starts a fresh window, so a test knows where it stands
        if "page_size" in body:
            settings["page_size"] = max(1, int(body["page_size"]))

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        spec = {**ENV_DEFAULTS, **body}
        today = date.fromisoformat(str(spec["today"])[:10]) if spec.get("today") else generator.DEFAULT_TODAY
        namespace = str(spec["namespace"])
        if not namespace or "/" in namespace:
            raise ValueError("namespace must be a non-empty name without '/'")
        env = Environment(
            namespace, str(spec["client_id"]), str(spec["client_secret"]), seed=int(spec["seed"]), today=today
        )
        env.populate(max(0, int(spec["customers"])), max(0, int(spec["orders"])))
        if namespace in self.sim.environments:
            self.sim.tokens.drop(namespace)
        self.sim.environments[namespace] = env
        self.sim.stats[namespace] = new_stats()
        self.sim.windows.pop(namespace, None)
        return env.info()

    def stats_of(self, namespace: str) -> dict[str, Any]:
        stats = self.sim.env_stats(namespace)
        live = sum(
            1
            for token in self.sim.tokens.by_token
            if self.sim.tokens.namespace(token) == namespace and self.sim.tokens.valid(token)
        )
        return {
            **{k: (dict(v) if isinstance(v, dict) else v) for k, v in stats.items()},
            "actions_by_order": {k: dict(v) for k, v in stats["actions_by_order"].items()},
            "transitions_by_order": {k: list(v) for k, v in stats["transitions_by_order"].items()},
            "tokens_live": live,
        }

    @staticmethod
    def record(env: Environment, entity: str, key: str) -> Response:
        table = {"CustomerInfoSet": env.customers, "CustomerOrderSet": env.orders}.get(entity)
        if table is None:
            return json_response({"error": f"no entity set {entity!r}"}, 404)
        record = table.by_key.get(key)
        if record is None:
            return json_response({"error": f"no {entity} {key!r}"}, 404)
        return json_response({"@odata.etag": etag_of(record), **record})

    def change_order(self, env: Environment, order_no: str, body: dict[str, Any]) -> Response:
        order = env.orders.by_key.get(order_no)
        if order is None:
            return json_response({"error": f"no CustomerOrderSet {order_no!r}"}, 404)
        on_read = max(0, int(body.get("on_read", 0)))
        if on_read:
            env.pending_bumps[order_no] = env.pending_bumps.get(order_no, 0) + on_read
        else:
            changes: dict[str, Any] = {}
            if "objstate" in body:
                if body["objstate"] not in data.STATES:
                    raise ValueError(f"objstate must be one of {', '.join(data.STATES)}")
                changes["Objstate"] = body["objstate"]
            if "customer_po_no" in body:
                changes["CustomerPoNo"] = body["customer_po_no"]
            order = env.touch(order, env.orders, **changes)
            self.sim.env_stats(env.namespace)["concurrent_changes"] += 1
        return json_response(
            {
                "order": {k: v for k, v in order.items() if not k.startswith("_")},
                "etag": etag_of(order),
                "pending_reads": env.pending_bumps.get(order_no, 0),
            }
        )

    def change_customer(self, env: Environment, customer_id: str, body: dict[str, Any]) -> Response:
        customer = env.customers.by_key.get(customer_id)
        if customer is None:
            return json_response({"error": f"no CustomerInfoSet {customer_id!r}"}, 404)
        changes = {"Name": str(body["name"])} if "name" in body else {}
        customer = env.touch(customer, env.customers, **changes)
        return json_response(
            {
                "customer": {k: v for k, v in customer.items() if not k.startswith("_")},
                "etag": etag_of(customer),
            }
        )
