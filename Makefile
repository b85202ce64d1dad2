# One .venv in the repository holds everything; `make test` and `make demo` install it first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install test lint demo demo-headless bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	bash scripts/install_browser.sh
	touch $(STAMP)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

test: install lint
	$(PY) -m pytest -q
	$(PY) -m pytest -q --nbval-lax --nbval-sanitize-with notebooks/nbval_sanitize.cfg notebooks/

demo: install
	$(PY) scripts/demo.py

demo-headless: install
	$(PY) scripts/demo.py --headless

bench: install
	$(PY) benchmarks/bench_throughput.py
	$(PY) benchmarks/bench_memory.py
	$(PY) benchmarks/bench_map.py
	$(PY) benchmarks/bench_ray.py

clean:
	rm -rf $(VENV) build dist *.egg-info
