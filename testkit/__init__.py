"""Product-neutral plumbing shared by tests, benchmarks and reliability suites (never imported by product
code): Django set-up on a chosen database, the sandbox subprocess, worker processes."""
