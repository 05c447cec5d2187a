# eprescrire: `make demo` (install + run the demo), `make test` (install + run the tests).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin

.PHONY: install system-deps postgres-test demo test lint bench demo-keys clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,dev]'
	# Bytecode as a wheel install has it, even where PYTHONDONTWRITEBYTECODE is set: every
	# command starts faster (a changed module is compiled again in memory, never run stale).
	$(PY) -m compileall -q eprescrire
	touch $@

install: $(VENV)/.installed

# System libraries the tests need (zbar for the second QR engine, SoftHSM2 and OpenSC for
# the PKCS#11 token tests); the default path needs none.
system-deps:
	@bash scripts/system-deps.sh

# PostgreSQL for the shared-ledger tests: installed when missing, a cluster created and started.
postgres-test:
	@bash scripts/postgres-test-cluster.sh

demo: install
	chmod 600 keys/*.p12
	PATH="$(CURDIR)/$(BIN):$$PATH" bash examples/demo.sh

test: install system-deps postgres-test
	chmod 600 keys/*.p12
	$(PY) -m pytest -q -p no:cacheprovider

lint: install
	$(BIN)/ruff check eprescrire tests bench scripts
	$(BIN)/ruff format --check eprescrire tests bench scripts
	$(BIN)/mypy

bench: install
	chmod 600 keys/*.p12
	PATH="$(CURDIR)/$(BIN):$$PATH" bash bench/run-all.sh

demo-keys: install
	PATH="$(CURDIR)/$(BIN):$$PATH" bash scripts/make-demo-keys.sh

clean:
	rm -rf $(VENV) build *.egg-info demo-out
