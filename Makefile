# nago — the two commands:
#   make search   run a NAGO search on Fashion-MNIST, the quick preset (sets everything up)
#   make test     build everything and run every test (what CI runs)
#
# Everything builds with one profile (--release) so tests, benchmarks and the pipeline share
# one compilation of the dependency graph.

SHELL := /bin/bash
CARGO ?= cargo
CARGO_FLAGS ?= --release --locked
PYTHON ?= python3

# Prerequisites of `make test` and `make build`; the mk/*.mk fragments add theirs
# (e.g. the libtorch environment the trainer links against).
TEST_DEPS :=
BUILD_ENV :=
# Test targets beyond `cargo test` (Python analysis, the Slurm cluster test); the fragments add theirs.
EXTRA_TESTS :=
# What `make search` needs besides the build (the dataset); the fragments add theirs.
SEARCH_DEPS :=


.PHONY: bins
.PHONY: all build test cargo-test lint fmt clippy bench bench-generate help search
all: build

help:
	@echo "make search          run the default search (quick preset, Fashion-MNIST)"
	@echo "make test            build and run every test, fmt and clippy included"
	@echo "make bench-generate  architectures sampled per second"
	@echo "make test-generator-nx  nago's ER graphs against networkx's (two-sample tests)"
	@echo "make bench-train     nago-train images/s against PyTorch eager"
	@echo "make bench-bo        the optimiser against random search and Optuna"
	@echo "make bench-pipeline  utilisation of 2 asynchronous workers against rounds (quick preset)"
	@echo "make bench-recipe    training recipes: low-budget accuracy, rank correlation, images/s (panel of 8)"
	@echo "make bench-search    nago against random search and hand-made CNNs, several seeds (cached)"

include $(wildcard mk/*.mk)

build: $(TEST_DEPS)
	$(BUILD_ENV) $(CARGO) build $(CARGO_FLAGS) --workspace --all-targets

fmt:
	$(CARGO) fmt --all -- --check

clippy: $(TEST_DEPS)
	$(BUILD_ENV) $(CARGO) clippy $(CARGO_FLAGS) --workspace --all-targets -- -D warnings

lint: fmt clippy

test: $(TEST_DEPS) fmt clippy cargo-test $(EXTRA_TESTS)

cargo-test: bins
	$(BUILD_ENV) $(CARGO) test $(CARGO_FLAGS) --workspace --no-fail-fast

# The main job: a NAGO search (PRESET=standard for the two-objective one). Override any of
# these on the command line, e.g. `make search PRESET=smoke RUN=runs/try PARALLEL=1 SEARCH_FLAGS='--set seed=7'`.
PRESET ?= quick
RUN ?= runs/$(PRESET)
PARALLEL ?= 2
SEARCH_FLAGS ?=
bins: $(TEST_DEPS)
	$(BUILD_ENV) $(CARGO) build $(CARGO_FLAGS) --workspace --bins

search: bins $(SEARCH_DEPS)
	target/release/nago-search --preset $(PRESET) --run $(RUN) --parallel $(PARALLEL) $(SEARCH_FLAGS)

# The networkx baseline runs in its own small environment (networkx; scipy for the tests).
BENCH_VENV := bench/.venv
$(BENCH_VENV)/.stamp:
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install -q networkx
	touch $@
$(BENCH_VENV)/.scipy-stamp: $(BENCH_VENV)/.stamp
	$(BENCH_VENV)/bin/pip install -q scipy
	touch $@

# nago's ER(8, 0.1) graphs against networkx's redraw-until-connected ones: two-sample tests
# at 2,000 graphs (inputs, outputs, longest path, the 28 edge frequencies). A few seconds.
# Part of `make test` (like EXTRA_TESTS, which is expanded above, before this point).
.PHONY: test-generator-nx
test: test-generator-nx
test-generator-nx: $(BENCH_VENV)/.scipy-stamp
	$(CARGO) build -q $(CARGO_FLAGS) --workspace --example dag_stats
	$(BENCH_VENV)/bin/python tests/python/generator_networkx.py target/release/examples/dag_stats

bench-generate: $(BENCH_VENV)/.stamp
	@$(CARGO) build -q $(CARGO_FLAGS) --workspace --example bench_generate
	@echo "== networkx baseline (Python, one core) =="
	@taskset -c 0 $(BENCH_VENV)/bin/python bench/generate_networkx.py 3 | tee /tmp/nago-bench-nx.txt
	@echo "== nago-generator (Rust, one core) =="
	@taskset -c 0 target/release/examples/bench_generate 3 | tee /tmp/nago-bench-rs.txt | head -n -1
	@nx=$$(awk '/^networkx:/{print $$2}' /tmp/nago-bench-nx.txt); \
	 rs=$$(awk '/^generate:/{print $$2}' /tmp/nago-bench-rs.txt); \
	 echo "speed-up over the networkx baseline: $$(awk -v a=$$rs -v b=$$nx 'BEGIN{printf "%.0f", a/b}')x"; \
	 tail -n 1 /tmp/nago-bench-rs.txt
