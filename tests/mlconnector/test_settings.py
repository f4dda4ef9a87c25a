"""Production settings: `check --deploy` is clean, and a missing or default secret refuses to start."""

import secrets
import subprocess
import sys

from cryptography.fernet import Fernet

from tests.processes import ROOT


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    base = {"PATH": "/usr/bin:/bin", "DATABASE_URL": "sqlite:////tmp/mlc-settings-check.sqlite3", "HOME": "/tmp"}
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env={**base, **env}, capture_output=True,
                          text=True, timeout=120)


def test_check_deploy_with_production_settings_reports_no_issues():
    result = manage("check", "--deploy", "--fail-level", "WARNING", SECRET_KEY=secrets.token_urlsafe(50),
                    FERNET_KEYS=f"{Fernet.generate_key().decode()},{secrets.token_urlsafe(32)}",
                    ALLOWED_HOSTS="connector.example.com")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_real_secrets():
    result = manage("check")
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr and "FERNET_KEYS" in result.stderr
    short = manage("check", SECRET_KEY="short", FERNET_KEYS="k")
    assert short.returncode != 0
    # A good SECRET_KEY does not excuse a short encryption key, nor one left at its default.
    for fernet_keys in ("short-key", f"{secrets.token_urlsafe(32)},short", "dev-only-fernet-key"):
        weak = manage("check", SECRET_KEY=secrets.token_urlsafe(50), FERNET_KEYS=fernet_keys,
                      ALLOWED_HOSTS="connector.example.com")
        assert weak.returncode != 0 and "FERNET_KEYS" in weak.stderr, fernet_keys


def test_local_development_starts_with_debug():
    result = manage("check", DEBUG="1")
    assert result.returncode == 0, result.stderr


def test_a_q2_timeout_too_close_to_the_run_time_slice_refuses_to_start():
    # a run passes its slice by the pages in flight: a timeout near the slice would kill healthy runs
    result = manage("check", DEBUG="1", RUN_TIME_SLICE_S="1800")
    assert result.returncode != 0 and "Q_TIMEOUT (3600 s) must be at least" in result.stderr
    assert manage("check", DEBUG="1", RUN_TIME_SLICE_S="1800", Q_TIMEOUT="4000", Q_RETRY="4100").returncode == 0
    assert manage("check", DEBUG="1", Q_RETRY="3600").returncode != 0  # a retry inside the timeout
