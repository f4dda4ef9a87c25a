#!/usr/bin/env bash
# `make bench`: one JSON line per figure, each naming its database. Uses PostgreSQL (a scratch database
# `mlc_bench`, or $BENCH_DB) when it is reachable, else SQLite files under /tmp.
# BENCH_SMALL / BENCH_LARGE: customers of the small and large first syncs; BENCH_LIMIT: customers of the
# first sync under Growth's real limits (~75 s); BENCH_LAG=0 skips the ~5-minute max_due_lag_s run.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=../.venv/bin/python
DB="${BENCH_DB:-mlc_bench}"
if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  fresh() { psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null 2>&1; echo "postgres://postgres@127.0.0.1:5432/$DB"; }
else
  fresh() { f=$(mktemp /tmp/mlc-bench-XXXX.sqlite3); echo "sqlite:///$f"; }
fi
export ALLOW_PRIVATE_NETWORKS=1 LOG_LEVEL=WARNING
cd bench
N_SMALL="${BENCH_SMALL:-10000}"
N_LARGE="${BENCH_LARGE:-100000}"
N_LIMIT="${BENCH_LIMIT:-1500}"
$PY sync_throughput.py --customers "$N_SMALL" --first-only --database-url "$(fresh)" | grep '"peak_rss'
$PY sync_throughput.py --customers "$N_LARGE" --database-url "$(fresh)"
$PY sync_throughput.py --limit-utilization "$N_LIMIT" --plan growth --database-url "$(fresh)"
$PY dispatcher_tick.py --database-url "$(fresh)"
$PY syspro_sandbox.py  # the SYSPRO simulator alone at the issue-11 size (no database)
$PY portal_pages.py --flows "${BENCH_PORTAL_FLOWS:-200}" --records "${BENCH_PORTAL_RECORDS:-100000}" --database-url "$(fresh)"
$PY syspro_sync.py --customers "${BENCH_SYSPRO_CUSTOMERS:-2000}" --orders "${BENCH_SYSPRO_ORDERS:-5000}" --database-url "$(fresh)"
$PY b1_sync.py --partners "${BENCH_B1_PARTNERS:-2000}" --database-url "$(fresh)"
$PY ifs_sync.py --orders "${BENCH_IFS_ORDERS:-5000}" --database-url "$(fresh)"
if [ "${BENCH_IFS_LIMIT:-1}" != 0 ]; then  # ~2 minutes: IFS at 60 requests a minute, pages of 50
  $PY ifs_sync.py --orders "${BENCH_IFS_ORDERS:-5000}" --rate-limit 60 --page 50 --database-url "$(fresh)"
fi
$PY s4_sync.py --partners "${BENCH_S4_PARTNERS:-3000}" --database-url "$(fresh)"
DATABASE_URL="$(fresh)" $PY pipedrive_burst.py
if [ "${BENCH_LAG:-1}" != 0 ]; then $PY due_lag.py --database-url "$(fresh)"; fi
$PY onboarding.py --database-url "$(fresh)"  # Chromium: signup → first successful run
$PY webhook_ingest.py --database-url "$(fresh)"  # database broker (make run's default)
if redis-cli -u "${BENCH_REDIS_URL:-redis://127.0.0.1:6379/5}" ping >/dev/null 2>&1; then  # production: Redis broker
  REDIS_URL="${BENCH_REDIS_URL:-redis://127.0.0.1:6379/5}" $PY webhook_ingest.py --database-url "$(fresh)"
  redis-cli -u "${BENCH_REDIS_URL:-redis://127.0.0.1:6379/5}" flushdb >/dev/null
fi
