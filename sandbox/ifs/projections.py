"""The OData V4 service of the IFS simulator: CustomerInfoSet and CustomerOrderSet reads (filters,
paging, $select, $count), one-record reads, PATCH and bound actions (behaviour documented in app.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlencode

from sandbox.core import Request, Response, json_response
from sandbox.ifs import metadata
from sandbox.ifs.actions import patch_order, run_action
from sandbox.ifs.auth import bearer
from sandbox.ifs.errors import error
from sandbox.ifs.store import Environment, Table, etag_of, wire
from sandbox.odata import QueryError, key_segment, nonnegative, string_literal

if TYPE_CHECKING:
    from sandbox.ifs.app import IfsSimulator

PROJECTION_PREFIX = "/main/ifsapplications/projection/v1/"
PROJECTIONS = {"CustomerHandling.svc": "CustomerInfoSet", "CustomerOrderHandling.svc": "CustomerOrderSet"}
LIST_OPTIONS = {"$filter", "$select", "$orderby", "$top", "$skip", "$count", "$format"}


class Projections:
    def __init__(self, sim: IfsSimulator):
        self.sim = sim

    def serve(self, req: Request, namespace: str | None) -> Response | None:
        token = bearer(req)
        with self.sim.lock:
            valid = self.sim.tokens.valid(token)
            env = self.sim.environments.get(namespace) if namespace else None
        if not valid or env is None:
            message = (
                "The access token has expired."
                if token and namespace
                else "The access token is missing or invalid."
            )
            return error(
                401,
                "UNAUTHORIZED",
                message,
                {
                    "WWW-Authenticate": f'Bearer realm="{namespace or "ifs"}", error="invalid_token", '
                    f'error_description="{message}"'
                },
            )
        service, _, rest = unquote(req.path[len(PROJECTION_PREFIX) :]).partition("/")
        root = f"http://{req.headers.get('host', '127.0.0.1')}{PROJECTION_PREFIX}{service}/"
        if service not in PROJECTIONS:
            return error(404, "RESOURCE_NOT_FOUND", f"The projection '{service}' does not exist.")
        entity_set = PROJECTIONS[service]
        if rest in ("", "/"):
            return json_response(
                {
                    "@odata.context": f"{root}$metadata",
                    "value": [{"name": entity_set, "kind": "EntitySet", "url": entity_set}],
                },
                200,
                {"OData-Version": "4.0"},
            )
        if rest == "$metadata" and req.method == "GET":
            return Response(
                200,
                metadata.document(service.removesuffix(".svc")),
                {"OData-Version": "4.0"},
                content_type="application/xml",
            )
        name, paren, after = rest.partition("(")
        name, _, tail = name.partition("/") if not paren else (name, "", "")
        if name != entity_set:
            return error(404, "RESOURCE_NOT_FOUND", f"Resource not found for the segment '{name}'.")
        table = env.customers if entity_set == "CustomerInfoSet" else env.orders
        stats = self.sim.env_stats(env.namespace)
        if paren:
            key_text, _, tail = after.partition(")")
            key = parse_key(table, key_text)
            if key is None:
                return error(400, "BAD_REQUEST", f"Invalid key predicate '({key_text})' for '{name}'.")
            return self.one(req, env, table, key, tail.strip("/"), root, stats)
        if tail == "$count" and req.method == "GET":
            try:
                with self.sim.lock:
                    rows = table.query((req.arg("$filter") or "").strip(), "")
            except QueryError as exc:
                return error(400, "BAD_REQUEST", str(exc))
            return Response(200, str(len(rows)), {"OData-Version": "4.0"}, content_type="text/plain")
        if tail:
            return error(404, "RESOURCE_NOT_FOUND", f"Resource not found for the segment '{tail}'.")
        if req.method != "GET":
            with self.sim.lock:
                stats["writes_other"] += 1
            return error(
                405, "METHOD_NOT_ALLOWED", f"{req.method} is not supported on {name} by this service."
            )
        return self.collection(req, env, table, root, stats)

    def collection(
        self, req: Request, env: Environment, table: Table, root: str, stats: dict[str, Any]
    ) -> Response:
        unknown = [k for k in req.query if k.startswith("$") and k not in LIST_OPTIONS]
        if unknown:
            return error(400, "BAD_REQUEST", f"The query option '{unknown[0]}' is not supported.")
        try:
            top = nonnegative(req.arg("$top"), "$top")
            skip = nonnegative(req.arg("$skip"), "$skip") or 0
            count_text = (req.arg("$count") or "false").lower()
            if count_text not in ("true", "false"):
                raise QueryError(f"Invalid value '{count_text}' for $count: use true or false.")
            select = selection(req.arg("$select"), table)
            page_size, preferred = self.page_size(req)
            with self.sim.lock:
                rows = table.query((req.arg("$filter") or "").strip(), (req.arg("$orderby") or "").strip())
        except QueryError as exc:
            return error(400, "BAD_REQUEST", str(exc))
        take = page_size if top is None else min(page_size, top)
        page = rows[skip : skip + take]
        with self.sim.lock:
            value = [wire(record, select) for record in page]
            self.after_reads(env, [record for record in page if table is env.orders])
        context = f"{root}$metadata#{table.entity}" + (f"({','.join(select)})" if select else "")
        body: dict[str, Any] = {"@odata.context": context}
        if count_text == "true":
            body["@odata.count"] = len(rows)
        body["value"] = value
        after = skip + len(page)
        remaining = (len(rows) if top is None else min(len(rows), skip + top)) - after
        if page and remaining > 0:
            query = {k: v[-1] for k, v in req.query.items()}
            query["$skip"] = str(after)
            if top is not None:
                query["$top"] = str(top - len(page))
            body["@odata.nextLink"] = (
                f"{root}{table.entity}?{urlencode(query, quote_via=quote, safe='$,()/:')}"
            )
        headers = {"OData-Version": "4.0"}
        if preferred is not None:
            headers["Preference-Applied"] = f"odata.maxpagesize={preferred}"
        return json_response(body, 200, headers)

    def one(
        self,
        req: Request,
        env: Environment,
        table: Table,
        key: str,
        tail: str,
        root: str,
        stats: dict[str, Any],
    ) -> Response | None:
        with self.sim.lock:
            if tail:
                if table is not env.orders or req.method != "POST":
                    if req.method != "GET":
                        stats["writes_other"] += 1
                    return error(
                        404 if req.method in ("GET", "POST") else 405,
                        "RESOURCE_NOT_FOUND",
                        f"Resource not found for the segment '{tail}'.",
                    )
                try:
                    body = req.json()
                except ValueError:
                    return error(400, "BAD_REQUEST", "The request body is not valid JSON.")
                status, payload, headers = run_action(
                    env, key, tail, req.headers.get("if-match"), body, stats
                )
                fault = self.sim.commit_faults.draw() if status == 204 else None
                if fault:
                    stats["after_commit_faults"] += 1
                    if fault == "drop":
                        return None
                    return error(502, "BAD_GATEWAY", "The server did not answer in time.")
                return self.result(status, payload, headers)
            record = table.by_key.get(key)
            if req.method == "PATCH" and table is env.orders:
                stats["writes_other"] += 1
                try:
                    body = req.json()
                except ValueError:
                    return error(400, "BAD_REQUEST", "The request body is not valid JSON.")
                status, payload, headers = patch_order(env, key, req.headers.get("if-match"), body, stats)
                if payload is not None and status == 200:
                    payload = {"@odata.context": f"{root}$metadata#{table.entity}/$entity", **payload}
                return self.result(status, payload, headers)
            if req.method != "GET":
                stats["writes_other"] += 1
                return error(405, "METHOD_NOT_ALLOWED", f"{req.method} is not supported on {table.entity}.")
            if record is None:
                what = "customer order" if table is env.orders else "customer"
                return error(404, "RESOURCE_NOT_FOUND", f"The {what} {key} does not exist.")
            try:
                select = selection(req.arg("$select"), table)
            except QueryError as exc:
                return error(400, "BAD_REQUEST", str(exc))
            body = {"@odata.context": f"{root}$metadata#{table.entity}/$entity", **wire(record, select)}
            current = etag_of(record)
            if table is env.orders:
                self.after_reads(env, [record])
        return json_response(body, 200, {"OData-Version": "4.0", "ETag": current})

    @staticmethod
    def result(status: int, payload: dict[str, Any] | None, headers: dict[str, str]) -> Response:
        return Response(status, payload, {"OData-Version": "4.0", **headers})

    def after_reads(self, env: Environment, orders: list[dict[str, Any]]) -> None:
        """Someone else edits an order right after it was served (control: change with on_read)."""
        if not env.pending_bumps:
            return
        for order in orders:
            left = env.pending_bumps.get(order["OrderNo"], 0)
            if left <= 0:
                continue
            env.pending_bumps[order["OrderNo"]] = left - 1
            current = env.orders.by_key[order["OrderNo"]]
            env.touch(current, env.orders)
            self.sim.env_stats(env.namespace)["concurrent_changes"] += 1

    def page_size(self, req: Request) -> tuple[int, int | None]:
        cap = max(1, int(self.sim.settings["page_size"]))
        for pref in req.headers.get("prefer", "").split(","):
            name, _, value = pref.strip().partition("=")
            if name.strip().lower() == "odata.maxpagesize":
                size = nonnegative(value.strip(), "odata.maxpagesize")
                if size:
                    return min(cap, size), size
        return cap, None


def parse_key(table: Table, text: str) -> str | None:
    """ "OrderNo='C100001'" or "'C100001'" → "C100001"; None when malformed."""
    text = key_segment(text, table.key_field)
    return None if text is None else string_literal(text)


def selection(value: str | None, table: Table) -> list[str] | None:
    if not value or value.strip() == "*":
        return None
    names = [n.strip() for n in value.split(",") if n.strip()]
    for name in names:
        if name not in table.fields:
            raise QueryError(f"Could not find a property named '{name}' on type '{table.type_name}'.")
    return names
