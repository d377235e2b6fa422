# Quick start: `make demo` runs the pipeline on the shipped crawl sample, `make test` runs the tests.
# Both create .venv and install what they need.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SAMPLE := tests/fixtures/crawl

.PHONY: demo test lint bench bench-gpu test-gpu test-browser install clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch==2.13.0 is the CPU wheel (a newer or unpinned torch is a multi-GB CUDA build)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test,gpu]' 'torch==2.13.0'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/toxsieve run --config deploy/configs/demo.yaml --overwrite \
	  --input '$(SAMPLE)/*/*.warc.gz' --input '$(SAMPLE)/*/*.warc.wet.gz' --input '$(SAMPLE)/*/*.jsonl.gz' \
	  --output out/demo

test: $(STAMP)
	$(BIN)/python -m ruff check pipelines classifiers schemas tests bench
	$(BIN)/python -m pytest -q -rs

# The browser tests of the HTML audit report (headless Chromium; installs Debian's chromium when missing).
test-browser: $(STAMP)
	command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)
	$(BIN)/python -m pytest -q -rs tests/e2e/test_audit_browser.py

bench: $(STAMP)
	$(BIN)/python bench/pipeline_bench.py

# On a machine with an NVIDIA GPU: the gpu-marked tests and the transformer benchmark.
test-gpu: $(STAMP)
	$(BIN)/python -m pytest -q -m gpu tests

bench-gpu: $(STAMP)
	$(BIN)/python bench/gpu_classifier.py --size base --docs 2000 --device cuda

clean:
	rm -rf out .pytest_cache .ruff_cache .hypothesis

# Fuzz the shard readers for FUZZ_SECONDS (not part of `make test` / CI): coverage-guided with
# atheris when it installs, else a Hypothesis-driven search over the same target (issue #10).
FUZZ_SECONDS ?= 60
.PHONY: fuzz
fuzz: $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check atheris || echo "atheris unavailable: fuzzing with Hypothesis"
	$(BIN)/python tests/fuzz/fuzz_readers.py -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=4096
