PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOCK := requirements.lock

.PHONY: demo test bench templates lint typecheck lock floors clean

# The environment is installed from the lock file (exact versions, hashes checked), then the
# package itself without resolving anything again.
$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

# Re-resolve the lock file from pyproject.toml (after changing a dependency or to take updates).
lock:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet pip-tools
	$(BIN)/pip-compile --quiet --upgrade --generate-hashes --extra test --strip-extras -o $(LOCK) pyproject.toml

# Install exactly the declared floors in a throwaway venv and run the demo and some tests there.
floors:
	tools/check_floors.sh

demo: $(STAMP)
	$(BIN)/kpi demo example

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/bench.py $(BENCH_ARGS)

templates: $(STAMP)
	$(BIN)/kpi templates

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

clean:
	rm -rf $(VENV) example output/*/
