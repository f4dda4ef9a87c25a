"""The operator/test API under `/_sandbox/pipedrive/` (documented in app.py). Nothing here costs
tokens or counts toward rate limits."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sandbox.core import Request, Response, json_response

from .api import create_record, delete_record, find, update_record
from .entities import BY_PLURAL, ENTITIES, parse_rfc3339, render, rfc3339
from .errors import ApiError
from .field_defs import create_field
from .state import Stats
from .v1 import public_webhook, render_note

if TYPE_CHECKING:
    from .app import PipedriveSimulator
    from .state import Company

ALIASES = {**{spec.name: spec.name for spec in ENTITIES.values()}, **{p: s.name for p, s in BY_PLURAL.items()},
           "note": "note", "notes": "note", "deal_product": "deal_product", "deal_products": "deal_product"}


class ControlError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def _json(req: Request) -> Any:
    try:
        return req.json()
    except ValueError:
        raise ControlError(400, "malformed JSON") from None


def _object(req: Request) -> dict[str, Any]:
    body = _json(req)
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise ControlError(400, "expected a JSON object")
    return body


def company_info(sim: PipedriveSimulator, company: Company) -> dict[str, Any]:
    return {
        "company_id": company.id, "name": company.name, "company_domain": company.domain,
        "api_token": company.api_token, "user_id": company.user_id, "user": company.user(),
        "settings": company.settings(), "now": rfc3339(company.now()),
        "oauth_clients": [{"client_id": c.client_id, "client_secret": c.client_secret,
                           "redirect_uri": c.redirect_uri} for c in sim.registry.clients_of(company)],
    }


class Control:
    def __init__(self, sim: PipedriveSimulator):
        self.sim = sim
        self.routes: list[tuple[str, re.Pattern[str], Callable[..., Any]]] = [
            ("POST", re.compile(r"^companies$"), self.create_company),
            ("GET", re.compile(r"^companies$"), self.list_companies),
            ("GET", re.compile(r"^companies/(\d+)$"), self.get_company),
            ("POST|PATCH", re.compile(r"^companies/(\d+)/settings$"), self.settings),
            ("POST", re.compile(r"^companies/(\d+)/clock$"), self.clock),
            ("GET", re.compile(r"^companies/(\d+)/stats$"), self.stats),
            ("POST", re.compile(r"^companies/(\d+)/stats/reset$"), self.reset_stats),
            ("GET", re.compile(r"^companies/(\d+)/records/(\w+)$"), self.records),
            ("GET", re.compile(r"^companies/(\d+)/fields/(\w+)$"), self.fields),
            ("POST", re.compile(r"^companies/(\d+)/fields/(\w+)$"), self.add_field),
            ("POST", re.compile(r"^companies/(\d+)/oauth_clients$"), self.add_client),
            ("POST", re.compile(r"^companies/(\d+)/oauth/expire$"), self.expire_tokens),
            ("POST", re.compile(r"^companies/(\d+)/ui/(\w+)$"), self.ui_create),
            ("POST|PATCH", re.compile(r"^companies/(\d+)/ui/(\w+)/(\d+)$"), self.ui_change),
            ("DELETE", re.compile(r"^companies/(\d+)/ui/(\w+)/(\d+)$"), self.ui_delete),
            ("POST", re.compile(r"^companies/(\d+)/ui/deals/(\d+)/(win|lose|reopen)$"), self.ui_deal_status),
            ("GET", re.compile(r"^companies/(\d+)/webhooks$"), self.webhooks),
            ("GET", re.compile(r"^companies/(\d+)/webhooks/deliveries$"), self.company_deliveries),
            ("GET", re.compile(r"^webhooks/deliveries$"), self.all_deliveries),
            ("POST", re.compile(r"^webhooks/drain$"), self.drain),
            ("GET|POST", re.compile(r"^(?:commit_faults|fault_after_commit)$"), self.commit_faults),
            ("GET", re.compile(r"^info$"), self.info),
        ]

    def dispatch(self, req: Request, subpath: str) -> Response:
        path = subpath.strip("/")
        for methods, pattern, handler in self.routes:
            m = pattern.match(path)
            if m and req.method in methods.split("|"):
                try:
                    return handler(req, *m.groups())
                except ControlError as exc:
                    return json_response({"error": str(exc)}, exc.status)
                except ApiError as exc:
                    return json_response(exc.body, exc.status)
        return json_response({"error": f"unknown pipedrive control path {req.method} {subpath!r}"}, 404)

    def _company(self, company_id: str) -> Company:
        company = self.sim.registry.get(int(company_id))
        if company is None:
            raise ControlError(404, f"no company {company_id}")
        return company

    @staticmethod
    def _entity(name: str) -> str:
        entity = ALIASES.get(name)
        if entity is None:
            raise ControlError(404, f"unknown entity {name!r}")
        return entity

    # -- companies ------------------------------------------------------------------------------

    def create_company(self, req: Request) -> Response:
        try:
            company = self.sim.registry.create_company(_object(req))
        except (ValueError, TypeError) as exc:
            raise ControlError(400, str(exc)) from None
        return json_response(company_info(self.sim, company), 201)

    def list_companies(self, req: Request) -> Response:
        return json_response({"companies": [company_info(self.sim, c) for c in self.sim.registry.companies.values()]})

    def get_company(self, req: Request, cid: str) -> Response:
        return json_response(company_info(self.sim, self._company(cid)))

    def settings(self, req: Request, cid: str) -> Response:
        company = self._company(cid)
        with company.lock:
            try:
                company.configure(_object(req))
            except (ValueError, TypeError) as exc:
                raise ControlError(400, str(exc)) from None
            return json_response(company.settings())

    def clock(self, req: Request, cid: str) -> Response:
        company = self._company(cid)
        body = _object(req)
        with company.lock:
            if "set" in body:
                try:
                    target = parse_rfc3339(str(body["set"]), "set")
                except ApiError:
                    raise ControlError(400, "set must be an RFC 3339 date-time") from None
                company.clock_offset = target - time.time()
            if "advance_s" in body:
                company.clock_offset += float(body["advance_s"])
            return json_response({"now": rfc3339(company.now()), "offset_s": company.clock_offset})

    def stats(self, req: Request, cid: str) -> Response:
        company = self._company(cid)
        with company.lock:
            limiter = company.limiter
            limiter._roll_day(company.now())
            return json_response({
                **company.stats.as_dict(),
                "tokens_used_today": limiter.tokens_today,
                "tokens_used_total": limiter.tokens_total,
                "daily_token_limit": limiter.daily_limit(),
                "max_2s_window_by_token": limiter.window_stats(),
                "max_2s_window": max((w.max_seen for w in limiter.accepted.values()), default=0),
                "webhook_deliveries": len(self.sim.hub.entries(company.id)),
            })

    def reset_stats(self, req: Request, cid: str) -> Response:
        company = self._company(cid)
        with company.lock:
            company.stats = Stats()
            for windows in (company.limiter.accepted, company.limiter.arrivals, company.limiter.searches):
                for window in windows.values():
                    window.max_seen = len(window.times)
            company.limiter.tokens_total = 0
        return json_response({"ok": True})

    def records(self, req: Request, cid: str, name: str) -> Response:
        company = self._company(cid)
        entity = self._entity(name)
        with company.lock:
            store = company.stores[entity]
            recs = [store.recs[i] for i in store.ids]
            if entity in ENTITIES:
                spec, fields = ENTITIES[entity], company.fields[entity]
                out = [render(spec, r, fields) for r in recs]
            elif entity == "note":
                out = [{**render_note(company, r), "is_deleted": r.deleted} for r in recs]
            else:
                out = [{**r.data, "is_deleted": r.deleted} for r in recs]
        if req.arg("include_deleted") in ("0", "false"):
            out = [r for r in out if not r.get("is_deleted")]
        return json_response({"entity": entity, "count": len(out), "records": out})

    def fields(self, req: Request, cid: str, name: str) -> Response:
        company = self._company(cid)
        entity = self._entity(name)
        with company.lock:
            return json_response({"fields": [f.as_dict() for f in company.fields[entity].by_code.values()]})

    def add_field(self, req: Request, cid: str, name: str) -> Response:
        company = self._company(cid)
        entity = self._entity(name)
        with company.lock:
            field = create_field(company, entity, _object(req))
            return json_response(field.as_dict({"ui_visibility", "important_fields", "required_fields"}), 201)

    def add_client(self, req: Request, cid: str) -> Response:
        client = self.sim.registry.add_client(self._company(cid), _object(req))
        return json_response({"client_id": client.client_id, "client_secret": client.client_secret,
                              "redirect_uri": client.redirect_uri}, 201)

    def expire_tokens(self, req: Request, cid: str) -> Response:
        return json_response({"expired": self.sim.registry.expire_access_tokens(self._company(cid))})

    # -- "UI" edits: a salesperson changing data in Pipedrive (change_source "app") -------------

    def _ui_entity(self, name: str):
        entity = self._entity(name)
        if entity not in ENTITIES:
            raise ControlError(400, f"UI edits support {', '.join(BY_PLURAL)}")
        return ENTITIES[entity]

    def ui_create(self, req: Request, cid: str, name: str) -> Response:
        company, spec = self._company(cid), self._ui_entity(name)
        body = _json(req)
        items = body if isinstance(body, list) else [body or {}]
        with company.lock:
            recs = [create_record(company, self.sim.hub, spec, item, "app") for item in items]
            out = [render(spec, r, company.fields[spec.name]) for r in recs]
        return json_response(out if isinstance(body, list) else out[0], 201)

    def ui_change(self, req: Request, cid: str, name: str, rec_id: str) -> Response:
        company, spec = self._company(cid), self._ui_entity(name)
        with company.lock:
            rec = find(company, spec, int(rec_id))
            rec = update_record(company, self.sim.hub, spec, rec, _object(req), "app")
            return json_response(render(spec, rec, company.fields[spec.name]))

    def ui_deal_status(self, req: Request, cid: str, rec_id: str, verb: str) -> Response:
        """The deal's Won / Lost / Reopen buttons: one change event, as in the UI."""
        company, spec = self._company(cid), ENTITIES["deal"]
        status = {"win": "won", "lose": "lost", "reopen": "open"}[verb]
        body = {"status": status, **({"lost_reason": _object(req).get("lost_reason")} if verb == "lose" else {})}
        with company.lock:
            rec = update_record(company, self.sim.hub, spec, find(company, spec, int(rec_id)),
                                {k: v for k, v in body.items() if v is not None}, "app")
            return json_response(render(spec, rec, company.fields[spec.name]))

    def ui_delete(self, req: Request, cid: str, name: str, rec_id: str) -> Response:
        company, spec = self._company(cid), self._ui_entity(name)
        with company.lock:
            delete_record(company, self.sim.hub, spec, find(company, spec, int(rec_id)), "app")
        return json_response({"id": int(rec_id), "deleted": True})

    # -- webhooks -------------------------------------------------------------------------------

    def webhooks(self, req: Request, cid: str) -> Response:
        company = self._company(cid)
        with company.lock:
            subs = [{**public_webhook(s), "banned_until_monotonic": s.get("_banned_until"),
                     "first_attempt_failures": s.get("_first_failures", 0)} for s in company.webhooks.values()]
        return json_response({"webhooks": subs})

    def _deliveries(self, req: Request, company_id: int | None) -> Response:
        webhook_id = req.arg("webhook_id")
        entries = self.sim.hub.entries(company_id, int(webhook_id) if webhook_id else None)
        return json_response({"count": len(entries), "pending": self.sim.hub.pending(), "deliveries": entries})

    def company_deliveries(self, req: Request, cid: str) -> Response:
        return self._deliveries(req, self._company(cid).id)

    def all_deliveries(self, req: Request) -> Response:
        return self._deliveries(req, None)

    def drain(self, req: Request) -> Response:
        timeout = float(_object(req).get("timeout_s", 10))
        return json_response({"pending": self.sim.hub.drain(timeout)})

    # -- faults and info ------------------------------------------------------------------------

    def commit_faults(self, req: Request) -> Response:
        if req.method == "POST":
            try:
                self.sim.commit_faults.configure(_object(req))
            except (ValueError, TypeError) as exc:
                raise ControlError(400, str(exc)) from None
        return json_response(self.sim.commit_faults.as_dict())

    def info(self, req: Request) -> Response:
        return json_response({"costs_source": self.sim.costs_source, "routes": len(self.sim.router.routes),
                              "unauthorized": self.sim.unauthorized, "companies": len(self.sim.registry.companies)})

