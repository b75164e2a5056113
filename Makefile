# visionkit: the README's commands.
#   make demo   set up .venv and run the quickstart recipe on the embedded digits
#   make test   set up .venv, lint with ruff, run the tests
#   make test-heavy  the tests that start processes, run recipes, train or export (CI runs both)
#   make bench  run the benchmark scripts (prints measured ratios)

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: demo test test-heavy lint bench setup clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/visionkit run pipelines/digits_cnn.yaml

lint: $(STAMP)
	$(BIN)/ruff check visionkit tests benchmarks

# Two test processes (the machines have two cores); each test file runs in one process,
# so its module fixtures (a trained detector, an export) are built once. The slowest
# tests are listed at the end.
test: lint
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --durations=30

# Tests marked `heavy` (fresh processes, whole recipes and CLI commands, detector and large
# backbone training) and those listed in tests/heavy_tier.txt (measured costliest: training,
# XLA traces, SavedModel exports, every-model builds); `make test` leaves them out so it
# stays under ~5 minutes on two cores, CI runs both.
test-heavy: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --durations=30 -m "heavy and not slow"

bench: $(STAMP)
	$(BIN)/python benchmarks/train.py
	$(BIN)/python benchmarks/interpret.py
	$(BIN)/python benchmarks/pipeline.py

clean:
	rm -rf runs saved_models/*/ .pytest_cache .ruff_cache
