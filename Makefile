# Two entry points (README): `make repro` runs the pipeline, `make test` runs the tests.
# Each creates .venv and installs what it needs on a fresh machine.
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
export PATH := $(BIN):$(PATH)

.PHONY: install repro test lint clean
install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/python -m pip install -q -e '.[test,dask]'
	touch $@

repro: install
	dvc repro
	@echo "Report: $(CURDIR)/reports/tables.md   (compare commits: dvc metrics diff)"

test: install
	ruff check fer_pipeline pipeline tests benchmarks
	python -m pytest -q -p no:cacheprovider tests

lint: install
	ruff check fer_pipeline pipeline tests benchmarks
