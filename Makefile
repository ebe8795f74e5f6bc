# Two entry points for a fresh machine (see README): `make demo` and `make test`. Both create
# .venv on first use and reuse it; the extension is rebuilt when its sources change. Every stage
# prints a line saying what it does and about how long it takes, then how long it took.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH_VERSION := 2.14.1
DEPS := torch==$(TORCH_VERSION) numpy tqdm pillow matplotlib scikit-learn ninja setuptools wheel \
        pytest pytest-benchmark scipy hypothesis ruff
SOURCES := setup.py build_config.py pyproject.toml $(shell find csrc kernels -type f 2>/dev/null)
# The demo trains PixelCNN++ for fewer epochs than its default 30 (about 2.5 s an epoch on a quiet
# 2-core CPU) so that a fresh clone finishes in about 10 minutes; samples are recognisable digits
# by then. `make results` (or `gen-ext train pixelcnn++`) runs the full 30.
DEMO_PIXELCNNPP_EPOCHS ?= 10
DEMO_VAE_EPOCHS ?= 100
# DCGAN's default is 100 epochs (about 2 minutes); at 40 its samples already cover all 10 digits
DEMO_DCGAN_EPOCHS ?= 40
# Training threads: the cores left idle by other work, at least 1, from the processor's busy time
# over the second before training starts (/proc/stat). Not the 1-minute load average, which still
# counts the demo's own build for a minute after it ends. Each step of a small model passes
# thousands of OpenMP barriers, and with other work on the cores one descheduled thread stalls
# the rest at each: under a load of 20 on the 2-core development machine a PixelCNN++ step took
# 6 s with one thread and over 60 s with two.
TRAIN_THREADS = $(shell { head -1 /proc/stat; sleep 1; head -1 /proc/stat; } 2>/dev/null | awk \
  -v cores=$$(nproc) '{ idle = $$5 + $$6; total = 0; for (i = 2; i <= NF; i++) total += $$i } \
  NR == 1 { idle0 = idle; total0 = total } NR == 2 && total > total0 { \
  n = cores - int(cores * (1 - (idle - idle0) / (total - total0)) + 0.5); print (n < 1) ? 1 : n }' \
  | grep . || nproc)
# The benchmark cases the demo runs (the full set is `make bench`): compiling the references with
# torch.compile is most of its time.
DEMO_BENCH_OPS ?= discretized_logistic_mixture_nll masked_conv2d\ 3x3\ B

# `$(STAGE) "what, about how long" command...`: announces a stage, runs it, then says how long it
# took, the processor time it used (which other work on the machine does not inflate) and the
# 1-minute load average (the estimates are for a quiet machine).
STAGE := @stage() { echo "== $$1"; shift; s=$$(date +%s); "$$@" || exit $$?; t=$$(mktemp); \
  times > "$$t"; echo "   took $$(( $$(date +%s) - s )) s, $$(awk 'END { split($$1, u, /[ms]/); \
  split($$2, k, /[ms]/); printf "%.0f", u[1] * 60 + u[2] + k[1] * 60 + k[2] }' "$$t") s of CPU \
  time (load average now $$(cut -d' ' -f1 /proc/loadavg 2>/dev/null))"; rm -f "$$t"; }; stage

.PHONY: demo test bench check results clean

$(BIN)/python:
	$(STAGE) "create $(VENV) (a few seconds)" $(PYTHON) -m venv $(VENV)

$(VENV)/.deps: $(BIN)/python Makefile
	$(STAGE) "install torch $(TORCH_VERSION), numpy, matplotlib, scikit-learn, pytest and the rest into \
$(VENV) (about 2-3 min from a local wheel cache, longer when downloading torch's CUDA libraries)" \
	  $(BIN)/pip install --quiet $(DEPS)
	@touch $@

