# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.cnnzoo-installed
# pytest-xdist workers; CI machines have 2 cores.
TEST_WORKERS ?= 2

.PHONY: demo test lint bench data venv clean

$(PY):
	@$(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(PY)
	@echo "Installing cnnzoo and its dependencies into $(VENV) (first run only)..."
	@$(PY) -m pip install -q -e '.[dev]'
	@touch $@

venv: $(STAMP)

data:
	@bash scripts/ensure-data.sh

demo: venv data
	@$(PY) -m cnnzoo demo --overwrite

test: venv data
	@$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadgroup; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "no tests collected"; exit 0; fi; exit $$rc

lint: venv
	@$(VENV)/bin/ruff check src tests benchmarks

bench: venv data
	@$(PY) -m pip install -q -e '.[dev,bench]'
	@for b in benchmarks/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) runs .pytest_cache
