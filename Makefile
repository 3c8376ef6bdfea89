# cabinlift: `make demo` installs and runs the demo pipeline; `make test` installs and runs the tests.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
MMLAB_STAMP := $(VENV)/.mmlab-installed
DEV_STAMP := $(VENV)/.dev-installed

.PHONY: install install-mmlab install-browser demo test test-fast lint bench mutation clean-venv

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

install: $(STAMP)

## The OpenMMLab stack for the `mmpose` backend (mmcv is built from source once per machine,
## ~25 min on 2 cores; the wheel is kept in ~/.cache/cabinlift/wheels).
$(MMLAB_STAMP): $(STAMP) requirements-mmlab.txt requirements-mmlab-build.txt scripts/install_mmlab.sh scripts/fetch_sdist.py
	scripts/install_mmlab.sh $(BIN)/python
	touch $(MMLAB_STAMP)

install-mmlab: $(MMLAB_STAMP)

## The headless Chromium the report's test opens metrics/report.html in (Debian's `chromium`;
## nothing to do when it is on PATH).
install-browser:
	scripts/install_chromium.sh

## Run the whole pipeline on the embedded demo data (writes metrics/ and plots/).
demo: install
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro

## Lint, then the whole test suite (including the slow end-to-end DVC tests, the MMLab
## backend's tests and the report's browser test, which fail instead of skipping when the stack
## or Chromium is missing). Test files are spread over two processes (a file's tests stay
## together: they share module fixtures).
test: install install-mmlab install-browser
	$(BIN)/ruff check src tests benchmarks scripts
	PATH="$(CURDIR)/$(BIN):$$PATH" CABINLIFT_REQUIRE_MMLAB=1 CABINLIFT_REQUIRE_CHROMIUM=1 \
		$(BIN)/python -m pytest -q -n 2 --dist loadfile

## Unit tests only (skips the end-to-end pipeline tests; MMLab tests skip without the stack).
test-fast: install
	$(BIN)/python -m pytest -q -m "not slow"

lint: install
	$(BIN)/ruff check src tests benchmarks scripts

bench: install
	$(BIN)/python benchmarks/lifter_throughput.py

$(DEV_STAMP): $(STAMP) requirements-dev.txt
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $(DEV_STAMP)

## Mutation testing, not part of `make test` (docs/mutation.md): mutmut mutates the
## protocol-critical modules listed under [tool.mutmut] in pyproject.toml and runs against each
## mutant the fast tests that reach the mutated function, then prints the score per module and
## the surviving mutants (`$(BIN)/mutmut show NAME` shows one). Results are kept in mutants/ and
## only mutants of changed functions run again. MUTANTS narrows the run to some modules, e.g.
## `make mutation MUTANTS='cabinlift.metrics.* cabinlift.subsets.*'`; MUTATION_JOBS sets the
## parallel test processes (default: one per core).
MUTANTS ?=
MUTATION_JOBS ?= $(shell nproc)
mutation: $(DEV_STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/mutmut run --max-children $(MUTATION_JOBS) $(MUTANTS)
	$(BIN)/python scripts/mutation_summary.py mutants

clean-venv:
	rm -rf $(VENV)
