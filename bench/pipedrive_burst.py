"""Burst benchmark: two worker processes share one Pipedrive company (one API token) through the
DB-backed limiter and call the sandbox at full speed. Prints JSON lines:

  {"bench": "pipedrive_burst_utilization", "value": <admitted / (plan limit per 2 s × seconds / 2)>, ...}
     in the steady state: the first 2-s window (where an idle token may spend a whole window's worth
     at once) and the last, partial one are left out
  {"bench": "pipedrive_429_fraction", "value": <429 answers / requests>, ...}

Usage: python bench/pipedrive_burst.py [--seconds 20] [--plan premium] [--workers 2] [--backend db|redis]
It starts its own sandbox on a free port and uses DATABASE_URL from the environment, else a temporary
SQLite file. `python bench/pipedrive_burst.py worker ...` is one worker (used by the tests too).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
WINDOW_S = 2.0  # Pipedrive's rolling burst window


def django_setup() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mlconnector.settings")
    os.environ.setdefault("DEBUG", "1")
    os.environ.setdefault("ALLOW_PRIVATE_NETWORKS", "1")
    import django

    django.setup()


def worker(args: argparse.Namespace) -> None:
    """Call GET /api/v2/organizations/{id} (1 token) as fast as the shared limiter allows."""
    django_setup()
    from connectors.base import ConnectorError
    from connectors.pipedrive.client import PipedriveClient

    client = PipedriveClient(base_url=args.base_url, api_token=os.environ["PIPEDRIVE_BENCH_API_TOKEN"], plan=args.plan,
                             seats=args.seats, company_id=args.company_id)
    statuses: dict[str, int] = {}
    admitted_at: list[float] = []  # when each 200 came back (the steady-state window is cut from these)

    def count(resp, *a, **k):
        statuses[str(resp.status_code)] = statuses.get(str(resp.status_code), 0) + 1
        if resp.status_code == 200:
            admitted_at.append(round(time.time(), 4))

    client.session.hooks["response"].append(count)
    while time.time() < args.start_at:
        time.sleep(0.001)
    calls = errors = 0
    first = last = None
    deadline = args.start_at + args.seconds
    while time.time() < deadline:
        try:
            client.request("GET", f"/api/v2/organizations/{args.record_id}")
            calls += 1
        except ConnectorError as exc:
            errors += 1
            print(json.dumps({"error": exc.message}), file=sys.stderr)
        now = time.time()
        first = first or now
        last = now
    print(json.dumps({"calls": calls, "errors": errors, "statuses": statuses, "first": first, "last": last,
                      "waited_s": round(client.limiter.waited, 3), "admitted_at": admitted_at}), flush=True)


def run_workers(*, base_url: str, api_token: str, company_id: int, record_id: int, plan: str, seats: int,
                seconds: float, workers: int, env: dict[str, str]) -> list[dict]:
    start_at = time.time() + 3  # every worker has imported Django by then
    command = [sys.executable, str(Path(__file__).resolve()), "worker", "--base-url", base_url, "--company-id", str(company_id), "--record-id", str(record_id), "--plan", plan,
               "--seats", str(seats), "--seconds", str(seconds), "--start-at", str(start_at)]
    env = {**env, "PIPEDRIVE_BENCH_API_TOKEN": api_token}  # not on the command line, where `ps` shows it
    procs = [subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(workers)]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=seconds + 120)
        if proc.returncode != 0:
            raise RuntimeError(f"worker failed ({proc.returncode}): {err[-2000:]}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def measure(*, sandbox_url: str, plan: str, seats: int, seconds: float, workers: int,
            env: dict[str, str]) -> dict:
    """Create a company, run the workers, and read the sandbox's own statistics."""
    control = sandbox_url + "/_sandbox/pipedrive"
    company = requests.post(control + "/companies", timeout=30, json={
        "name": "Burst bench", "plan": plan, "seats": seats,
        "api_token": secrets.token_hex(20),  # a fresh token: no limiter state left from an earlier run
    }).json()
    cid = company["company_id"]
    record = requests.post(f"{control}/companies/{cid}/ui/organizations", json={"name": "Bench Org"}, timeout=30).json()
    requests.post(f"{control}/companies/{cid}/stats/reset", timeout=30)
    results = run_workers(base_url=sandbox_url, api_token=company["api_token"], company_id=cid,
                          record_id=record["id"], plan=plan, seats=seats, seconds=seconds, workers=workers, env=env)
    stats = requests.get(f"{control}/companies/{cid}/stats", timeout=30).json()
    from connectors.pipedrive.limiter import burst_limit_for

    limit = burst_limit_for(plan, oauth=False)
    times = sorted(t for r in results for t in r["admitted_at"])
    # Whole 2-s windows after the first one: a start from idle may take a full window at once, which
    # would let the ratio pass 1; the last window is partial and left out too.
    start = times[0] + WINDOW_S
    windows = int((times[-1] - start) // WINDOW_S)
    end = start + windows * WINDOW_S
    steady = sum(1 for t in times if start <= t < end)
    span = max(end - start, 1e-9)
    admitted = int(stats["by_status"].get("200", 0))
    return {
        "plan": plan,
        "burst_limit_per_2s": limit,
        "workers": workers,
        "seconds": round(span, 2),
        "steady_windows": windows,
        "admitted_steady": steady,
        "requests": stats["requests"],
        "admitted": admitted,
        "rate_limited": stats["rate_limited"],
        "max_2s_window": stats["max_2s_window"],
        "max_2s_arrivals": max((w["max_2s_arrivals"] for w in stats["max_2s_window_by_token"].values()), default=0),
        "utilization": steady / (limit * span / WINDOW_S),
        "fraction_429": stats["rate_limited"] / max(1, stats["requests"]),
        "worker_results": results,
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def sandbox_start() -> tuple[subprocess.Popen, str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, "-m", "sandbox", "--port", str(port), "--only", "pipedrive"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if requests.get(url + "/_sandbox/health", timeout=1).ok:
                return proc, url
        except requests.ConnectionError:
            time.sleep(0.1)
    proc.terminate()
    raise RuntimeError("sandbox did not start")


def bench(args: argparse.Namespace) -> None:
    tmp = None
    if not os.environ.get("DATABASE_URL"):
        tmp = tempfile.mkdtemp(prefix="pipedrive-bench-")
        os.environ["DATABASE_URL"] = f"sqlite:///{tmp}/bench.sqlite3"
    os.environ["PIPEDRIVE_LIMITER_BACKEND"] = args.backend
    django_setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from django.db import connection

    vendor = connection.vendor
    env = {**os.environ, "ALLOW_PRIVATE_NETWORKS": "1", "DEBUG": "1", "PYTHONUNBUFFERED": "1"}
    if args.backend == "db":
        env.pop("REDIS_URL", None)
    proc, url = sandbox_start()
    try:
        result = measure(sandbox_url=url, plan=args.plan, seats=1, seconds=args.seconds, workers=args.workers, env=env)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    common = {"plan": result["plan"], "workers": result["workers"], "seconds": result["seconds"],
              "backend": args.backend, "database": vendor}
    print(json.dumps({"bench": "pipedrive_burst_utilization", "value": round(result["utilization"], 4),
                      "steady_state": f"{result['steady_windows']} whole 2-s windows after the first",
                      "admitted_steady": result["admitted_steady"], "admitted": result["admitted"],
                      "burst_limit_per_2s": result["burst_limit_per_2s"],
                      "max_2s_window": result["max_2s_window"], "max_2s_arrivals": result["max_2s_arrivals"],
                      **common}))
    print(json.dumps({"bench": "pipedrive_429_fraction", "value": round(result["fraction_429"], 6),
                      "rate_limited": result["rate_limited"], "requests": result["requests"], **common}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command")
    one = sub.add_parser("worker")
    one.add_argument("--base-url", required=True)
    one.add_argument("--company-id", type=int, required=True)
    one.add_argument("--record-id", type=int, required=True)
    one.add_argument("--plan", default="premium")
    one.add_argument("--seats", type=int, default=1)
    one.add_argument("--seconds", type=float, default=20)
    one.add_argument("--start-at", type=float, default=0)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--plan", default="premium")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--backend", choices=("db", "redis"), default="db")
    args = parser.parse_args()
    if args.command == "worker":
        worker(args)
    else:
        bench(args)


if __name__ == "__main__":
    main()