# build_config.py prints what the build compiles (CUDA only with a GPU or GEN_EXT_CUDA=1) and about
# how long it takes; --no-build-isolation: compile against the torch installed above
$(VENV)/.built: $(VENV)/.deps $(SOURCES)
	@$(BIN)/python build_config.py
	$(STAGE) "build gen_ext._C as planned above (pip install --no-build-isolation -e .)" \
	  $(BIN)/pip install --quiet --no-build-isolation --no-deps -e .
	@touch $@

demo: $(VENV)/.built
	$(STAGE) "gen-ext info: versions and what was compiled (a few seconds)" $(BIN)/gen-ext info
	$(STAGE) "gen-ext check: every kernel against its reference (about 15 s)" $(BIN)/gen-ext check
	$(STAGE) "gen-ext bench --quick for two ops, fused against eager and compiled reference \
(about 30 s; make bench runs all)" $(BIN)/gen-ext bench --quick --ops $(DEMO_BENCH_OPS)
	$(STAGE) "train PixelCNN++ on the digits for $(DEMO_PIXELCNNPP_EPOCHS) epochs (its default is \
30), then 64 samples, with OMP_NUM_THREADS=$(TRAIN_THREADS) (about 90 s on one thread)" \
	  env OMP_NUM_THREADS=$(TRAIN_THREADS) $(BIN)/gen-ext train pixelcnn++ \
	  --epochs $(DEMO_PIXELCNNPP_EPOCHS) --overwrite
	$(STAGE) "train a VAE with a discretized logistic likelihood for $(DEMO_VAE_EPOCHS) epochs with \
OMP_NUM_THREADS=$(TRAIN_THREADS) (about 35 s)" env OMP_NUM_THREADS=$(TRAIN_THREADS) $(BIN)/gen-ext train \
	  vae --set likelihood=logistic --epochs $(DEMO_VAE_EPOCHS) --out results/train/vae-logistic --overwrite
	$(STAGE) "train a DCGAN for $(DEMO_DCGAN_EPOCHS) epochs (its default is 100), its samples scored \
against the held-out digits after every epoch, with OMP_NUM_THREADS=$(TRAIN_THREADS) (about 50 s)" \
	  env OMP_NUM_THREADS=$(TRAIN_THREADS) $(BIN)/gen-ext train dcgan --epochs $(DEMO_DCGAN_EPOCHS) \
	  --overwrite
	@echo "== demo done: results/train/pixelcnn++/samples.png, results/train/vae-logistic/samples.png,\
 results/train/dcgan/samples.png and loss_curve.png, results/bench/bench.png"

test: $(VENV)/.built
	$(STAGE) "pytest with Triton interpreted (about 5.5 min on a quiet 2-core CPU)" \
	  env TRITON_INTERPRET=1 $(BIN)/pytest

check: $(VENV)/.built
	$(BIN)/gen-ext check

bench: $(VENV)/.built
	$(BIN)/gen-ext bench

# the README's tables of held-out results: every model at its default settings on the digits, and
# the PixelCNN family and PixelRNN on rgb-patches too, WaveNet on its synthetic sound, the GAN
# family on the digits (each run replaces the previous one's folder; the last table is every
# digit model's sample quality)
RUN := $(BIN)/gen-ext train --overwrite
results: $(VENV)/.built
	for m in autoencoder conv-autoencoder denoising-autoencoder vae; do $(RUN) $$m || exit 1; done
	$(RUN) vae --set likelihood=logistic --out results/train/vae-logistic
	$(RUN) vae --set likelihood=bernoulli --out results/train/vae-bernoulli
	for m in pixelcnn gated-pixelcnn pixelcnn++ pixelrnn; do \
	  $(RUN) $$m && $(RUN) $$m --data rgb-patches --out results/train/$$m-rgb-patches || exit 1; \
	done
	$(RUN) wavenet
	for m in gan dcgan wgan wgan-gp began infogan ebm; do $(RUN) $$m || exit 1; done
	$(RUN) began --early-stop 10 --out results/train/began-early-stop
	$(BIN)/python -m gen_ext.results_table results/train docs/digit_samples.png

clean:
	rm -rf build build-cmake gen_ext/_C*.so gen_ext/_build_info.py $(VENV)/.built
