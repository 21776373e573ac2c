# Two commands set everything up on a fresh machine: `make demo` and `make test` (`make unit` for the quick loop).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test lint typecheck unit demo bench faults fuzz clean

# Python's bytecode cache (__pycache__) stays on where the environment turns it off (PYTHONDONTWRITEBYTECODE, set on
# our CI machines): without it every process (each test worker, each Airflow process of the demo and the e2e tests)
# compiles Airflow's modules again, 6 s of CPU per process, and pytest rewrites every test module again.
unexport PYTHONDONTWRITEBYTECODE

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip uv

# Reinstall only when the package metadata changes.
$(STAMP): $(BIN)/python pyproject.toml setup.cfg
	$(BIN)/uv pip install --quiet --python $(BIN)/python -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

# The quick loop: every test but those marked e2e (real Airflow processes) or slow (see pyproject.toml's markers),
# over UNIT_WORKERS processes (pytest-xdist).
UNIT_WORKERS ?= 2
unit: install
	$(BIN)/pytest -q -n $(UNIT_WORKERS) -m "not e2e and not slow"

# CI's test command: lint, types and the whole suite, e2e and slow tests included; the 15 slowest tests listed.
test: lint typecheck
	$(BIN)/pytest -q --durations=15

demo: install
	$(BIN)/python demo/run.py

# Prints the tables in docs/benchmarks.md (about 5 minutes, and 7 to 11 more for events against polling).
bench: install
	$(BIN)/python -m benchmarks.api_calls
	$(BIN)/python -m benchmarks.listing_shortcuts
	$(BIN)/python -m benchmarks.cpu_per_poll
	$(BIN)/python -m benchmarks.triggerer
	$(BIN)/python benchmarks/emulator_listing.py
	$(BIN)/python -m benchmarks.events_vs_polling

# The fault matrix (one wait per fault against the emulator) and the soak: the figures in docs/reliability.md.
faults: install
	$(BIN)/python -m tests.reliability.matrix
	$(BIN)/python -m tests.reliability.soak

# Many more generated job histories than `make test` runs (HYPOTHESIS_EXAMPLES, default 10,000), split over
# FUZZ_WORKERS processes; prints how many histories ran and how long it took.
fuzz: install
	$(BIN)/python -m tests.property.fuzz

clean:
	rm -rf $(VENV) .demo build *.egg-info
