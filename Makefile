# The two set-up commands from the README. Each installs what it needs when missing
# (scripts/bootstrap) and is safe to run twice.
VENV ?= .venv
BIN := $(VENV)/bin
SANDBOX ?= .rollout/sandbox

.PHONY: demo test bootstrap lint unit integration demo-down clean

## make demo: walk a sample release from an RT ticket to a package installed with apt-get and dnf
demo: bootstrap
	$(BIN)/rollout demo --dir $(SANDBOX)

## make test: lint, type-check, then the whole test suite (unit, integration, acceptance)
test: bootstrap lint
	$(BIN)/pytest

bootstrap:
	@scripts/bootstrap

lint: bootstrap
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## make unit: the unit tier, Python only (tests/unit/conftest.py refuses processes, network
## connections and SQLite files); about 5 s
unit: bootstrap
	$(BIN)/pytest tests/unit

integration: bootstrap
	$(BIN)/pytest tests/integration tests/acceptance

demo-down:
	$(BIN)/rollout tracker sandbox down --dir $(SANDBOX)

clean: demo-down
	rm -rf .rollout
