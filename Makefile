# Every target creates .venv and installs planner into it when missing; only python3 and make
# are needed on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PROBLEM ?= problems/chat-single-site.yaml

.PHONY: plan test bench calibrate lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[test,charts]"
	touch $(STAMP)

plan: $(STAMP)
	$(BIN)/planner solve $(PROBLEM)

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python bench/run.py

calibrate: $(STAMP)
	$(BIN)/planner calibrate --write

# pinned: a new release's new rules must not fail CI on unchanged code
lint: $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check ruff==0.17.6 mypy==2.4.1 types-PyYAML==6.0.12.20261113
	$(BIN)/ruff check planner tests bench
	$(BIN)/mypy planner

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
