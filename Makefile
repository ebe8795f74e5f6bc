# Two entry points for a fresh machine (see README): `make demo` and `make test`. Both create
# .venv on first use and reuse it; the extension is rebuilt when its sources change.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH_VERSION := 2.14.1
export CUDA_HOME ?= /usr/local/cuda
# Pull the venv's torch libraries (the CUDA 13.0 build) into the build; a CPU-only torch works too.
DEPS := torch==$(TORCH_VERSION) numpy tqdm pillow matplotlib scikit-learn ninja setuptools wheel \
        pytest pytest-benchmark scipy hypothesis ruff
SOURCES := setup.py pyproject.toml $(shell find csrc kernels -type f 2>/dev/null)

.PHONY: demo test bench check results clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.deps: $(BIN)/python Makefile
	$(BIN)/pip install --quiet $(DEPS)
	touch $@

# --no-build-isolation: compile against the torch installed above, not a fresh one
$(VENV)/.built: $(VENV)/.deps $(SOURCES)
	$(BIN)/pip install --quiet --no-build-isolation --no-deps -e .
	touch $@

demo: $(VENV)/.built
	$(BIN)/gen-ext info
	$(BIN)/gen-ext check
	$(BIN)/gen-ext bench --quick
	$(BIN)/gen-ext train pixelcnn++
	$(BIN)/gen-ext train vae --set likelihood=logistic --out results/train/vae-logistic

test: $(VENV)/.built
	TRITON_INTERPRET=1 $(BIN)/pytest

check: $(VENV)/.built
	$(BIN)/gen-ext check

bench: $(VENV)/.built
	$(BIN)/gen-ext bench

# the README's tables of held-out results: every model at its default settings on the digits, and
# the PixelCNN family on rgb-patches too
results: $(VENV)/.built
	for m in autoencoder conv-autoencoder denoising-autoencoder vae; do $(BIN)/gen-ext train $$m; done
	$(BIN)/gen-ext train vae --set likelihood=logistic --out results/train/vae-logistic
	$(BIN)/gen-ext train vae --set likelihood=bernoulli --out results/train/vae-bernoulli
	for m in pixelcnn gated-pixelcnn pixelcnn++; do \
	  $(BIN)/gen-ext train $$m && \
	  $(BIN)/gen-ext train $$m --data rgb-patches --out results/train/$$m-rgb-patches || exit 1; \
	done
	$(BIN)/python -m gen_ext.results_table results/train

clean:
	rm -rf build build-cmake gen_ext/_C*.so gen_ext/_build_info.py $(VENV)/.built
