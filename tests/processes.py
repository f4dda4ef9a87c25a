"""Kept for the tests that import it; the helpers live in testkit/processes.py (shared with the
reliability suites)."""

from testkit.processes import (  # noqa: F401
    ROOT,
    child_env,
    run_together,
    start_cluster,
    stop,
    test_database_url,
    wait_for,
)
