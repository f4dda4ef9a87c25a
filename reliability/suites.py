"""The suites, in the order `make reliability` runs them; each is `run(ctx) -> figures` with an "ok"."""

from __future__ import annotations

from importlib import import_module

SUITES = {
    "fault_suite": "reliability.faults",
    "crash_suite": "reliability.crashes",
    "tenant_isolation": "reliability.isolation",
    "secrets_scan": "reliability.secrets_scan",
    "ssrf": "reliability.ssrf",
    "bad_input": "reliability.bad_input",
}


def suite_run(name: str, ctx) -> dict:
    return import_module(SUITES[name]).run(ctx)
