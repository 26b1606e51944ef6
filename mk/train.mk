# nago-train: the Python environment that carries libtorch, the dataset, the trainer bench.
#
# libtorch comes from the PyPI wheel of torch 2.11.0 (the version the lent GPU machines carry).
# On a machine without a GPU the environment stays lean: torch without its CUDA dependencies,
# except the two small libraries libtorch_cpu.so itself needs (cudart, cupti); the Rust build
# links libtorch from it and never imports torch. The PyTorch-eager baseline of
# `make bench-train` needs `import torch`, hence a full wheel: it uses python/.venv.

TORCH_VERSION := 2.11.0
TRAIN_VENV := .venv
# A machine with an NVIDIA driver gets the full torch wheel (CUDA libraries included).
TRAIN_GPU := $(shell command -v nvidia-smi 2>/dev/null)
TRAIN_PIP_CACHE := $(if $(wildcard /tmp/pipcache),--find-links /tmp/pipcache,)

$(TRAIN_VENV)/.torch-stamp:
	$(PYTHON) -m venv $(TRAIN_VENV)
	$(TRAIN_VENV)/bin/pip install -q $(TRAIN_PIP_CACHE) --no-deps torch==$(TORCH_VERSION) nvidia-cuda-runtime nvidia-cuda-cupti
	@# With a GPU: torch's CUDA libraries too, so the build keeps libtorch_cuda linked.
	$(if $(TRAIN_GPU),$(TRAIN_VENV)/bin/pip install -q $(TRAIN_PIP_CACHE) torch==$(TORCH_VERSION))
	ls $(TRAIN_VENV)/lib/python3*/site-packages/torch/lib/libtorch_cpu.so
	touch $@

TEST_DEPS += $(TRAIN_VENV)/.torch-stamp
# torch-sys takes libtorch from the wheel's directory (LIBTORCH; `import torch` needs CUDA
# libraries the lean environment lacks, so LIBTORCH_USE_PYTORCH is not used). The trainer's
# build script records the library directory as an rpath, so the binaries run as they are.
TRAIN_LIBTORCH = $$(echo $(CURDIR)/$(TRAIN_VENV)/lib/python3*/site-packages/torch)
BUILD_ENV += LIBTORCH=$(TRAIN_LIBTORCH)

# Fashion-MNIST from Debian's dataset-fashion-mnist package (no root: apt-get download +
# dpkg -x), verified against the upstream sha256 sums. Fallback on machines without apt: put
# the four upstream .gz files (github.com/zalandoresearch/fashion-mnist, data/fashion) into
# data/fashion-mnist/ by hand; the same sums are checked.
FMNIST_DIR := data/fashion-mnist
FMNIST_SUMS := crates/nago-train/data/fashion-mnist.sha256
$(FMNIST_DIR)/.stamp: $(FMNIST_SUMS)
	mkdir -p $(FMNIST_DIR) data/cache
	@if ! ls $(FMNIST_DIR)/train-images-idx3-ubyte.gz >/dev/null 2>&1; then \
	  (cd data/cache && rm -f dataset-fashion-mnist_*.deb && apt-get download dataset-fashion-mnist) && \
	  rm -rf data/cache/fmnist-deb && dpkg -x data/cache/dataset-fashion-mnist_*.deb data/cache/fmnist-deb && \
	  cp data/cache/fmnist-deb/usr/share/datasets/fashion-mnist/*.gz $(FMNIST_DIR)/ ; \
	fi
	cd $(FMNIST_DIR) && sha256sum -c $(CURDIR)/$(FMNIST_SUMS)
	touch $@

.PHONY: data/fashion-mnist bench-train
data/fashion-mnist: $(FMNIST_DIR)/.stamp
SEARCH_DEPS += $(FMNIST_DIR)/.stamp
# The trainer tests learn on a Fashion-MNIST subset.
TEST_DEPS += $(FMNIST_DIR)/.stamp

# nago-train against PyTorch eager: same torch, threads, batch size, data in memory and
# training step, for three generated architectures. `import torch` needs torch's CUDA
# dependencies even on a CPU, so the Python baseline runs in the full-torch environment that
# the export test uses (python/.venv, ~4 GB; rule in mk/report.mk) and its network is
# python/nago_export's; the lean .venv stays what the build links against.
# Last line: `train: <ratio>x PyTorch eager` (geometric mean).
BENCH_TORCH_VENV := python/.venv
BENCH_TRAIN_THREADS ?= 2

bench-train: $(TRAIN_VENV)/.torch-stamp $(BENCH_TORCH_VENV)/.torch-stamp $(FMNIST_DIR)/.stamp
	@$(BUILD_ENV) $(CARGO) build -q $(CARGO_FLAGS) --workspace --example bench_train
	@BENCH_TRAIN_THREADS=$(BENCH_TRAIN_THREADS) PYTHON=$(BENCH_TORCH_VENV)/bin/python bash crates/nago-train/bench/bench_train.sh
