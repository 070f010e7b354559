# Two entry points (README): `make repro` runs the pipeline, `make test` runs the tests.
# Each creates .venv and installs what it needs on a fresh machine.
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
export PATH := $(BIN):$(PATH)

.PHONY: install repro test lint docs clean gpu-wheels
install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/python -m pip install -q -e '.[test,dask]'
	touch $@

repro: install
	dvc repro
	@echo "Report: $(CURDIR)/reports/tables.md   (compare commits: dvc metrics diff)"

test: install
	ruff check fer_pipeline pipeline tests benchmarks docs
	python -m pytest -q -p no:cacheprovider -n 2 --dist loadgroup tests

lint: install
	ruff check fer_pipeline pipeline tests benchmarks docs

# The docs site, offline: open site/index.html. The parameter reference is regenerated first (docs/gen_reference.py).
docs: install
	python docs/gen_reference.py
	mkdocs build --strict --site-dir site

# Wheels for a GPU machine without network access, built here into .whl/ (ignored) and copied with the checkout:
# pure-Python dependencies a CUDA PyTorch environment usually lacks, needed by the post-hoc methods (gradcam,
# gradcampp, layercam). The GPU check needs none of them (DVCLive is optional in train_model; dlib is not used).
# BENCHMARKS.md, "GPU", shows how to install them there and run the check.
GPU_WHEELS := grad-cam==1.5.7 ttach==0.0.3
gpu-wheels:
	rm -rf .whl && mkdir -p .whl
	python3 -m pip wheel -q --no-deps -w .whl $(GPU_WHEELS)  # pure Python (py3-none-any): grad-cam ships an sdist only
	@du -cb .whl/*.whl | tail -1 | awk '{ printf "gpu-wheels: %.2f MiB in .whl/: copy it with the checkout\n", $$1 / 1048576 }'
