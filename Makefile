# offgen: `make demo` and `make test` install everything first (idempotent).
VENV ?= .venv
PY := $(VENV)/bin/python
export OFFGEN_HOME ?= $(HOME)/.cache/offgen

.PHONY: install demo test lint typecheck pytest bench clean

install: $(VENV)/.offgen-installed

$(VENV)/.offgen-installed: pyproject.toml setup.py offgen/_decode.c scripts/install.sh
	VENV=$(VENV) bash scripts/install.sh
	touch $@

demo: install
	$(PY) -m offgen.demo

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: install
	$(VENV)/bin/mypy

pytest: install
	$(VENV)/bin/python -m pytest -q --durations=25

test: lint typecheck pytest

bench: install
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
