# make bench-search: the evidence that the search works (issue 11). nago's search against
# quasi-random search (the same preset with every generator from the Sobol design: same
# budgets, promotion rule and final round) and the hand-made baselines trained with the
# study's final protocol, over several seeds; prints the final round's front hypervolume,
# the best final accuracy at <= 25k/100k/400k parameters, wall time and training images.
# A quick-preset study takes ~13 min of both cores: every study is cached under
# bench/search/cache/<preset>-<digest of the preset file>-<method>-<seed> (finished ones are
# read again, interrupted ones resume), so the bench extends run by run:
# `make bench-search SEARCH_SEEDS=3,4`. A finished run's summary goes to
# bench/search/results/ (committed): a fresh checkout reruns only what has none.
#   make bench-search [SEARCH_PRESET=quick] [SEARCH_SEEDS=0,1,2] [SEARCH_METHODS=nago,random]
SEARCH_PRESET ?= quick
SEARCH_SEEDS ?= 0,1,2
SEARCH_METHODS ?= nago,random
.PHONY: bench-search
# python/.venv (pyarrow) is made by mk/report.mk, which is read after this file.
bench-search: bins data/fashion-mnist python/.venv/.analysis-stamp
	@uptime
	@python/.venv/bin/python bench/search/search_bench.py --preset $(SEARCH_PRESET) \
	  --seeds $(SEARCH_SEEDS) --methods $(SEARCH_METHODS)
	@uptime
