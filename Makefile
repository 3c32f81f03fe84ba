# The README's two commands: `make demo` and `make test`. Each first brings .venv and
# node_modules up to date with pyproject.toml and package-lock.json.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FORGE := node_modules/.bin/forge

.PHONY: demo test lint typecheck forge pytest artifact artifact-check bench serve clean browser

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

venv: $(BIN)/.installed
node: node_modules/.installed

demo: $(BIN)/.installed
	$(BIN)/commitledger demo

# The browser test (tests/e2e) drives Debian's headless Chromium: installed when missing,
# as root or with sudo (as .ci/run installs PostgreSQL). Nothing happens when both are there.
browser:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
		as_root=""; [ "$$(id -u)" -eq 0 ] || as_root=sudo; \
		echo "installing Debian's chromium and chromium-driver for the browser test"; \
		$$as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		$$as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends chromium chromium-driver >/dev/null; \
	fi

test: $(BIN)/.installed node_modules/.installed browser
	$(MAKE) lint typecheck artifact-check forge pytest

# ruff, then the architecture: import-linter's contracts in pyproject.toml ([tool.importlinter]).
lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(BIN)/.installed
	$(BIN)/mypy

artifact: $(BIN)/.installed node_modules/.installed
	$(BIN)/python scripts/build_contract.py

artifact-check: $(BIN)/.installed node_modules/.installed
	$(BIN)/python scripts/build_contract.py --check

forge: node_modules/.installed
	$(FORGE) test

# Two workers, a test file each at a time (its module fixtures stay in one process): the
# suite is CPU-bound, and this machine has two cores.
pytest: $(BIN)/.installed node_modules/.installed
	$(BIN)/pytest -n 2 --dist loadfile

bench: $(BIN)/.installed node_modules/.installed
	$(BIN)/python scripts/bench.py

# The service on 127.0.0.1:8000 over a managed anvil, with demo data in data/ on first start.
serve: $(BIN)/.installed node_modules/.installed
	$(BIN)/commitledger serve --demo

clean:
	rm -rf $(VENV) node_modules build .pytest_cache .mypy_cache .ruff_cache
