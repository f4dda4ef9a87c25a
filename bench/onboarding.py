"""onboarding_seconds: signup → first successful run, in a real Chromium against the sandbox with a real
django-q2 cluster, the sync included (the desktop path of tests/browser/test_onboarding_browser.py, without
the slowed-down ERP that test uses to watch its progress bar). The time a person spends reading is not in it:
the browser types and clicks at once."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from harness import ROOT, django_setup, emit


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", required=True, help="pytest-django creates test_<name> next to it")
    args = parser.parse_args()
    django_setup(args.database_url)  # only to name the database in the figure
    out = Path(tempfile.mkdtemp(prefix="mlc-onboarding-")) / "seconds"
    env = {
        **os.environ,
        "DATABASE_URL": args.database_url,
        "TEST_DATABASE_URL": args.database_url,
        "DEBUG": "1",
        "ONBOARDING_SECONDS_FILE": str(out),
    }
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-q",
            "--create-db",
            "tests/browser/test_onboarding_browser.py::test_onboarding_whole_path_desktop",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    if done.returncode != 0 or not out.exists():
        sys.stderr.write(done.stdout[-3000:])
        raise SystemExit("the onboarding browser run failed")
    emit("onboarding_seconds", float(out.read_text()), customers=40, path="signup → first successful run")


if __name__ == "__main__":
    main()
