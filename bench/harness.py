"""Shared set-up for benchmarks (run from bench/ as `python NAME.py`): the plumbing lives in
testkit/harness.py, which the reliability suites use too."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from testkit.harness import (  # noqa: E402,F401 — re-exported for the bench scripts
    SandboxProcess as Sandbox,
)
