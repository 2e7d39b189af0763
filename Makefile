# README contract: `make demo` and `make test` set everything up on a fresh Debian 12 / Python 3.11 machine.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
AKKD_DATA_DIR ?= $(abspath ../shared/data)
export AKKD_DATA_DIR

.PHONY: demo test lint format bundle setup system-packages clean

system-packages:
	@if ! command -v gfortran >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    echo "installing gfortran (needed to build LOWTRAN7)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gfortran; \
	  else echo "gfortran missing: install it (apt-get install gfortran) to build LOWTRAN7"; fi; \
	fi

$(STAMP): pyproject.toml | system-packages
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "$(PYTHON) not found"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[train,test]"
	@touch $(STAMP)

setup: system-packages $(STAMP)

demo: setup
	$(VENV)/bin/akkd-scale demo --out demo_output

#: Type-checked: the retrieval runtime (what `run`, `export`, `quicklook` execute).
RUNTIME_SOURCES := akkd_scale/sensors akkd_scale/io akkd_scale/physics/tes.py akkd_scale/landcover akkd_scale/clouds \
	akkd_scale/models akkd_scale/pipeline akkd_scale/conventions.py akkd_scale/constants.py \
	akkd_scale/errors.py akkd_scale/config.py akkd_scale/utils.py akkd_scale/metrics.py

lint: setup
	$(VENV)/bin/ruff check akkd_scale tests scripts benchmarks
	$(VENV)/bin/ruff format --check akkd_scale tests scripts benchmarks
	$(VENV)/bin/mypy $(RUNTIME_SOURCES)
	$(PY) scripts/readme_tables.py --check

format: setup
	$(VENV)/bin/ruff check --fix akkd_scale tests scripts benchmarks
	$(VENV)/bin/ruff format akkd_scale tests scripts benchmarks
	$(PY) scripts/readme_tables.py

test: setup lint
	$(PY) -m pytest -q -p no:cacheprovider

# Retrain the shipped default bundle (simulate → AutoKeras teacher → refine → distil → fuse → baseline → evaluate),
# ~69 min on 2 shared cores (2026-12-02).
bundle: setup
	$(PY) scripts/train_default_bundle.py --out akkd_scale/data/default_bundle

clean:
	rm -rf $(VENV) demo_output
