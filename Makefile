# Two commands work on a fresh machine with only python3 and pip (see README):
#   make demo   -> .venv, sample exports in data/samples, warehouse in data/warehouse.duckdb, HTML reports in reports/
#   make test   -> .venv with the dev extras, then the whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
WAREHOUSE ?= data/warehouse.duckdb
SAMPLES ?= data/samples
REPORTS ?= reports
PYTEST_ARGS ?=

.PHONY: demo test install install-dev samples ingest reports assets lint bench bench-reports chromium java clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# An editable install compiles nothing, and with PYTHONDONTWRITEBYTECODE set (as on some CI images) every report
# kernel would compile the package's modules from source again: compiled once here instead.
install: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	$(BIN)/python -m compileall -q finops_kit

install-dev: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m compileall -q finops_kit

assets: install
	$(BIN)/python -m finops_kit.assets

samples: install
	$(BIN)/finops-kit samples --out $(SAMPLES)

ingest: install
	rm -f $(WAREHOUSE) $(WAREHOUSE).wal
	$(BIN)/finops-kit ingest $(SAMPLES) --warehouse $(WAREHOUSE)
	$(BIN)/finops-kit reconcile --warehouse $(WAREHOUSE)

reports: assets
	$(BIN)/finops-kit report --all --warehouse $(WAREHOUSE) --out $(REPORTS) --config finops.yaml

demo: samples ingest reports
	@echo "open $(REPORTS)/index.html"

test: install-dev assets chromium java
	$(BIN)/python -m pytest -n 2 --timeout 900 $(PYTEST_ARGS)

# The browser tests need Debian's chromium: installed here when missing (as root, or with passwordless sudo),
# else one line saying how to get it and make test stops (it never goes green without its browser checks).
chromium: install-dev
	@$(BIN)/python tests/browser_check.py --ensure

# The Spark tests need Java 17+: installed here when missing (as root on Debian), else one line and make test stops.
java: install-dev
	@$(BIN)/python tests/java_check.py --ensure

lint: install-dev
	$(BIN)/ruff check finops_kit tests benchmarks

bench: install-dev
	$(BIN)/python -m benchmarks --reports

# only the report suite vs empty notebooks (needs make demo's warehouse)
bench-reports: install-dev assets
	$(BIN)/python -m benchmarks --only-reports

clean:
	rm -rf $(VENV) $(REPORTS)/* $(WAREHOUSE) .pytest_cache
