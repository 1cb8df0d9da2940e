# segment: every task a developer or CI runs. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV     ?= .venv
PY       := $(VENV)/bin/python
FIXTURES ?= .fixtures
DATA     ?= $(HOME)/.cache/segment-data
BIN      := .build/release/segment
SWIFT_TEST := swift test -c release -Xswiftc -enable-testing
# libnifti2-dev brings nifti2_io.h in /usr/include/nifti (through libniftiio-dev; Package.swift adds that folder);
# cblas.h lands in a multiarch folder (/usr/include/<triplet>/), so sys-deps asks dpkg what is installed instead of
# looking for headers.
# dcmtk (dcmcjpls, dcmcrle, dcmcjpeg, dcmconv: the DICOM fixtures' codecs), dicom3tools (dciodvfy validates every SEG
# written), dcm2niix (the reference reader of the DICOM tests), orthanc (the PACS of test_orthanc.py), curl (its
# example script, examples/pacs/orthanc-segment.sh) and chromium (the browser that loads the HTML reports in
# trainer/tests/test_html_report.py) serve the tests and benchmarks only.
APT_PKGS := libopenblas-dev libpng-dev libnifti2-dev python3-venv libjpeg62-turbo-dev libdcmtk-dev \
            dcmtk dicom3tools dcm2niix orthanc curl chromium
export SEGMENT_FIXTURES := $(abspath $(FIXTURES))
export SEGMENT_PYTHON   := $(abspath $(PY))
export SEGMENT_DATA     := $(DATA)

.PHONY: help setup sys-deps build test test-swift test-python fixtures data weights bench engine-ab kernel-bench batch1-bench html-screenshot demo clean

help:
	@echo "make demo     segment the example liver CT with the shipped default model (installs what it needs)"
	@echo "make test     the whole test suite (installs what it needs)"
	@echo "make setup    Debian packages + the Python env ($(VENV)) for trainer/, fixtures and benchmarks (PyTorch...)"
	@echo "make build    release build of the segment executable ($(BIN))"
	@echo "make data     fetch the real data of docs/DATA.md into $(DATA)"
	@echo "make install  PREFIX=/usr/local: executable, default model, man pages, docs, examples (make uninstall)"
	@echo "make weights  train the shipped default model with AdvMIM (about an hour on 2 cores)"
	@echo "make bench    engine vs PyTorch / ONNX Runtime / OpenVINO, scoring vs medpy -> docs/PERFORMANCE.md"
	@echo "make engine-ab AB_REV=REV | AB_FLAGS=FLAGS  the engine against another build of it, in lockstep"
	@echo "make kernel-bench  the C kernels alone: FMA and bf16 peaks, GEMM shapes, one Swin block per stage (fp32; fp32 vs bf16)"
	@echo "make batch1-bench  the engine at batch 1: window vs column split, per-stage 1- vs 2-thread scaling"
	@echo "make html-screenshot  docs/html-score-report.png from segment score --html in headless Chromium"
	@echo "make fuzz     fuzz every parser FUZZ_SECONDS (1800) each or 1,000,000 runs (sanitizer build); make fuzz-smoke: 20 s each"

