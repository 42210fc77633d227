# The two commands a newcomer needs: `make run` and `make test`. Everything else is a step of those.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
CHECKOV_VENV := .venv-checkov
PORT ?= 3000

.PHONY: run test lint lint-imports typecheck cfn-lint checkov openapi openapi-check unit integration infra-tests \
	local-stack-tests bench invoke clean chromium spectral

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check uv==0.9.30
	$(UV) pip install --quiet --compile-bytecode --python $(PY) -r requirements-dev.txt
	$(UV) pip install --quiet --python $(PY) --no-deps -e .
	touch $@

$(CHECKOV_VENV)/.installed:
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check uv==0.9.30
	$(CHECKOV_VENV)/bin/uv pip install --quiet --compile-bytecode --python $(CHECKOV_VENV)/bin/python checkov==3.3.30
	touch $@

# The browser test (tests/integration/test_access_page.py) renders an export's index.html in headless Chromium, and
# fails, never skips, without it: installed here when missing (Debian's package; as root, or through sudo).
chromium:
	@command -v chromium >/dev/null || { SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get -o DPkg::Lock::Timeout=600 update && $$SUDO env DEBIAN_FRONTEND=noninteractive \
		apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends chromium; }

## run: the whole stack on an embedded moto AWS, gateway on 127.0.0.1:$(PORT)
run: $(VENV)/.installed
	PORT=$(PORT) $(PY) -m infra.local.run

## invoke: one handler with one event against the running local stack (FN=<LogicalId> EVENT=events/<file>.json)
invoke: $(VENV)/.installed
	$(PY) -m infra.local.invoke $(FN) $(EVENT)

## test: every check, then every test suite (one pytest run over tests/: unit, integration, infra, local_stack)
test: lint typecheck cfn-lint checkov openapi-check spectral chromium
	$(PY) -m pytest -n 2 tests

## unit, integration, infra-tests, local-stack-tests: one suite each
unit: $(VENV)/.installed
	$(PY) -m pytest -n 2 tests/unit

integration: $(VENV)/.installed chromium
	$(PY) -m pytest -n 2 tests/integration

infra-tests: $(VENV)/.installed
	$(PY) -m pytest -n 2 tests/infra

local-stack-tests: $(VENV)/.installed
	$(PY) -m pytest -n 2 tests/local_stack

## lint: ruff (style, bugs, complexity) and the layers contract (import-linter)
lint: $(VENV)/.installed lint-imports
	$(VENV)/bin/ruff check functions infra tests
	$(VENV)/bin/ruff format --check functions infra tests

# The contracts are in pyproject.toml ([tool.importlinter]): the layers, and boto3 only in dal/.
lint-imports: $(VENV)/.installed
	$(VENV)/bin/lint-imports --no-cache --no-logo

typecheck: $(VENV)/.installed
	$(VENV)/bin/mypy functions infra tests

cfn-lint: $(VENV)/.installed
	$(VENV)/bin/cfn-lint template.yaml

# Offline (no Prisma Cloud guideline download, no PyPI version check); a template it cannot parse fails too.
checkov: $(CHECKOV_VENV)/.installed
	CKV_SKIP_PACKAGE_UPDATE_CHECK=true CKV_PARSE_ERROR_FAIL=true \
		$(CHECKOV_VENV)/bin/checkov --quiet --compact --skip-download -f template.yaml --framework cloudformation

## openapi: regenerate infra/openapi.json from the code
openapi: $(VENV)/.installed
	$(PY) -m infra.openapi write

openapi-check: $(VENV)/.installed
	$(PY) -m infra.openapi check

## spectral: lint infra/openapi.json with Spectral's spectral:oas ruleset (.spectral.yaml); a warning fails
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --ignore-scripts
	touch $@

spectral: node_modules/.installed
	node_modules/.bin/spectral lint --fail-severity=warn --ruleset .spectral.yaml infra/openapi.json

bench: $(VENV)/.installed
	$(PY) -m tests.bench

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) node_modules .local .pytest_cache .mypy_cache .ruff_cache
