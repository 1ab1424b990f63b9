# Two commands on a fresh clone: `make demo` (the main job) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The exact versions installed (from pyproject.toml's ranges; `make lock` re-resolves them, see README).
LOCK   := requirements.lock
# The real data the main job imports here (the package's own default is the workspace's data/github-ranking/).
RANKING ?= $(or $(GITINSIGHT_GITHUB_RANKING_DIR),$(abspath ../shared/data/github-ranking))

.PHONY: demo test lint install lock clean-db

$(STAMP): pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

install: $(STAMP)

## Re-resolve requirements.lock from pyproject.toml (newest versions allowed by its ranges), then `make install`.
lock:
	$(BIN)/python -m pip install --quiet 'pip-tools>=7.4'
	$(BIN)/pip-compile --quiet --upgrade --allow-unsafe --extra test --strip-extras --no-emit-index-url --no-emit-find-links \
		--output-file $(LOCK) pyproject.toml

## The main job: start the embedded database, migrate, load data, render every report.
demo: $(STAMP)
	GITINSIGHT_GITHUB_RANKING_DIR='$(RANKING)' $(BIN)/gitinsight demo

## Everything CI checks: lint, the test suite (real PostgreSQL), notebooks. The suite runs on TEST_WORKERS
## pytest-xdist workers, whole modules per worker (tests/conftest.py); `make test TEST_WORKERS=0` runs it serially.
TEST_WORKERS ?= 2
test: $(STAMP)
	bash scripts/test-deps.sh
	$(BIN)/ruff check gitinsight_analytics migrations tests benchmarks
	$(BIN)/mypy
	$(BIN)/python -m pytest -n $(TEST_WORKERS)

lint: $(STAMP)
	$(BIN)/ruff check gitinsight_analytics migrations tests benchmarks
	$(BIN)/mypy
