# nago-report, the Python analysis tests and the model export (crates/nago-report, python/,
# tests/python/).
#
#   make report RUN=runs/x     write runs/x/report/index.html (also: nago-report html --run runs/x)
#   make test-python           every test below (part of `make test` through EXTRA_TESTS)
#   make test-report-browser   a synthetic study's report opened in headless Chromium: every
#                              figure present and non-empty; screenshot in target/report-test/
#   make report-screenshot     the same, screenshot written to docs/report.png
#   make test-export           Python and ONNX exports vs the Rust model: same logits for 5
#                              architectures (every op, merge kind and stem), onnxruntime
#   make test-parquet          trials.parquet / pareto.parquet read with pandas, polars, DuckDB
#
# Python tools live in python/.venv: pandas, polars, pyarrow, duckdb (analysis tests) and, for
# the export test only, torch 2.11.0 (the trainer's libtorch version) with onnx, onnxscript
# (torch.onnx's exporter) and onnxruntime (to run the exported model), pinned. Chromium is Debian's
# package, installed with apt-get when missing (CI runs as root).

.PHONY: report test-python test-report-browser report-screenshot test-export test-parquet
EXTRA_TESTS += test-python

REPORT_VENV := python/.venv
REPORT_PY := $(REPORT_VENV)/bin/python
REPORT_PIP_CACHE := $(if $(wildcard /tmp/pipcache),--find-links /tmp/pipcache,)
REPORT_TEST_DIR := target/report-test

$(REPORT_VENV)/.analysis-stamp:
	$(PYTHON) -m venv $(REPORT_VENV)
	$(REPORT_VENV)/bin/pip install -q $(REPORT_PIP_CACHE) pandas polars pyarrow duckdb
	touch $@

$(REPORT_VENV)/.torch-stamp: $(REPORT_VENV)/.analysis-stamp
	$(REPORT_VENV)/bin/pip install -q $(REPORT_PIP_CACHE) torch==2.11.0
	$(REPORT_PY) -c 'import torch; print("torch", torch.__version__)'
	touch $@

$(REPORT_VENV)/.onnx-stamp: $(REPORT_VENV)/.torch-stamp
	$(REPORT_VENV)/bin/pip install -q $(REPORT_PIP_CACHE) onnx==1.23.2 onnxscript==0.7.2 onnxruntime==1.32.0
	touch $@

.PHONY: chromium
chromium:
	@command -v chromium >/dev/null || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }

report:
	$(BUILD_ENV) $(CARGO) build $(CARGO_FLAGS) --workspace --bin nago-report
	target/release/nago-report html --run $(RUN)

test-python: test-report-browser test-parquet test-export

# A synthetic study (real proposals and architectures, invented results), its report, Chromium.
REPORT_SHOT ?= $(REPORT_TEST_DIR)/report.png
test-report-browser: chromium
	$(BUILD_ENV) $(CARGO) build $(CARGO_FLAGS) --workspace --bin nago-report --example synthetic_study
	rm -rf $(REPORT_TEST_DIR)/study && mkdir -p $(REPORT_TEST_DIR)
	target/release/examples/synthetic_study $(REPORT_TEST_DIR)/study 24
	target/release/nago-report html --run $(REPORT_TEST_DIR)/study
	$(PYTHON) tests/python/report_browser.py $(REPORT_TEST_DIR)/study/report/index.html --arch 6 --screenshot $(REPORT_SHOT)
	target/release/nago-report html --run $(REPORT_TEST_DIR)/study --no-graphviz --out $(REPORT_TEST_DIR)/study/report/own.html
	$(PYTHON) tests/python/report_browser.py $(REPORT_TEST_DIR)/study/report/own.html --arch 6

report-screenshot:
	$(MAKE) test-report-browser REPORT_SHOT=docs/report.png

# The trainer's network (nago-train's example rust_logits runs nago_train::net::Net) against
# python/nago_export on the exported weights.
test-export: bins data/fashion-mnist $(REPORT_VENV)/.onnx-stamp
	$(BUILD_ENV) $(CARGO) build -q $(CARGO_FLAGS) --workspace --example rust_logits
	rm -rf $(REPORT_TEST_DIR)/export $(REPORT_TEST_DIR)/export-params
	$(REPORT_PY) tests/python/export_params.py --bin target/release --work $(REPORT_TEST_DIR)/export-params --n 60
	LD_LIBRARY_PATH=$$(echo $(CURDIR)/.venv/lib/python3*/site-packages/torch/lib) \
	  $(REPORT_PY) tests/python/export_logits.py --bin target/release --harness target/release/examples/rust_logits --work $(REPORT_TEST_DIR)/export --onnx

# trials.parquet and pareto.parquet of a real (smoke) study, read with pandas, polars and DuckDB.
test-parquet: bins data/fashion-mnist $(REPORT_VENV)/.analysis-stamp
	$(REPORT_PY) tests/python/test_parquet.py --bin target/release --work $(REPORT_TEST_DIR)/parquet
