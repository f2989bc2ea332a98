# Two commands on a fresh machine: `make demo` and `make test`. Each sets up .venv itself.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
UV_VERSION := 0.13.8
WRANGLER := tools/wrangler/node_modules/.bin/wrangler

.PHONY: venv test test-e2e demo smoke lint format lock openapi bench screenshots clean

venv: $(VENV)/.installed $(WRANGLER)

# wrangler (Cloudflare's CLI) for the contract tests, exactly as tools/wrangler/package-lock.json pins it;
# reinstalled only when the lock changes.
$(WRANGLER): tools/wrangler/package-lock.json
	@command -v npm >/dev/null || { echo "make: wrangler needs Node.js >= 20.3 and npm" >&2; exit 1; }
	npm ci --prefix tools/wrangler --no-audit --no-fund --loglevel=error
	@touch $@

# The lock pins every package, transitive ones included; uv installs exactly that set, the in-repo
# Cloudflare provider (providers/cloudflare, editable) among them.
$(VENV)/.installed: requirements.lock providers/cloudflare/pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip sync -q --python $(BIN)/python requirements.lock
	@touch $@

# Two workers (the tests mostly wait on local servers), then the OpenAPI check of every exchange
# the workers recorded.
test: venv
	rm -rf .test-record && mkdir -p .test-record
	LOCALFLARE_RECORD_DIR=$(CURDIR)/.test-record $(BIN)/pytest -n 2 --ignore=tests/zz_contract
	LOCALFLARE_RECORD_DIR=$(CURDIR)/.test-record $(BIN)/pytest tests/zz_contract

# The bundle on Airflow's distributed engine (CeleryExecutor, PostgreSQL, Redis; every component its
# own process) against the local stand-ins. Needs the PostgreSQL and Redis servers on loopback.
test-e2e: venv
	$(BIN)/pytest tests/e2e -p no:cacheprovider --durations=0

# ruff's lint rules and formatting (settings in pyproject.toml); CI runs it first.
lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: venv
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

demo: venv
	$(BIN)/python scripts/demo.py

# Every DAG once, headless, against freshly seeded stand-ins; one line per DAG.
smoke: venv
	$(BIN)/python scripts/smoke.py

# Re-resolve requirements*.txt into requirements.lock (needs the package index).
lock: venv
	$(BIN)/uv pip compile -q requirements-dev.txt -o requirements.lock --python-version 3.11

# Regenerate the pruned OpenAPI spec used by the contract tests.
openapi: venv
	$(BIN)/python scripts/prune_openapi.py

bench: venv  ## ratios to the API's bounds and to wrangler, in one run (under 20 min on 2 cores); BENCH_ARGS=--help
	$(BIN)/python bench/run.py $(BENCH_ARGS)

screenshots: venv  ## docs/img/*.png from the dashboard's browser test (real Airflow + Debian Chromium; a few minutes)
	PRISM_DOCS_SCREENSHOTS=1 $(BIN)/pytest -p no:cacheprovider tests/plugins/test_prism_dashboard_plugin.py

clean:
	rm -rf $(VENV) .demo .pytest_cache
