"""Shared set-up for benchmarks (run from bench/ as `python NAME.py`): the plumbing lives in
testkit/harness.py, which the reliability suites use too."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from testkit.harness import CpuClock, database_vendor, django_setup, emit, peak_rss_mb, wire_tenant  # noqa: E402  # noqa: E402
from testkit.harness import SandboxProcess as Sandbox  # noqa: E402

__all__ = ["ROOT", "CpuClock", "Sandbox", "database_vendor", "django_setup", "emit", "peak_rss_mb", "wire_tenant"]
