#!/usr/bin/env bash
# `make run`: local .env (once), migrate, sandbox, demo tenant, web app + one qcluster. Ctrl-C stops all.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
WEB_PORT="${WEB_PORT:-8000}"
SANDBOX_PORT="${SANDBOX_PORT:-8100}"

if [ ! -f .env ]; then
  key() { "$PY" -c 'import secrets; print(secrets.token_urlsafe(48))'; }
  fernet_key() { "$PY" -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'; }
  cat > .env <<ENV
# Written once by \`make run\`; never overwritten. Delete it to get fresh keys (stored credentials become unreadable; SECRET_KEY alone may change).
DEBUG=1
SECRET_KEY=$(key)
FERNET_KEYS=$(fernet_key)
ALLOW_PRIVATE_NETWORKS=1
SANDBOX_URL=http://127.0.0.1:${SANDBOX_PORT}
ENV
  echo "Wrote .env with fresh random keys."
fi

pids=()
cleanup() {
  trap - INT TERM EXIT
  echo; echo "Stopping…"
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

mkdir -p staticfiles
"$PY" manage.py migrate --noinput >/dev/null
"$PY" -m sandbox --port "$SANDBOX_PORT" & pids+=($!)
for _ in $(seq 1 50); do curl -fsS "http://127.0.0.1:${SANDBOX_PORT}/_sandbox/health" >/dev/null 2>&1 && break; sleep 0.2; done
"$PY" manage.py demo_seed --sandbox "http://127.0.0.1:${SANDBOX_PORT}"
"$PY" manage.py qcluster & pids+=($!)
"$PY" manage.py runserver "127.0.0.1:${WEB_PORT}" --noreload & pids+=($!)
sleep 1
echo
echo "ml-connector is running at http://127.0.0.1:${WEB_PORT}/  (admin: /admin/, API docs: /api/docs/)"
echo "Log in as demo@example.com / demo-connector-2026 (owner of the demo tenant, also an admin)."
echo "Sandbox (simulated ERPs + Pipedrive): http://127.0.0.1:${SANDBOX_PORT}/"
echo "Press Ctrl-C to stop."
wait -n "${pids[@]}"
