# make bench-recipe: the training recipe study of issue 11. A panel of 8 generators of the quick
# preset's space (bench/recipe/panel.json), each network trained by nago-train under every
# recipe; prints validation accuracy after 1, 2 and 4 epochs, test accuracy after 4, images/s,
# and the Spearman correlation between the low and the 4-epoch accuracy across the panel, then
# images/s at batch 64/128/256. Hours of CPU on 2 cores: every run is cached under
# bench/recipe/cache/runs/ (a finished one is read back, an interrupted one continues its
# checkpoint), so the bench resumes and extends run by run.
#   make bench-recipe [RECIPES=current,anneal] [RECIPE_JOBS=2]
RECIPES ?= current,anneal,anneal-b256,anneal-ls
RECIPE_JOBS ?= 2
# python/.venv (pandas, pyarrow) is made by mk/report.mk, which is read after this file.
.PHONY: bench-recipe
bench-recipe: bins data/fashion-mnist python/.venv/.analysis-stamp
	@uptime
	@python/.venv/bin/python bench/recipe/recipe_bench.py --study pipelines/presets/quick.json \
	  --recipes $(RECIPES) --jobs $(RECIPE_JOBS)
	@uptime
