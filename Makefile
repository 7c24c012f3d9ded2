# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: run test lint typecheck pytest bench demo serve lock clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# requirements.lock pins every version (the ones the suite ran against); `make lock` refreshes it.
$(STAMP): pyproject.toml requirements.lock | $(BIN)/python
	$(BIN)/pip install --quiet -c requirements.lock -e ".[postgres]"
	touch $@

$(DEV_STAMP): pyproject.toml requirements.lock | $(BIN)/python
	$(BIN)/pip install --quiet -c requirements.lock -e ".[dev,postgres]"
	touch $@ $(STAMP)

## run: with Slack credentials, serve the bot; without, run the offline demo on SQLite
run: $(STAMP)
	@if [ -n "$$SLACK_BOT_TOKEN$$SLACK_CLIENT_ID" ] || grep -qsE '^(SLACK_BOT_TOKEN|SLACK_CLIENT_ID)=.+' .env; then \
		$(BIN)/mfi-ar serve; \
	else \
		echo "No Slack credentials found: running the offline demo against the built-in Slack stand-in."; \
		$(BIN)/mfi-ar demo; \
	fi

demo: $(STAMP)
	$(BIN)/mfi-ar demo

serve: $(STAMP)
	$(BIN)/mfi-ar serve

## test: ruff, import rules (lint-imports), mypy and the whole pytest suite (SQLite and a throwaway PostgreSQL cluster)
test: lint typecheck pytest

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(DEV_STAMP)
	$(BIN)/mypy

pytest: $(DEV_STAMP)
	$(BIN)/pytest -q

## bench: performance goals (not part of make test)
bench: $(DEV_STAMP)
	$(BIN)/python -m bench

## lock: after changing dependencies in pyproject.toml, install them and rewrite requirements.lock from the venv
lock: $(DEV_STAMP)
	$(BIN)/pip install --quiet -e ".[dev,postgres]"
	$(BIN)/python tools/lock.py

clean:
	rm -rf $(VENV) var demo-output .pytest_cache .mypy_cache .ruff_cache
