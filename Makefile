# segment: every task a developer or CI runs. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV     ?= .venv
PY       := $(VENV)/bin/python
FIXTURES ?= .fixtures
DATA     ?= $(HOME)/.cache/segment-data
BIN      := .build/release/segment
SWIFT_TEST := swift test -c release -Xswiftc -enable-testing
APT_PKGS := libopenblas-dev libpng-dev libnifti-dev libjpeg62-turbo-dev
export SEGMENT_FIXTURES := $(abspath $(FIXTURES))
export SEGMENT_PYTHON   := $(abspath $(PY))
export SEGMENT_DATA     := $(DATA)

.PHONY: help setup sys-deps build test test-swift test-python fixtures data weights bench kernel-bench batch1-bench demo clean

help:
	@echo "make demo     segment the example liver CT with the shipped default model (installs what it needs)"
	@echo "make test     the whole test suite (installs what it needs)"
	@echo "make setup    Debian packages + the Python env ($(VENV)) for trainer/, fixtures and benchmarks"
	@echo "make build    release build of the segment executable ($(BIN))"
	@echo "make data     fetch the real data of docs/DATA.md into $(DATA)"
	@echo "make weights  train the shipped default model with AdvMIM (about an hour on 2 cores)"
	@echo "make bench    engine vs PyTorch / ONNX Runtime / OpenVINO, scoring vs medpy -> docs/PERFORMANCE.md"
	@echo "make kernel-bench  the C kernels alone: FMA peak, GEMM shapes, one Swin block per stage"
	@echo "make batch1-bench  the engine at batch 1: window vs column split, per-stage 1- vs 2-thread scaling"

# Debian packages, installed only when a header is missing (CI runs as root; elsewhere sudo is used).
sys-deps:
	@if [ ! -e /usr/include/x86_64-linux-gnu/cblas.h ] && [ ! -e /usr/include/cblas.h ] || \
	    [ ! -e /usr/include/png.h ] || [ ! -e /usr/include/nifti/nifti2_io.h ] || [ ! -e /usr/include/jpeglib.h ]; then \
	  SUDO=$$( [ $$(id -u) = 0 ] || echo sudo ); \
	  echo "installing $(APT_PKGS)"; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(APT_PKGS) >/dev/null; \
	fi

$(VENV)/.stamp: trainer/requirements.txt
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q -r trainer/requirements.txt
	@touch $@

setup: sys-deps $(VENV)/.stamp

build: sys-deps
	swift build -c release

# Reference fixtures (PyTorch checkpoints, activations, nibabel/scipy/medpy answers), made by trainer/fixtures/gen_*.py.
$(FIXTURES)/.stamp: $(VENV)/.stamp $(wildcard trainer/fixtures/*.py) $(wildcard trainer/segment_*/*.py)
	@mkdir -p $(FIXTURES)
	@set -e; shopt -s nullglob; for g in trainer/fixtures/gen_*.py; do echo "fixtures: $$g"; PYTHONPATH=trainer $(PY) $$g $(FIXTURES); done
	@touch $@

fixtures: $(FIXTURES)/.stamp

test-swift: sys-deps fixtures
	$(SWIFT_TEST)

# trainer/tests/test_hostile.py runs the hostile corpus (.fixtures/hostile, gen_hostile.py) against $(BIN): the one
# `swift test` built when it ran first, else a release build.
test-python: setup fixtures | $(BIN)
	cd trainer && SEGMENT_BIN=$(abspath $(BIN)) ../$(PY) -m pytest -q

$(BIN): | sys-deps
	swift build -c release

test: test-swift test-python

data: setup
	@apt-cache show mricron-data >/dev/null 2>&1 || { SUDO=$$( [ $$(id -u) = 0 ] || echo sudo ); $$SUDO apt-get update -qq; }
	PYTHONPATH=trainer $(PY) -m segment_data.fetch --cache $(DATA)

weights: setup build data
	PYTHONPATH=trainer $(PY) -m segment_train.weights --cache $(DATA) --segment $(BIN)
	PYTHONPATH=trainer $(PY) -m segment_train.heldout --cache $(DATA) --segment $(BIN) --model models/swin-unet-lits-advmim.segm --out out/heldout/advmim

# The benchmark: each script prints a markdown section; together they are docs/PERFORMANCE.md.
bench: setup build
	@mkdir -p bench-out
	PYTHONPATH=trainer $(PY) bench/engine_bench.py --segment $(BIN) > bench-out/engine.md
	PYTHONPATH=trainer $(PY) bench/score_bench.py --segment $(BIN) > bench-out/score.md
	PYTHONPATH=trainer $(PY) bench/run_memory.py --segment $(BIN) > bench-out/run.md
	PYTHONPATH=trainer $(PY) bench/isolation.py --segment $(BIN) > bench-out/isolation.md
	{ echo "# Performance"; echo; echo "Made by \`make bench\` on $$(date -u +%Y-%m-%d) ($$(nproc) cores, $$(uname -m))."; echo; \
	  cat bench-out/engine.md; echo; cat bench-out/score.md; echo; cat bench-out/run.md; echo; cat bench-out/isolation.md; } > docs/PERFORMANCE.md

# The kernels alone (C drivers in bench/kernels, built with the toolchain's clang against Sources/SegmentKernels):
# the core's FMA peak, the GEMM on the model's shapes, one Swin block per stage timed operator by operator.
# bench/kernels/ab.sh REV compares the kernels at a git revision with the working tree, interleaved.
KERNELS := Sources/SegmentKernels
# The engine at batch 1, alternating configurations in one process (Tests/SegmentEngineTests/BatchOneBenchTests.swift).
batch1-bench: build
	@mkdir -p bench-out
	$(BIN:segment=segment-bench) make-model --out bench-out/swint.segm
	SEG_BENCH_MODEL=$(CURDIR)/bench-out/swint.segm $(SWIFT_TEST) --filter BatchOneBenchTests

kernel-bench:
	@mkdir -p bench-out/kernels
	for p in peak gemm_shapes block; do \
	  clang -O3 -I$(KERNELS)/include -I$(KERNELS) bench/kernels/$$p.c $(KERNELS)/*.c -o bench-out/kernels/$$p -lm || exit 1; done
	bench-out/kernels/peak
	bench-out/kernels/gemm_shapes
	for s in 0 1 2 3; do bench-out/kernels/block $$s; done

demo: setup build data
	@mkdir -p out
	$(BIN) $(DATA)/examples/liver-117.nii.gz -o out/liver-117_mask.nii.gz --report out/run.json --overwrite

clean:
	rm -rf .build $(FIXTURES) out
