#!/usr/bin/env bash
# Builds the libFuzzer driver .build-fuzz/release/segment-fuzz: address sanitizer, libFuzzer's coverage
# instrumentation (edges, comparisons, indirect calls) and libFuzzer's runtime without its main(), since the
# executable's own main chooses the target and calls LLVMFuzzerRunDriver. (swiftc's -sanitize=fuzzer would link
# libFuzzer's main as well.) Kept apart from .build so the normal build is unaffected.
set -euo pipefail
cd "$(dirname "$0")/.."
swiftc=$(command -v swiftc)
toolchain=$(dirname "$(dirname "$(readlink -f "$swiftc")")")
runtime=$(ls "$toolchain"/lib/clang/*/lib/linux/libclang_rt.fuzzer_no_main-x86_64.a 2>/dev/null | head -1 || true)
if [ -z "$runtime" ]; then
  echo "fuzz/build.sh: libFuzzer's runtime (libclang_rt.fuzzer_no_main) is not in the toolchain at $toolchain" >&2
  exit 1
fi
swift build -c release --product segment-fuzz --build-path .build-fuzz \
  -Xswiftc -sanitize=address \
  -Xswiftc -sanitize-coverage=edge,indirect-calls,trace-cmp,inline-8bit-counters,pc-table \
  -Xswiftc -DSEGMENT_FUZZ \
  -Xlinker "$runtime" -Xlinker -lstdc++ "$@"
