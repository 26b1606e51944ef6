# The optimiser's benchmark (issues 4, 14): nago-bo against random search, Optuna's
# multi-objective samplers and BoTorch's qLogNEHVI on BraninCurrin, ZDT1-3, DTLZ2, shifted
# variants with an interior Pareto set (ZDT1s, DTLZ2s) and noisy variants (ZDT1/ZDT3/DTLZ2
# with Gaussian noise of 5 % and 10 % of each objective's range; HV on noiseless values),
# 60 evaluations, batches of 4; then one optimiser round's latency (fit + propose).
#   make bench-bo                    10 seeds (BO_SEEDS=3 for a quick look)
#   BO_PROBLEMS=ZDT1,ZDT1-n5         a subset (default: all)
# The anchors run in their own environment (bench/bo/.venv: optuna, botorch, torch; the
# full PyPI wheel, run on the CPU with one thread) and are cached per (method, problem,
# seed) under bench/bo/cache/, so the bench resumes and extends run by run (delete the
# cache after changing a harness). Optuna's GP sampler and qLogNEHVI are slow (minutes per
# run on 2 cores): BO_ANCHORS="nsga2 tpe" leaves them out.

BO_SEEDS ?= 10
BO_ANCHORS ?= nsga2 tpe gp qlognehvi
BO_PROBLEMS ?=
BO_VENV := bench/bo/.venv
BO_CACHE ?= bench/bo/cache
BO_PROBLEM_FLAG := $(if $(BO_PROBLEMS),--problems=$(BO_PROBLEMS),)

$(BO_VENV)/.stamp:
	$(PYTHON) -m venv $(BO_VENV)
	$(BO_VENV)/bin/pip install -q optuna botorch torch==2.11.0
	touch $@

.PHONY: bench-bo
bench-bo: $(BO_VENV)/.stamp
	@$(CARGO) build -q $(CARGO_FLAGS) --workspace --example bench_bo
	@echo "== nago-bo and random search (Rust), $(BO_SEEDS) seeds; latency on one core =="
	@uptime
	@target/release/examples/bench_bo $(BO_SEEDS) --hv-only $(BO_PROBLEM_FLAG) > /tmp/nago-bench-bo-rs.txt
	@taskset -c 0 target/release/examples/bench_bo 0 --latency-only >> /tmp/nago-bench-bo-rs.txt
	@echo "== anchors: $(BO_ANCHORS), $(BO_SEEDS) seeds (cached in $(BO_CACHE)) =="
	@: > /tmp/nago-bench-bo-py.txt
	@for a in $(filter-out qlognehvi,$(BO_ANCHORS)); do \
	  $(BO_VENV)/bin/python bench/bo/optuna_bench.py $(BO_SEEDS) $$a $(BO_PROBLEM_FLAG) --cache=$(BO_CACHE) >> /tmp/nago-bench-bo-py.txt || exit 1; done
	@if echo "$(BO_ANCHORS)" | grep -q qlognehvi; then \
	  $(BO_VENV)/bin/python bench/bo/botorch_bench.py $(BO_SEEDS) $(BO_PROBLEM_FLAG) --cache=$(BO_CACHE) >> /tmp/nago-bench-bo-py.txt; fi
	@cat /tmp/nago-bench-bo-rs.txt /tmp/nago-bench-bo-py.txt | $(PYTHON) bench/bo/report.py
