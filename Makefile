# Two commands on a fresh clone: `make demo` (the main job) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint install clean-db

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

install: $(STAMP)

## The main job: start the embedded database, migrate, load data, render every report.
demo: $(STAMP)
	$(BIN)/gitinsight demo

## Everything CI checks: lint, the test suite (real PostgreSQL), notebooks.
test: $(STAMP)
	bash scripts/test-deps.sh
	$(BIN)/ruff check gitinsight_analytics migrations tests benchmarks
	$(BIN)/mypy
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check gitinsight_analytics migrations tests benchmarks
	$(BIN)/mypy
