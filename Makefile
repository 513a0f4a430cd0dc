# `make demo`, `make test` and `make bench` each create .venv and install the exact pins
# in requirements.txt first, so a machine with nothing but Python 3.11 can run them.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_DIR ?= demo_out
DEMO_SEQ_DIR ?= demo_seq_out
# Quieter TensorFlow start-up in every target; the pipeline sets the same default itself.
export TF_CPP_MIN_LOG_LEVEL ?= 3

.PHONY: demo demo-seq test bench clean

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

test: $(STAMP)
	$(PY) -m pytest -q tests

# Benchmarks (< 10 min on 2 cores): writes bench/results.json and bench/RESULTS.md.
bench: $(STAMP)
	$(PY) -m bench

demo: $(STAMP)
	$(PY) -m estimator_pipeline.demo --output_dir=$(DEMO_DIR)

# SeqNN on a synthetic genome with planted motifs: records sequences -> train -> saliency.
demo-seq: $(STAMP)
	$(PY) -m estimator_pipeline.demo_seq --output_dir=$(DEMO_SEQ_DIR)

clean:
	rm -rf $(DEMO_DIR) $(DEMO_SEQ_DIR) .pytest_cache
