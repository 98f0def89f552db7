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

lint: $(STAMP)
	$(BIN)/python -m pip install --quiet ruff mypy types-PyYAML
	$(BIN)/ruff check planner tests bench
	$(BIN)/mypy planner

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
