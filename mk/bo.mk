# The optimiser's benchmark (issue 4): nago-bo against random search and Optuna's
# multi-objective samplers on BraninCurrin, ZDT1-3 and DTLZ2 (60 evaluations, batches of 4).
#   make bench-bo                    10 seeds (BO_SEEDS=3 for a quick look)
# Optuna runs in its own environment (bench/bo/.venv), with torch for its GPSampler (the
# full PyPI wheel: `import torch` needs its CUDA libraries even on a CPU). The GP sampler is
# slow (minutes per run on 2 cores): BO_OPTUNA_SAMPLERS="nsga2 tpe" leaves it out.

BO_SEEDS ?= 10
BO_OPTUNA_SAMPLERS ?= nsga2 tpe gp
BO_VENV := bench/bo/.venv

$(BO_VENV)/.stamp:
	$(PYTHON) -m venv $(BO_VENV)
	$(BO_VENV)/bin/pip install -q optuna torch==2.11.0
	touch $@

.PHONY: bench-bo
bench-bo: $(BO_VENV)/.stamp
	@$(CARGO) build -q $(CARGO_FLAGS) -p nago-bo --example bench_bo
	@echo "== nago-bo and random search (Rust), $(BO_SEEDS) seeds =="
	@target/release/examples/bench_bo $(BO_SEEDS) > /tmp/nago-bench-bo-rs.txt
	@echo "== Optuna: $(BO_OPTUNA_SAMPLERS), $(BO_SEEDS) seeds =="
	@$(BO_VENV)/bin/python bench/bo/optuna_bench.py $(BO_SEEDS) $(BO_OPTUNA_SAMPLERS) > /tmp/nago-bench-bo-py.txt
	@cat /tmp/nago-bench-bo-rs.txt /tmp/nago-bench-bo-py.txt | $(PYTHON) bench/bo/report.py
