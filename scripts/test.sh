#!/usr/bin/env bash
# Runs the whole suite on PostgreSQL, browser tests included (Debian's Chromium), and the Redis limiter
# tests against a Redis it starts when redis-server is installed but none answers.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python

if ! command -v chromium >/dev/null 2>&1 && [ ! -x /usr/bin/chromium ]; then
  echo "Installing Chromium (Debian package) for the browser tests…"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  echo "Starting PostgreSQL…"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi

# TEST_REDIS_URL is read by the Redis tests only; REDIS_URL would switch the whole app (broker, cache) to Redis.
export TEST_REDIS_URL="${TEST_REDIS_URL:-redis://127.0.0.1:6379/0}"
redis_answers() {
  "$PY" -c 'import sys, redis; redis.Redis.from_url(sys.argv[1], socket_connect_timeout=1).ping()' "$1" 2>/dev/null
}
redis_dir=""
stop_redis() {
  if [ -n "$redis_dir" ] && [ -f "$redis_dir/redis.pid" ]; then
    local pid
    pid=$(cat "$redis_dir/redis.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  [ -n "$redis_dir" ] && rm -rf "$redis_dir"
  return 0
}
trap stop_redis EXIT
if ! redis_answers "$TEST_REDIS_URL"; then
  if command -v redis-server >/dev/null 2>&1; then
    # A private, memory-only server on a free loopback port: whatever holds 6379 is left alone.
    port=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    redis_dir=$(mktemp -d /tmp/mlc-test-redis-XXXX)
    redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no --daemonize yes \
      --dir "$redis_dir" --pidfile "$redis_dir/redis.pid" --logfile "$redis_dir/redis.log"
    export TEST_REDIS_URL="redis://127.0.0.1:${port}/0"
    for _ in $(seq 1 50); do redis_answers "$TEST_REDIS_URL" && break; sleep 0.1; done
    echo "Started Redis for the tests at $TEST_REDIS_URL."
  else
    echo "Redis is not answering and redis-server is not installed: the Redis tests will be skipped."
  fi
fi

mkdir -p staticfiles  # whitenoise expects STATIC_ROOT to exist
export DATABASE_URL="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}"
export DEBUG=1
export PYTHONUNBUFFERED=1
.venv/bin/pytest -p no:cacheprovider --timeout=900 "$@"
