# Two commands set everything up on a fresh machine with Python 3.10+ and pip:
#   make demo   the main job on the built-in synthetic dataset
#   make test   the test suite (make test-fast: without the end-to-end runs)
# Each creates .venv when missing; a second run only re-installs when
# pyproject.toml or the constraints changed.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.vidnas-installed

.PHONY: setup demo test test-fast lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml requirements/constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements/constraints.txt -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/vidnas demo

# One pytest worker per core (pytest-xdist); each torch process then runs one thread.
test: $(STAMP)
	$(BIN)/python -m pytest -q -n auto

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -n auto -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/pylint --disable=all --enable=cyclic-import --score=n src/vidnas

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
