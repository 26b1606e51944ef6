# make bench-pipeline: the quick preset with 2 workers, asynchronous against rounds, in the
# same run; prints utilisation (training core-seconds / (cores x wall), first proposal to last
# result) and the share of the workers' time in propose / update / generate / process start.
# Each mode's study is kept under bench/pipeline/cache/<mode>-<seed> (a finished one is only
# reported again; an interrupted one resumes): delete it to measure again.
#   make bench-pipeline [PIPELINE_PRESET=quick] [PIPELINE_SEED=2020]
PIPELINE_PRESET ?= quick
PIPELINE_SEED ?= 2020
PIPELINE_CACHE := bench/pipeline/cache
.PHONY: bench-pipeline
bench-pipeline: bins data/fashion-mnist
	@uptime
	@mkdir -p $(PIPELINE_CACHE)
	@for mode in async rounds; do \
	  run=$(PIPELINE_CACHE)/$(PIPELINE_PRESET)-$$mode-$(PIPELINE_SEED); \
	  flag=$$([ $$mode = rounds ] && echo --rounds); \
	  echo "== $$mode: $$run"; \
	  target/release/nago-search --preset $(PIPELINE_PRESET) --run $$run --parallel 2 $$flag \
	    --set seed=$(PIPELINE_SEED) >> $$run.log 2>&1 || { tail $$run.log; exit 1; }; \
	done
	@$(PYTHON) bench/pipeline/report.py $(PIPELINE_CACHE)/$(PIPELINE_PRESET)-async-$(PIPELINE_SEED) \
	  $(PIPELINE_CACHE)/$(PIPELINE_PRESET)-rounds-$(PIPELINE_SEED)
