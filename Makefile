# The two commands: `make run` (whole service on embedded defaults) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat setup.cfg | cksum | cut -d' ' -f1)
MODEL := models/u2netp.onnx
HD_MODEL := models/u2net.onnx
# make test runs the suite in 2 pytest-xdist processes (a test module stays in one process; each
# process has its own databases and Redis indexes): 5.5 min instead of 8.5 on 2 cores.
TEST_PROCESSES ?= 2

.PHONY: run test install model services browser lint bench chaos clean fuzz quality

$(STAMP): setup.cfg
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) $(MODEL) $(HD_MODEL)

$(MODEL):
	PYTHON=$(PY) bash scripts/fetch_model.sh models u2netp

$(HD_MODEL):
	PYTHON=$(PY) bash scripts/fetch_model.sh models u2net

run: install
	$(PY) scripts/run_local.py

services:
	bash scripts/ensure_services.sh

browser:
	PYTHON=$(PY) bash scripts/install_browser.sh

test: install services browser
	$(PY) -c "import rembg" # first import compiles numba kernels once (~45 s), not inside a test
	$(PY) -m pytest -n $(TEST_PROCESSES) --dist loadfile

# Every bench, then one summary table (bench/summary.py) of the figures this run measured.
bench: install services
	rm -rf var/bench-results
	$(PY) bench/api_load.py --repeat 3
	$(PY) bench/lifecycle_latency.py
	$(PY) -m bench.pipeline
	$(PY) -m bench.worker_memory
	$(PY) bench/first_task.py
	$(PY) bench/service_throughput.py
	$(PY) bench/batch.py
	$(PY) bench/model_worker_seconds.py
	$(PY) -m bench.matting_quality
	$(PY) bench/summary.py

# Cut-out quality against ground truth, side by side with rembg (docs/QUALITY.md).
quality: install
	$(PY) -m bench.matting_quality

chaos: install
	$(PY) -c "import rembg"
	$(PY) -m pytest tests/chaos -m chaos

fuzz: install services
	OPENAPI_FUZZ_EXAMPLES=$${EXAMPLES:-300} OPENAPI_FUZZ_SEED=$${SEED:-$$(date +%s)} $(PY) -m pytest tests/api/test_openapi.py -k schemathesis -p no:logging

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf var instance .pytest_cache
