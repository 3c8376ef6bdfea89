# cabinlift: `make demo` installs and runs the demo pipeline; `make test` installs and runs the tests.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test test-fast lint bench clean-venv

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

install: $(STAMP)

## Run the whole pipeline on the embedded demo data (writes metrics/ and plots/).
demo: install
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro

## Lint, then the whole test suite (including the slow end-to-end DVC test).
test: install
	$(BIN)/ruff check src tests benchmarks
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -q

## Unit tests only (skips the end-to-end pipeline tests).
test-fast: install
	$(BIN)/python -m pytest -q -m "not slow"

lint: install
	$(BIN)/ruff check src tests benchmarks

bench: install
	$(BIN)/python benchmarks/lifter_throughput.py

clean-venv:
	rm -rf $(VENV)
