#!/usr/bin/env bash
# `make run`: local .env (once), migrate, sandbox, demo tenant, web app + one qcluster.
# Ctrl-C or SIGTERM stops everything it started: each child runs in its own process group (setsid), and
# every group gets TERM, then KILL after STOP_TIMEOUT seconds (a qcluster waits for busy workers otherwise).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
WEB_PORT="${WEB_PORT:-8000}"
SANDBOX_PORT="${SANDBOX_PORT:-8100}"
STOP_TIMEOUT="${STOP_TIMEOUT:-10}"
export ENV_FILE="${ENV_FILE:-.env}"  # settings read the same file (relative to the project root)
# Where the sandbox's Pipedrive delivers webhooks (the local web app), unless set already.
export PUBLIC_BASE_URL="${PUBLIC_BASE_URL:-http://127.0.0.1:${WEB_PORT}}"
# The set-up wizard's "Try it with the sandbox", and Pipedrive OAuth against the sandbox's OAuth server.
export SANDBOX_URL="${SANDBOX_URL:-http://127.0.0.1:${SANDBOX_PORT}}"
export PIPEDRIVE_OAUTH_URL="${PIPEDRIVE_OAUTH_URL:-http://127.0.0.1:${SANDBOX_PORT}}"

if [ ! -f "$ENV_FILE" ]; then
  key() { "$PY" -c 'import secrets; print(secrets.token_urlsafe(48))'; }
  fernet_key() { "$PY" -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'; }
  cat > "$ENV_FILE" <<ENV
# Written once by \`make run\`; never overwritten. Delete it to get fresh keys (stored credentials become unreadable; SECRET_KEY alone may change).
DEBUG=1
SECRET_KEY=$(key)
FERNET_KEYS=$(fernet_key)
ALLOW_PRIVATE_NETWORKS=1
SANDBOX_URL=http://127.0.0.1:${SANDBOX_PORT}
ENV
  echo "Wrote $ENV_FILE with fresh random keys."
fi

groups=()  # process group ids; each child leads its own group, so its descendants are found through it
start() {
  # Without job control a background child is not a group leader, so setsid execs in place: $! is the group.
  setsid "$@" &
  groups+=($!)
}
alive() { for g in "${groups[@]}"; do kill -0 -- "-$g" 2>/dev/null && return 0; done; return 1; }
cleanup() {
  local status=$?
  trap - INT TERM EXIT
  trap '' INT TERM  # a second Ctrl-C must not cut the clean-up short
  if [ "${#groups[@]}" -gt 0 ]; then
    echo; echo "Stopping…"
    for g in "${groups[@]}"; do kill -TERM -- "-$g" 2>/dev/null || true; done
    for _ in $(seq 1 $((STOP_TIMEOUT * 10))); do alive || break; sleep 0.1; done
    if alive; then
      echo "Still running after ${STOP_TIMEOUT} s: killing."
      for g in "${groups[@]}"; do kill -KILL -- "-$g" 2>/dev/null || true; done
    fi
    wait 2>/dev/null || true
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p staticfiles
"$PY" manage.py migrate --noinput >/dev/null
start "$PY" -m sandbox --port "$SANDBOX_PORT"
for _ in $(seq 1 50); do curl -fsS "http://127.0.0.1:${SANDBOX_PORT}/_sandbox/health" >/dev/null 2>&1 && break; sleep 0.2; done
"$PY" manage.py demo_seed --sandbox "http://127.0.0.1:${SANDBOX_PORT}"
start "$PY" manage.py qcluster
start "$PY" manage.py runserver "127.0.0.1:${WEB_PORT}" --noreload
sleep 1
echo
echo "ml-connector is running at http://127.0.0.1:${WEB_PORT}/  (admin: /admin/, API docs: /api/docs/)"
echo "Log in as demo@example.com / demo-connector-2026 (owner of the demo tenant, also an admin)."
echo "Sandbox (simulated ERPs + Pipedrive): http://127.0.0.1:${SANDBOX_PORT}/"
echo "Press Ctrl-C to stop."
wait -n "${groups[@]}"  # one child died: stop the others too (the EXIT trap)
