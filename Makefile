# The two commands: `make run` (whole service on embedded defaults) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat setup.cfg | cksum | cut -d' ' -f1)
MODEL := models/u2netp.onnx

.PHONY: run test install model services lint bench chaos clean

$(STAMP): setup.cfg
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) $(MODEL)

$(MODEL):
	PYTHON=$(PY) bash scripts/fetch_model.sh models

run: install
	$(PY) scripts/run_local.py

services:
	bash scripts/ensure_services.sh

test: install services
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf var instance .pytest_cache
