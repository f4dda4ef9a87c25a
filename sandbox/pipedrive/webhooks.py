"""Webhook subscriptions and delivery (wire doc §5): v2 or v1 payloads, POSTed from background
threads with HTTP Basic auth and `User-Agent: Pipedrive-Webhook`, 10 s timeout, any 2xx is success,
retries after 3, 30 and 150 s (times the company's `webhook_time_factor`), and the ban rule:
10 first-attempt failures ban the subscription for 30 minutes and its events are lost; a failed attempt
when the last successful delivery (or the subscription's creation) is 3 days old by the company clock
deletes the subscription ("no successful deliveries on 3 consecutive days"), as Pipedrive does.
Deliveries go to loopback URLs only. Every attempt is logged for the control API.
"""

from __future__ import annotations

import base64
import heapq
import http.client
import itertools
import json
import random
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from .state import Company

RETRY_DELAYS_S = (3, 30, 150)
BAN_AFTER_FAILURES = 10
BAN_S = 1800
DELETE_AFTER_S = 3 * 86_400
LOG_SIZE = 200_000
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
V1_ACTIONS = {"create": "added", "change": "updated", "delete": "deleted"}
EVENT_ACTIONS = ("create", "change", "delete", "*")
LEGACY_ACTIONS = {"added": "create", "updated": "change", "merged": "change", "deleted": "delete"}
EVENT_OBJECTS = ("activity", "deal", "lead", "note", "organization", "person", "pipeline", "product", "stage",
                 "user", "deal_product", "*")
V1_OBJECTS = frozenset({"activity", "deal", "lead", "note", "organization", "person", "pipeline", "product",
                        "stage", "user"})


def is_loopback_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    host = (parts.hostname or "").lower()
    return parts.scheme in ("http", "https") and (host in LOOPBACK_HOSTS or host.startswith("127."))


def iso_millis(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts * 1000) % 1000:03d}Z"


@dataclass
class Delivery:
    epoch: int
    company: Company
    sub: dict[str, Any]
    payload: dict[str, Any]
    event: dict[str, Any]
    attempt: int = 1


