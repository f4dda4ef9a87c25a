#!/usr/bin/env bash
# `make bench`: one JSON line per figure. Uses PostgreSQL (a scratch database `mlc_bench`) when it is
# reachable, else SQLite files under /tmp.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=../.venv/bin/python
if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  fresh() { psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS mlc_bench" -c "CREATE DATABASE mlc_bench" >/dev/null 2>&1; echo "postgres://postgres@127.0.0.1:5432/mlc_bench"; }
else
  fresh() { f=$(mktemp /tmp/mlc-bench-XXXX.sqlite3); echo "sqlite:///$f"; }
fi
export ALLOW_PRIVATE_NETWORKS=1 LOG_LEVEL=WARNING
cd bench
N_SMALL="${BENCH_SMALL:-10000}"
N_LARGE="${BENCH_LARGE:-100000}"
$PY sync_throughput.py --customers "$N_SMALL" --first-only --database-url "$(fresh)" | grep '"peak_rss'
$PY sync_throughput.py --customers "$N_LARGE" --database-url "$(fresh)"
$PY dispatcher_tick.py --database-url "$(fresh)"
$PY webhook_ingest.py --database-url "$(fresh)"
[ -f pipedrive_burst.py ] && $PY pipedrive_burst.py
