# The template's two commands: `make bake` (a project with the default answers) and `make test` (everything).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CDK_CLI_VERSION := 2.1148.1
CDK_CLI_DIR := .cache/cdk-cli
CDK_CLI := $(CDK_CLI_DIR)/node_modules/.bin/cdk
# checkov scans the baked projects' templates (tests/test_bake.py); its own venv keeps its pins out of ours.
CHECKOV_VERSION := 3.3.30
CHECKOV_DIR := .cache/checkov
CHECKOV := $(CHECKOV_DIR)/bin/checkov
BAKE_DIR ?= baked
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export CDK_CLI
export CHECKOV

.PHONY: install bake test mutants bench clean

install: $(BIN)/.installed $(CDK_CLI) $(CHECKOV)

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet ".[dev]"
	touch $@

$(CDK_CLI):
	npm install --silent --no-audit --no-fund --prefix $(CDK_CLI_DIR) aws-cdk@$(CDK_CLI_VERSION)

# Order-only: a change to pyproject.toml reinstalls our venv, not checkov's.
$(CHECKOV): | $(BIN)/.installed
	$(BIN)/uv venv --quiet --clear --python $(PYTHON) $(CHECKOV_DIR)
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(CHECKOV_DIR)/bin/python checkov==$(CHECKOV_VERSION)

bake: $(BIN)/.installed
	$(BIN)/cookiecutter --no-input --overwrite-if-exists --output-dir $(BAKE_DIR) .
	@echo "Baked into $(BAKE_DIR)/"

# Three test processes on two cores: each baked variant's suite is synths (~450 MiB each, CPU) and a local pipeline
# that partly waits (visibility timeouts, processes starting), so a third keeps both cores busy. One test at a time
# per worker, longest first (tests/conftest.py), keeps the three busy to the end.
test: install
	$(BIN)/pytest -n 3 --maxschedchunk 1

# Plausible template bugs, one at a time: each must make a baked project's own suite fail (tests/mutants.py).
mutants: install
	cd tests && ../$(BIN)/python mutants.py

# Timings against one bare CDK synth: B0 time to green vs an empty `cdk init` app, each variant (ARGS=--help).
bench: install
	cd tests && ../$(BIN)/python bench.py $(ARGS)

clean:
	rm -rf $(VENV) .cache $(BAKE_DIR) .pytest_cache
