"""python -m reliability [--size small|full] [--only NAME[,NAME]] [--database-url URL]

One JSON line per suite: {"reliability": NAME, "ok": bool, <figures>, "seconds": s}. Exit status 1 when
any suite is not ok. Without --database-url a scratch database `mlc_reliability` is created (PostgreSQL
when the local server answers, else SQLite)."""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m reliability")
    parser.add_argument("--size", choices=("small", "full"), default="small")
    parser.add_argument("--only", default="", help="comma-separated suite names")
    parser.add_argument("--database-url")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    from reliability.suites import SUITES
    from testkit.harness import SandboxProcess, django_setup, scratch_database_url

    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(SUITES)
    unknown = [n for n in names if n not in SUITES]
    if unknown:
        parser.error(f"unknown suite(s) {unknown}; known: {list(SUITES)}")
    database_url = args.database_url or scratch_database_url("mlc_reliability")
    django_setup(database_url, debug=True)

    from reliability.base import Context
    from reliability.suites import suite_run

    sandbox = SandboxProcess()
    failed = False
    try:
        for name in names:
            ctx = Context(sandbox=sandbox, database_url=database_url, size=args.size, seed=args.seed)
            started = time.perf_counter()
            try:
                figures = suite_run(name, ctx)
            except Exception as exc:  # a suite that crashes reports it and the others still run
                figures = {"ok": False, "error": f"{type(exc).__name__}: {exc}",
                           "traceback": traceback.format_exc(limit=8)}
            failed |= not figures.get("ok")
            line = {"reliability": name, "ok": figures.pop("ok", False), **figures, "size": args.size,
                    "seconds": round(time.perf_counter() - started, 1)}
            print(json.dumps(line, default=str), flush=True)
    finally:
        sandbox.stop()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
