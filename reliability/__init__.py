"""`make reliability`: suites that try to break the guarantees (faults, crashes, tenant isolation, secrets,
SSRF, bad input) and report what got through, one JSON line per suite. `python -m reliability --help`."""