# Debian packages, installed only when dpkg says one is missing (CI runs as root; elsewhere sudo is used).
sys-deps:
	@command -v dpkg-query >/dev/null || { echo "sys-deps: no dpkg here; install OpenBLAS, libpng, libnifti2, libjpeg-turbo, DCMTK (headers), python3-venv, and for the tests dcmtk, dicom3tools, dcm2niix, Orthanc and curl yourself"; exit 0; }; \
	missing=$$(for p in $(APT_PKGS); do dpkg-query -W -f='$${db:Status-Status}\n' $$p 2>/dev/null | grep -qx installed || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  SUDO=$$( [ $$(id -u) = 0 ] || echo sudo ); \
	  echo "installing" $$missing; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

# Two Python stamps in one venv: make data (and so make demo) needs only the few packages of
# trainer/requirements-data.txt; the trainer, the fixtures, the tests and the benchmarks need trainer/requirements.txt
# (PyTorch, ONNX Runtime, OpenVINO, ...), which includes the data list.
$(VENV)/.stamp-data: trainer/requirements-data.txt | sys-deps
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q -r trainer/requirements-data.txt
	@touch $@

$(VENV)/.stamp: trainer/requirements.txt trainer/requirements-data.txt | sys-deps
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q -r trainer/requirements.txt
	@touch $@ $(VENV)/.stamp-data

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
# `swift test` built when it ran first, else a release build. test_examples.py, test_install.py (make install into a
# temporary PREFIX) and test_slurm.py (a one-node Slurm, root only: about a minute) run examples/ with it too;
# test_dicom*.py check it against dcm2niix, dciodvfy and highdicom, and test_orthanc.py starts a private Orthanc.
# -rs prints why a test was skipped.
test-python: setup data fixtures | $(BIN)
	cd trainer && SEGMENT_BIN=$(abspath $(BIN)) ../$(PY) -m pytest -q -rs

$(BIN): | sys-deps
	swift build -c release

test: test-swift test-python fuzz-replay

data: $(VENV)/.stamp-data
	@apt-cache show mricron-data >/dev/null 2>&1 || { SUDO=$$( [ $$(id -u) = 0 ] || echo sudo ); $$SUDO apt-get update -qq; }
	PYTHONPATH=trainer $(PY) -m segment_data.fetch --cache $(DATA)

weights: setup build data
	PYTHONPATH=trainer $(PY) -m segment_train.weights --cache $(DATA) --segment $(BIN)
	PYTHONPATH=trainer $(PY) -m segment_train.heldout --cache $(DATA) --segment $(BIN) --model models/swin-unet-lits-advmim.segm --out out/heldout/advmim

# The benchmark: each script prints a markdown section; together they are docs/PERFORMANCE.md.
bench: setup build data
	@mkdir -p bench-out
	PYTHONPATH=trainer $(PY) bench/engine_bench.py --segment $(BIN) > bench-out/engine.md
	PYTHONPATH=trainer $(PY) bench/score_bench.py --segment $(BIN) > bench-out/score.md
	PYTHONPATH=trainer $(PY) bench/run_memory.py --segment $(BIN) > bench-out/run.md
	PYTHONPATH=trainer $(PY) bench/isolation.py --segment $(BIN) > bench-out/isolation.md
	PYTHONPATH=trainer $(PY) bench/dicom_bench.py --segment $(BIN) > bench-out/dicom.md
	{ echo "# Performance"; echo; echo "Made by \`make bench\` on $$(date -u +%Y-%m-%d) ($$(nproc) cores, $$(uname -m))."; echo; \
	  cat bench-out/engine.md; echo; cat bench-out/score.md; echo; cat bench-out/run.md; echo; cat bench-out/isolation.md; \
	  echo; cat bench-out/dicom.md; } > docs/PERFORMANCE.md

# The engine alone, A against B in lockstep (bench/engine_ab.py): B is the working tree, A a git revision
# (AB_REV=main~3) or the working tree built with other swiftc flags (AB_FLAGS=-Ounchecked).
AB_REV   ?=
AB_FLAGS ?=
engine-ab: setup build
	PYTHONPATH=trainer $(PY) bench/engine_ab.py $(if $(AB_REV),--rev $(AB_REV),--flags="$(AB_FLAGS)")

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
	for p in peak peak_bf16 gemm_shapes block block_bf16; do \
	  clang -O3 -I$(KERNELS)/include -I$(KERNELS) bench/kernels/$$p.c $(KERNELS)/*.c -o bench-out/kernels/$$p -lm || exit 1; done
	bench-out/kernels/peak
	bench-out/kernels/gemm_shapes
	bench-out/kernels/peak_bf16
	for s in 0 1 2 3; do bench-out/kernels/block $$s; done
	for s in 0 1 2 3; do bench-out/kernels/block_bf16 $$s; done

# The screenshot of the HTML score report in docs/ (docs/make_html_screenshot.py; headless Chromium).
html-screenshot: setup build
	$(PY) docs/make_html_screenshot.py $(abspath $(BIN)) docs

demo: build data
	@mkdir -p out
	$(BIN) $(DATA)/examples/liver-117.nii.gz -o out/liver-117_mask.nii.gz --report out/run.json --overwrite

clean:
	rm -rf .build $(FIXTURES) out

# ---- Fuzzing (fuzz/README.md, docs/RELIABILITY.md "Fuzzing") ----
# One libFuzzer target per parser, built with the address sanitizer into .build-fuzz by fuzz/build.sh. `fuzz` runs
# each for FUZZ_SECONDS or FUZZ_RUNS executions, whichever comes first, and prints the table of results;
# `fuzz-smoke` is the short run CI does; `fuzz-replay` runs the committed seeds and crash regressions once through a
# normal build (part of `make test`); `fuzz-seeds` rewrites the seed corpora.
FUZZ_TARGETS       := nifti nifti-gz png model pickle zip safetensors labels dicom
FUZZ_SECONDS       ?= 1800
FUZZ_RUNS          ?= 1000000
FUZZ_SMOKE_SECONDS ?= 20
FUZZ_REPLAY_BIN    := .build/release/segment-fuzz

.PHONY: fuzz fuzz-build fuzz-smoke fuzz-replay fuzz-seeds

fuzz-build: sys-deps
	fuzz/build.sh

fuzz: fuzz-build
	@fail=0; for t in $(FUZZ_TARGETS); do FUZZ_RUNS=$(FUZZ_RUNS) fuzz/run.sh $$t $(FUZZ_SECONDS) || fail=1; done; \
	  fuzz/summary.sh | tee fuzz/work/summary.md; exit $$fail

fuzz-smoke: fuzz-build
	@fail=0; for t in $(FUZZ_TARGETS); do FUZZ_RUNS=$(FUZZ_RUNS) fuzz/run.sh $$t $(FUZZ_SMOKE_SECONDS) || fail=1; done; \
	  fuzz/summary.sh; exit $$fail

# The same flags as test-swift, so after `swift test` this only links what is already built.
fuzz-replay: sys-deps
	swift build -c release -Xswiftc -enable-testing --product segment-fuzz
	@for t in $(FUZZ_TARGETS); do \
	  $(FUZZ_REPLAY_BIN) replay $$t fuzz/corpus/$$t $$( [ -d fuzz/regressions/$$t ] && echo fuzz/regressions/$$t ) || exit 1; done

fuzz-seeds: setup
	PYTHONPATH=trainer $(PY) fuzz/make_seeds.py
# ---- end of fuzzing ----

# ---- install -----------------------------------------------------------------------------------------------------
# make install PREFIX=/usr/local (DESTDIR for packagers): the executable, the default model in share/segment/models
# (found there without --model: docs/RUN.md, "The model"), man pages for segment and its subcommands, the docs and the
# examples. make uninstall removes exactly those files and the folders that are segment's own.
# The executable is the release build: it loads the Swift runtime of the toolchain that built it (its RUNPATH);
# STATIC=1 links the runtime in instead (a separate full build in .build-static, about 80 MB) for a machine
# without Swift.
PREFIX  ?= /usr/local
DESTDIR ?=
STATIC  ?=
ROOT     = $(DESTDIR)$(PREFIX)
MAN_DIR  := .build/man
MAN_TOOL := .build/debug/generate-manual
INSTALL_BIN = $(if $(STATIC),.build-static/release/segment,$(BIN))

.PHONY: man install uninstall static-bin

# Man pages: swift-argument-parser's generate-manual, the tool its generate-manual plugin runs, run here directly on
# the executable. The plugin (`swift package plugin generate-manual --multi-page`, offline, same pages) first builds
# the whole package in its own release configuration: after make test's -enable-testing build that is a second full
# build. The pages are dated by the last commit, so the same tree gives the same pages.
$(MAN_TOOL): | sys-deps
	swift build --product generate-manual

man: $(MAN_TOOL) $(if $(STATIC),static-bin,$(BIN))
	rm -rf $(MAN_DIR) && mkdir -p $(MAN_DIR)
	$(MAN_TOOL) $(INSTALL_BIN) --multi-page --date $$(git log -1 --format=%cs 2>/dev/null || date -u +%F) -o $(MAN_DIR)

static-bin: | sys-deps
	swift build -c release --static-swift-stdlib --product segment --scratch-path .build-static

install: man
	install -d "$(ROOT)"/bin "$(ROOT)"/share/segment/models "$(ROOT)"/share/man/man1 \
	  "$(ROOT)"/share/doc/segment/docs "$(ROOT)"/share/doc/segment/examples/slurm \
	  "$(ROOT)"/share/doc/segment/examples/pacs
	install -m 755 $(INSTALL_BIN) "$(ROOT)"/bin/segment
	install -m 644 models/swin-unet-lits-advmim.segm models/swin-unet-lits-advmim.md "$(ROOT)"/share/segment/models/
	install -m 644 $(MAN_DIR)/segment*.1 "$(ROOT)"/share/man/man1/
	install -m 644 README.md "$(ROOT)"/share/doc/segment/
	install -m 644 docs/*.md "$(ROOT)"/share/doc/segment/docs/
	install -m 644 examples/*.md "$(ROOT)"/share/doc/segment/examples/
	install -m 755 examples/*.sh "$(ROOT)"/share/doc/segment/examples/
	install -m 644 examples/slurm/*.md "$(ROOT)"/share/doc/segment/examples/slurm/
	install -m 755 examples/slurm/*.sh examples/slurm/*.sbatch "$(ROOT)"/share/doc/segment/examples/slurm/
	install -m 755 examples/pacs/*.sh "$(ROOT)"/share/doc/segment/examples/pacs/

# Man pages go by the names segment's subcommands give them (segment.1, segment.run.1, ...), so uninstalling needs no
# build. share/segment and share/doc/segment are segment's own; the shared folders (bin, share/man/man1, ...) are
# removed only when empty, and PREFIX itself stays.
uninstall:
	rm -f "$(ROOT)"/bin/segment "$(ROOT)"/share/man/man1/segment.1 "$(ROOT)"/share/man/man1/segment.*.1
	rm -rf "$(ROOT)"/share/segment "$(ROOT)"/share/doc/segment
	for d in bin share/man/man1 share/man share/doc share; do rmdir "$(ROOT)"/$$d 2>/dev/null || true; done
