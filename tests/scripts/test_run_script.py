"""`make run` (scripts/run.sh) leaves nothing behind when stopped with SIGTERM or Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import free_port
from tests.processes import ROOT

pytestmark = pytest.mark.slow


def process_table() -> dict[int, tuple[int, str, int]]:
    """pid → (ppid, state, start time) for every live process, from /proc."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "
        table[int(entry.name)] = (int(fields[1]), fields[0], int(fields[19]))
    return table


def descendants(root: int) -> dict[int, int]:
    """pid → start time of every process below root (start time guards against pid reuse)."""
    table = process_table()
    found, frontier = {}, [root]
    while frontier:
        parent = frontier.pop()
        for pid, (ppid, _state, start) in table.items():
            if ppid == parent and pid not in found:
                found[pid] = start
                frontier.append(pid)
    return found


def alive(tree: dict[int, int]) -> list[str]:
    table = process_table()
    left = []
    for pid, start in tree.items():
        if pid in table and table[pid][2] == start and table[pid][1] != "Z":
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
            except OSError:
                cmdline = "?"
            left.append(f"{pid}: {cmdline}")
    return left


@pytest.mark.parametrize("how", ["sigterm", "ctrl-c"])
def test_run_script_stops_every_process_it_started(tmp_path, how):
    web, sandbox = free_port(), free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "PYTHONUNBUFFERED": "1",
        "WEB_PORT": str(web), "SANDBOX_PORT": str(sandbox), "ENV_FILE": str(tmp_path / ".env"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", "Q_WORKERS": "2", "STOP_TIMEOUT": "5",
    }
    log = open(tmp_path / "run.log", "w")
    # Its own session, like a terminal's foreground job: Ctrl-C goes to the whole foreground group.
    script = subprocess.Popen(["bash", "scripts/run.sh"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)
    tree: dict[int, int] = {}
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            assert script.poll() is None, (tmp_path / "run.log").read_text()
            tree.update(descendants(script.pid))
            try:
                if requests.get(f"http://127.0.0.1:{web}/healthz", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            time.sleep(0.5)
        else:
            raise AssertionError("the web app never answered:\n" + (tmp_path / "run.log").read_text())
        # Keep a worker busy, as a long sync would: django-q2 alone waits for it before exiting.
        marker = tmp_path / "task-started"
        enqueue = ("from django_q.tasks import async_task; "
                   f"async_task('os.system', 'touch {marker} && exec sleep 600')")
        subprocess.run([str(ROOT / ".venv/bin/python"), "manage.py", "shell", "-c", enqueue], cwd=ROOT,
                       env={**env, "DEBUG": "1"}, check=True, capture_output=True, timeout=120)
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert time.monotonic() < deadline, "the cluster never picked the task up"
            time.sleep(0.2)
        time.sleep(0.5)
        tree.update(descendants(script.pid))
        assert any("sleep 600" in line for line in alive(tree)), alive(tree)
        assert any("qcluster" in line for line in alive(tree)), alive(tree)
        assert (tmp_path / ".env").exists() and "SECRET_KEY=" in (tmp_path / ".env").read_text()

        if how == "sigterm":
            os.kill(script.pid, signal.SIGTERM)
        else:
            os.killpg(script.pid, signal.SIGINT)
        script.wait(timeout=90)
        left = alive(tree)
        assert not left, "still running after the script ended:\n" + "\n".join(left) + "\n" + (
            tmp_path / "run.log").read_text()
    finally:
        if script.poll() is None:
            os.killpg(script.pid, signal.SIGKILL)
        table = process_table()
        for pid, start in tree.items():
            if pid in table and table[pid][2] == start:  # the same process, not a reused pid
                try:
                    os.kill(pid, signal.SIGKILL)  # never leave strays to the next test
                except (ProcessLookupError, PermissionError):
                    pass
        log.close()
