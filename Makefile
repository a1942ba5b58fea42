# Two set-up commands (see README): `make run` and `make test`.
# Each creates the virtual environment it needs on first use.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell $(PYTHON) -c "import hashlib,sys;print(hashlib.sha1(open('pyproject.toml','rb').read()).hexdigest()[:12])")

.PHONY: run test lint typecheck check demo bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c "import sys; sys.exit('complaint-desk needs Python 3.11 or newer') if sys.version_info < (3, 11) else None"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $@

run: $(STAMP)
	$(BIN)/complaint-desk serve

test: $(STAMP)
	$(BIN)/pytest -q $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

check: lint typecheck test

demo: $(STAMP)
	$(BIN)/complaint-desk demo

bench: $(STAMP)
	$(BIN)/python bench/serve_footprint.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
