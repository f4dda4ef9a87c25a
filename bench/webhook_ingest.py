"""Pipedrive webhook deliveries stored and acknowledged per second: gunicorn serving the receiver,
PostgreSQL (or the given database), the django-q2 broker of the environment (the database unless
REDIS_URL is set); a threaded client posting v2 deal-change bodies with Basic auth (design: ≥ 500/s)."""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid

from harness import ROOT, django_setup, emit


def deal_change(deal_id: int) -> bytes:
    data = {"id": deal_id, "title": f"Order {deal_id}", "status": "won", "value": 1200.5, "currency": "EUR",
            "org_id": 17, "person_id": 41, "stage_id": 4, "pipeline_id": 1, "owner_id": 1,
            "add_time": "2026-11-20T10:00:00Z", "update_time": "2026-11-29T12:00:00Z",
            "custom_fields": {"a" * 40: {"type": "varchar", "value": "SO-1"}}}
    meta = {"action": "change", "entity": "deal", "entity_id": str(deal_id), "id": str(uuid.uuid4()),
            "company_id": "1", "user_id": "1", "correlation_id": str(uuid.uuid4()), "is_bulk_edit": False,
            "timestamp": "2026-11-29T12:00:00.000Z", "type": "general", "version": "2.0", "webhook_id": "1",
            "webhook_owner_id": "1", "change_source": "app", "attempt": 1, "host": "bench.pipedrive.com",
            "permitted_user_ids": ["1"]}
    return json.dumps({"meta": meta, "data": data, "previous": {"status": "open"}}, separators=(",", ":")).encode()


def cpu_seconds(pids: list[int]) -> float:
    """user + system CPU of these processes so far (Linux /proc), 0 for any that is gone."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def pids_of(parent: int, database: str) -> list[int]:
    """The gunicorn workers (children of the master) and the PostgreSQL backends of the bench database."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError, IndexError):
            continue
        if ppid == parent or (database and cmd.startswith("postgres:") and f" {database} " in cmd):
            found.append(int(entry))
    return found


def wait_up(port: int, proc: subprocess.Popen) -> None:
    for _ in range(300):
        if proc.poll() is not None:
            raise RuntimeError("gunicorn exited")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            conn.getresponse().read()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("gunicorn did not start")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--deliveries", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=3, help="gunicorn workers (3 did best on 2 cores)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent client threads")
    parser.add_argument("--database-url")
    args = parser.parse_args()
    django_setup(args.database_url)
    from django.db import connection as db

    from connectors.models import Connection
    from syncs.models import WebhookEvent
    from syncs.webhook_registration import webhook_credentials_ensure
    from tenants.models import Tenant

    tenant = Tenant.objects.create(name="Bench hooks", slug=f"hooks-{int(time.time() * 1000)}")
    pipedrive = Connection.objects.create(tenant=tenant, system="pipedrive", name="Pipedrive",
                                          base_url="https://api.pipedrive.com", options={"auth": "api_token"},
                                          credentials={"api_token": "bench"})
    user, password = webhook_credentials_ensure(connection=pipedrive)
    auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    path = f"/hooks/pipedrive/{pipedrive.uuid}/"

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "SECURE_SSL_REDIRECT": "0", "LOG_LEVEL": "WARNING"}  # plain HTTP on loopback
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "mlconnector.wsgi", "--bind", f"127.0.0.1:{port}",
                             "--workers", str(args.workers), "--log-level", "warning"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_up(port, proc)
        bodies = [deal_change(1000 + i) for i in range(args.deliveries + 200)]
        statuses: dict[int, int] = {}
        lock = threading.Lock()
        counter = iter(range(len(bodies)))

        def post(body: bytes) -> int:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("POST", path, body=body, headers={"Authorization": auth, "Content-Type": "application/json",
                                                           "User-Agent": "Pipedrive-Webhook"})
            status = conn.getresponse().status
            conn.close()
            return status

        def client(limit: int) -> None:
            while True:
                with lock:
                    i = next(counter, None)
                if i is None or i >= limit:
                    return
                status = post(bodies[i])
                with lock:
                    statuses[status] = statuses.get(status, 0) + 1

        def run(start: int, stop: int) -> float:
            nonlocal counter
            counter = iter(range(start, stop))
            threads = [threading.Thread(target=client, args=(stop,)) for _ in range(args.clients)]
            started = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            return time.perf_counter() - started

        run(0, 200)  # warm-up: worker imports, database connections
        statuses.clear()
        pids = pids_of(proc.pid, db.settings_dict.get("NAME") or "")
        cpu_before = cpu_seconds(pids) + sum(os.times()[:2])
        elapsed = run(200, len(bodies))
        cpu = cpu_seconds(pids) + sum(os.times()[:2]) - cpu_before
        stored = WebhookEvent.objects.filter(connection=pipedrive).count() - 200
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert statuses == {200: args.deliveries} and stored == args.deliveries, (statuses, stored)
    # The box is shared: the CPU all parts spent per delivery (web workers, database backends, this
    # client) says what two idle cores would sustain, whatever else was running.
    cpu_ms = cpu * 1000 / args.deliveries
    emit("webhook_ingest_per_s", args.deliveries / elapsed, deliveries=args.deliveries, gunicorn_workers=args.workers,
         clients=args.clients, db=db.vendor, broker="redis" if os.environ.get("REDIS_URL") else "database",
         cpu_ms_per_delivery=round(cpu_ms, 3), two_idle_cores_per_s=round(2000 / cpu_ms, 1) if cpu_ms else None,
         load_average=round(os.getloadavg()[0], 2))


if __name__ == "__main__":
    main()
