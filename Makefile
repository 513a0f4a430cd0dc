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

# tests/test_tensorboard.py drives Debian's headless Chromium through chromedriver.
CHROMIUM_PACKAGES := chromium chromium-driver
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: demo demo-seq test bench clean browser

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

# Installs Chromium and chromedriver when missing; fails loudly if it cannot, rather
# than letting the browser test be skipped.
browser:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
	  echo "Installing Debian packages $(CHROMIUM_PACKAGES) for the TensorBoard browser test"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(CHROMIUM_PACKAGES) \
	  || { echo "error: could not install $(CHROMIUM_PACKAGES); install them (apt-get install -y $(CHROMIUM_PACKAGES)) and re-run make test" >&2; exit 1; }; \
	fi

# Two pytest workers (pytest-xdist), each test file on one of them, so a file's shared
# fixtures are made once. Then the SeqNN tests again on Eigen's kernels: TensorFlow
# turns oneDNN on by default only on CPUs with AVX-512, so this covers a CPU without it
# on every machine.
TEST_WORKERS ?= 2
test: $(STAMP) browser
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile --durations=15 tests
	TF_ENABLE_ONEDNN_OPTS=0 $(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile \
	    -m both_kernels tests

# Benchmarks (about 90 min on 2 cores: seqnn_peer 30 of them, xla 25, memory 7; the
# first seqnn_peer run also makes its baskerville virtualenv): writes bench/results.json
# and bench/RESULTS.md.
bench: $(STAMP)
	$(PY) -m bench

demo: $(STAMP)
	$(PY) -m estimator_pipeline.demo --output_dir=$(DEMO_DIR)

# SeqNN on a synthetic genome with planted motifs: records sequences -> train -> saliency.
demo-seq: $(STAMP)
	$(PY) -m estimator_pipeline.demo_seq --output_dir=$(DEMO_SEQ_DIR)

clean:
	rm -rf $(DEMO_DIR) $(DEMO_SEQ_DIR) .pytest_cache
