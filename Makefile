# The two commands: `make run` and `make test`. Everything else is optional.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test

.PHONY: run test install lint bench reliability clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e '.[test]'
	rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

run: install
	@bash scripts/run.sh

test: install
	@bash scripts/test.sh

lint: install
	$(BIN)/ruff check .

bench: install
	@bash scripts/bench.sh

# One JSON line per suite (faults, crashes, tenant isolation, secrets, SSRF, bad input) at full size, on a
# scratch database `mlc_reliability`; exits 1 when any suite is not ok. CI runs the small size in `make test`.
reliability: install
	@LOG_LEVEL=WARNING $(BIN)/python -m reliability --size full

clean:
	rm -rf $(VENV) db.sqlite3* staticfiles .pytest_cache
