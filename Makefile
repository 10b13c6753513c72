# hybridrec — `make run` reproduces the default pipeline, `make test` runs the test suite.
# Both create .venv and install the pinned dependencies first (once; again when requirements.lock changes).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
DVC    := $(VENV)/bin/dvc
DATASET ?= $(shell sed -n "s/^dataset: *\([^ #]*\).*/\1/p" params.yaml)  # the default dataset (params.yaml)

# quiet, offline tools (see README "Configuration")
export DO_NOT_TRACK := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS := 90
export PREFECT_HOME ?= $(CURDIR)/.prefect
export DVC_NO_ANALYTICS := 1
export GX_ANALYTICS_ENABLED := False
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: setup run test test-fast fuzz lint ui deploy deploy-pool worker push pull bench bench-fanout peers clean help
POOL ?= hybridrec

help:
	@echo "make run    — set up .venv, acquire the datasets of params.yaml's pipeline, run it with dvc repro (reports/)"
	@echo "make test   — set up .venv, run the whole test suite"
	@echo "make fuzz   — property-based fuzzing of the raw parsers (1000 examples each)"
	@echo "make ui     — start the Prefect UI on http://127.0.0.1:4200"
	@echo "make deploy — serve the scheduled pipeline deployment (cron from params.yaml)"
	@echo "make deploy-pool / worker — the pipeline on the process work pool $(POOL), and a worker for it"
	@echo "make push / pull — DVC remote round trip;  make lint;  make bench"
	@echo "make peers  — RecBole / Surprise in .venv-peers, trained side by side with hybridrec (seconds per epoch)"

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "hybridrec needs Python >= 3.11, found " + sys.version' 
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements.lock
	$(PY) -m pip install --disable-pip-version-check -q --no-deps --no-build-isolation -e .  # the `hybridrec` command
	touch $@

# glibc malloc for training processes (tasks/common/malloc.py: large tensors stay in the heap; HYBRIDREC_MALLOC=default
# keeps glibc's behaviour)
MALLOC := $(if $(filter default,$(HYBRIDREC_MALLOC)),,MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TRIM_THRESHOLD_=8589934592)

run: setup
	@$(if $(MALLOC),export $(MALLOC);) start=$$(date +%s); \
	$(PY) -m flows.acquire --pipeline && \
	$(DVC) add -q data && \
	$(PY) -m flows.with_server -- $(DVC) repro && \
	echo "pipeline wall time: $$(( $$(date +%s) - start )) s (after set-up); reports: reports/index.html"

test: setup
	$(PY) -m pytest

test-fast: setup
	$(PY) -m pytest -m "not slow"

# property-based fuzzing of every raw parser with many more examples than `make test` runs (profile in tests/fuzz)
fuzz: setup
	HYPOTHESIS_PROFILE=fuzz $(PY) -m pytest tests/fuzz

lint: setup
	$(VENV)/bin/ruff check .

ui: setup
	@echo "Prefect UI: http://127.0.0.1:4200  (point runs at it: export PREFECT_API_URL=http://127.0.0.1:4200/api)"
	$(PY) -m flows.server --host 127.0.0.1 --port 4200

deploy: setup
	$(PY) -m flows.deploy

deploy-pool: setup
	$(PY) -m flows.deploy --pool $(POOL) --create-pool

worker: setup
	env $(MALLOC) $(PY) -m flows.worker --pool $(POOL)

bench-fanout: setup
	$(PY) -m bench.fanout --workers 2 --threads-per-worker 1

push: setup
	$(DVC) push

pull: setup
	$(DVC) pull

bench: setup
	$(PY) -m bench.train_bench

# the peers (RecBole 1.2.1, Surprise 1.1.5) in their own venv, then hybridrec and them side by side (not a test)
peers: setup .venv-peers/.installed
	$(PY) -m bench.peers.side_by_side

.venv-peers/.installed: bench/peers/requirements.txt
	test -x .venv-peers/bin/python || $(PYTHON) -m venv .venv-peers
	.venv-peers/bin/pip install --disable-pip-version-check -q -r bench/peers/requirements.txt
	.venv-peers/bin/pip install --disable-pip-version-check -q --no-deps recbole==1.2.1
	touch $@

clean:
	rm -rf artifacts reports .prefect