class WebhookHub:
    def __init__(self, workers: int = 4, seed: int = 0):
        self._cv = threading.Condition()
        self._heap: list[tuple[float, int, Delivery]] = []
        self._seq = itertools.count()
        self._inflight = 0
        self._epoch = 0
        self._seed = seed
        self._rng = random.Random(seed)
        self._local = threading.local()
        self.log: deque[dict[str, Any]] = deque(maxlen=LOG_SIZE)
        self._log_seq = itertools.count(1)
        for i in range(workers):
            threading.Thread(target=self._run, name=f"pipedrive-webhooks-{i}", daemon=True).start()

    def reset(self) -> None:
        with self._cv:
            self._epoch += 1
            self._heap.clear()
            self._rng.seed(self._seed)
            self.log.clear()
            self._log_seq = itertools.count(1)
            self._cv.notify_all()

    def _uuid(self) -> str:
        with self._cv:
            return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    # -- emitting -------------------------------------------------------------------------------

    @staticmethod
    def matching(company: Company, entity: str, action: str) -> list[dict[str, Any]]:
        return [sub for sub in company.webhooks.values()
                if sub["is_active"] and sub["event_action"] in (action, "*") and sub["event_object"] in (entity, "*")
                and (sub["version"] == "2.0" or entity in V1_OBJECTS)]

    def emit(self, company: Company, subs: list[dict[str, Any]], *, action: str, entity: str, entity_id: int,
             ts: float, change_source: str, v2: tuple[Any, Any] | None, v1: tuple[Any, Any] | None) -> None:
        """Queue one event for each subscription (called with the company lock held)."""
        event_id, correlation_id = self._uuid(), self._uuid()
        event = {"action": action, "entity": entity, "entity_id": entity_id, "event_id": event_id,
                 "change_source": change_source}
        due = time.monotonic()
        for sub in subs:
            if sub["version"] == "1.0":
                if v1 is None:
                    continue
                v1_action = V1_ACTIONS[action]
                meta = {"v": 1, "action": v1_action, "object": entity, "id": entity_id, "company_id": company.id,
                        "user_id": company.user_id, "host": company.host, "timestamp": int(ts),
                        "timestamp_micro": int(ts * 1_000_000), "permitted_user_ids": [company.user_id],
                        "trans_pending": False, "is_bulk_update": False, "pipedrive_service_name": False,
                        "change_source": change_source, "matches_filters": {"current": []},
                        "webhook_id": str(sub["id"]), "webhook_owner_id": sub["owner_id"]}
                payload = {"v": 1, "matches_filters": {"current": []}, "meta": meta, "current": v1[0],
                           "previous": v1[1], "retry": 0, "event": f"{v1_action}.{entity}"}
            else:
                if v2 is None:
                    continue
                meta = {"action": action, "entity": entity, "entity_id": str(entity_id), "id": event_id,
                        "company_id": str(company.id), "user_id": str(company.user_id),
                        "correlation_id": correlation_id, "is_bulk_edit": False, "timestamp": iso_millis(ts),
                        "type": "general", "version": "2.0", "webhook_id": str(sub["id"]),
                        "webhook_owner_id": str(sub["owner_id"]), "change_source": change_source, "attempt": 1,
                        "host": company.host, "permitted_user_ids": [str(company.user_id)]}
                payload = {"meta": meta, "data": v2[0], "previous": v2[1]}
            delivery = Delivery(self._epoch, company, sub, payload, event)
            with self._cv:
                heapq.heappush(self._heap, (due, next(self._seq), delivery))
                self._cv.notify()

    # -- delivering -----------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cv:
                while True:
                    now = time.monotonic()
                    if self._heap and self._heap[0][0] <= now:
                        delivery = heapq.heappop(self._heap)[2]
                        self._inflight += 1
                        break
                    self._cv.wait(self._heap[0][0] - now if self._heap else None)
            try:
                self._attempt(delivery)
            except Exception as exc:  # a delivery bug must not kill the worker
                self._record(delivery, None, f"sandbox error: {exc!r}", 0.0)
            finally:
                with self._cv:
                    self._inflight -= 1
                    self._cv.notify_all()

    def _attempt(self, d: Delivery) -> None:
        sub, company = d.sub, d.company
        if d.epoch != self._epoch or company.webhooks.get(sub["id"]) is not sub:
            return
        factor = company.webhook_time_factor
        if d.attempt == 1 and sub.get("_banned_until", 0) > time.monotonic():
            self._record(d, None, "webhook banned: event lost", 0.0, outcome="banned")
            return
        if d.payload.get("v") == 1:
            d.payload["retry"] = d.attempt - 1
        else:
            d.payload["meta"]["attempt"] = d.attempt
        body = json.dumps(d.payload, separators=(",", ":")).encode()
        started = time.monotonic()
        status, error = self._post(sub, body, company.webhook_timeout_s)
        elapsed = time.monotonic() - started
        ok = status is not None and 200 <= status < 300
        sub["last_delivery_time"] = iso_millis(company.now())
        sub["last_http_status"] = status
        self._record(d, status, error, elapsed, outcome="delivered" if ok else "failed")
        if ok:
            sub["_last_success"] = company.now()
            return
        if company.now() - sub.get("_last_success", sub.get("_created", company.now())) >= DELETE_AFTER_S:
            with company.lock:
                company.webhooks.pop(sub["id"], None)
            self._record(d, None, "no successful delivery for 3 days: webhook deleted", 0.0, outcome="deleted")
            return
        if d.attempt == 1:
            sub["_first_failures"] = sub.get("_first_failures", 0) + 1
            if sub["_first_failures"] >= BAN_AFTER_FAILURES:
                sub["_first_failures"] = 0
                sub["_banned_until"] = time.monotonic() + BAN_S * factor
        if d.attempt <= len(RETRY_DELAYS_S):
            due = time.monotonic() + RETRY_DELAYS_S[d.attempt - 1] * factor
            d.attempt += 1
            with self._cv:
                if d.epoch == self._epoch:
                    heapq.heappush(self._heap, (due, next(self._seq), d))
                    self._cv.notify()

    def _connection(self, scheme: str, host: str, port: int | None, timeout: float,
                    fresh: bool) -> tuple[http.client.HTTPConnection, bool]:
        pool = getattr(self._local, "pool", None)
        if pool is None:
            pool = self._local.pool = {}
        key = (scheme, host, port)
        conn = pool.get(key)
        if conn is not None and not fresh:
            conn.timeout = timeout
            if conn.sock is not None:
                conn.sock.settimeout(timeout)
            return conn, True
        if conn is not None:
            conn.close()
        cls = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
        conn = pool[key] = cls(host, port, timeout=timeout)
        return conn, False

    def _drop(self, scheme: str, host: str, port: int | None) -> None:
        conn = getattr(self._local, "pool", {}).pop((scheme, host, port), None)
        if conn is not None:
            conn.close()

    def _post(self, sub: dict[str, Any], body: bytes, timeout: float) -> tuple[int | None, str | None]:
        parts = urlsplit(sub["subscription_url"])
        scheme, host, port = parts.scheme, parts.hostname or "127.0.0.1", parts.port
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        headers = {"Content-Type": "application/json", "User-Agent": "Pipedrive-Webhook",
                   "Content-Length": str(len(body))}
        if sub.get("http_auth_user") is not None or sub.get("http_auth_password") is not None:
            raw = f"{sub.get('http_auth_user') or ''}:{sub.get('http_auth_password') or ''}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(raw).decode()
        for fresh in (False, True):
            conn, reused = self._connection(scheme, host, port, timeout, fresh)
            try:
                conn.request("POST", path, body=body, headers=headers)
                resp = conn.getresponse()
                resp.read()
                if resp.will_close:
                    self._drop(scheme, host, port)
                return resp.status, None
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                self._drop(scheme, host, port)
                if reused:
                    continue  # a stale keep-alive connection: try once on a new one
                return None, f"connection error: {exc!r}"
            except TimeoutError:
                self._drop(scheme, host, port)
                return None, f"timeout after {timeout:g} s"
            except (OSError, http.client.HTTPException) as exc:
                self._drop(scheme, host, port)
                return None, f"connection error: {exc!r}"
        return None, "connection error"

    def _record(self, d: Delivery, status: int | None, error: str | None, elapsed: float,
                outcome: str = "failed") -> None:
        self.log.append({
            "seq": next(self._log_seq), "company_id": d.company.id, "webhook_id": d.sub["id"],
            "url": d.sub["subscription_url"], "version": d.sub["version"], "attempt": d.attempt,
            "status": status, "outcome": outcome, "error": error, "duration_ms": round(elapsed * 1000, 2),
            "time": iso_millis(d.company.now()), **d.event,
        })

    # -- control --------------------------------------------------------------------------------

    def entries(self, company_id: int | None = None, webhook_id: int | None = None) -> list[dict[str, Any]]:
        return [e for e in list(self.log)
                if (company_id is None or e["company_id"] == company_id)
                and (webhook_id is None or e["webhook_id"] == webhook_id)]

    def pending(self) -> int:
        with self._cv:
            return len(self._heap) + self._inflight

    def drain(self, timeout: float) -> int:
        """Wait until nothing is queued or in flight (or the timeout); returns what is left."""
        deadline = time.monotonic() + timeout
        with self._cv:
            while self._heap or self._inflight:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cv.wait(min(left, 0.05))
            return len(self._heap) + self._inflight
