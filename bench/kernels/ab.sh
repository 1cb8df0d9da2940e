#!/bin/bash
# Interleaved A/B of the kernels (Sources/SegmentKernels) at git revision REV (A) against the working tree (B).
# Usage: bench/kernels/ab.sh [REV]   (default HEAD~1). Prints ab.c's table. Needs clang; x86-64 with AVX-512.
set -euo pipefail
REV=${1:-HEAD~1}
ROOT=$(git rev-parse --show-toplevel)
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
mkdir -p "$OUT/a/include"
for f in $(git -C "$ROOT" ls-tree --name-only -r "$REV" -- Sources/SegmentKernels); do
    mkdir -p "$OUT/a/$(dirname "${f#Sources/SegmentKernels/}")"
    git -C "$ROOT" show "$REV:$f" > "$OUT/a/${f#Sources/SegmentKernels/}"
done
# Every seg_ function of either build gets the build's prefix (a macro for a name a build lacks is harmless).
names=$(cat "$OUT/a/include/segment_kernels.h" "$ROOT/Sources/SegmentKernels/include/segment_kernels.h" |
        grep -oE '\bseg_[a-z0-9_]+\(' | tr -d '(' | sort -u)
build() {   # build PREFIX SRCDIR
    local defs=""
    for n in $names; do defs="$defs -D$n=$1$n"; done
    for c in "$2"/*.c; do
        clang -O3 -c $defs -I"$2/include" -I"$2" "$c" -o "$OUT/$1$(basename "$c" .c).o"
    done
}
build VA_ "$OUT/a"
build VB_ "$ROOT/Sources/SegmentKernels"
clang -O3 "$ROOT/bench/kernels/ab.c" "$OUT"/*.o -o "$OUT/ab" -lm
echo "A = $REV ($(git -C "$ROOT" rev-parse --short "$REV")), B = working tree"
"$OUT/ab"
