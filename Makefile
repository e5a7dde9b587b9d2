# lookaside — every command a user or CI needs. Only python3 and make required.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.install-stamp
PROTO  := proto/lookaside/v1/load_balancer.proto

.PHONY: install test test-unit test-integration demo proto lint typecheck clean

install: $(STAMP)

# Re-install only when the project's metadata changes; a no-op otherwise.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Three workers, each taking whole files (a file's tests may share ports or a fleet): most
# tests wait on real processes rather than compute, so this halves the time on 2 CPUs.
test: install
	$(BIN)/python -m pytest -q -n 3 --dist loadfile

test-unit: install
	$(BIN)/python -m pytest -q tests/unit

test-integration: install
	$(BIN)/python -m pytest -q tests/integration

# The seed's scale experiment as a lab: 10 and 15 backends x 100 concurrent clients x every
# policy (plus gRPC's own round_robin), 3 repeats, real processes. Several minutes on 2 cores;
# writes results.json, report.md and plots to bench-results/<timestamp>/ and prints where.
# (`lookaside demo` is the small 3-backend walk-through.)
demo: install
	$(BIN)/lookaside bench

# Regenerate the protobuf/gRPC code from the .proto (output: src/lookaside/v1/).
proto: install
	$(BIN)/python -m lookaside._protogen

lint: install
	$(BIN)/ruff check src tests examples
	$(BIN)/ruff format --check src tests examples
	$(BIN)/mypy
	$(BIN)/lint-imports

typecheck: install
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis bench-results
