#!/usr/bin/env bash
# Fuzzes one target:  fuzz/run.sh TARGET SECONDS [more libFuzzer flags]
# Stops after SECONDS or FUZZ_RUNS executions (default 1,000,000), whichever comes first. New inputs go to
# fuzz/work/TARGET/corpus (the committed seeds in fuzz/corpus/TARGET and the crash regressions in
# fuzz/regressions/TARGET are read, never written); crashes, leaks, timeouts and OOMs are written to
# fuzz/work/TARGET/artifacts/. The log is fuzz/work/TARGET/fuzz.log and the final numbers go to
# fuzz/work/TARGET/stats.tsv (fuzz/summary.sh gathers them). Exits non-zero on a finding.
set -uo pipefail
cd "$(dirname "$0")/.."
target=${1:?usage: fuzz/run.sh TARGET SECONDS [libFuzzer flags]}
seconds=${2:?usage: fuzz/run.sh TARGET SECONDS [libFuzzer flags]}
shift 2
bin=${FUZZ_BIN:-.build-fuzz/release/segment-fuzz}
runs=${FUZZ_RUNS:-1000000}
[ -x "$bin" ] || { echo "fuzz/run.sh: $bin is missing; build it with fuzz/build.sh (make fuzz-build)" >&2; exit 2; }
[ -d "fuzz/corpus/$target" ] || { echo "fuzz/run.sh: no seed corpus fuzz/corpus/$target" >&2; exit 2; }
work=fuzz/work/$target
mkdir -p "$work/corpus" "$work/artifacts" "fuzz/regressions/$target"
# Memory and time limits: an input that makes a parser allocate 2 GB or run 10 s is a finding, not a slow input.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=0:handle_abort=1}
start=$(date +%s)
"$bin" "$target" "$work/corpus" "fuzz/corpus/$target" "fuzz/regressions/$target" \
  -max_total_time="$seconds" -runs="$runs" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=2048 \
  -artifact_prefix="$work/artifacts/" -print_final_stats=1 -reload=0 "$@" > "$work/fuzz.log" 2>&1
status=$?
elapsed=$(( $(date +%s) - start ))
# libFuzzer's last status line ("#N DONE cov: C ft: F corp: U/S ..."), or the last one printed before a crash.
last=$(grep -E '^#[0-9]+' "$work/fuzz.log" | tail -1)
execs=$(grep -E '^stat::number_of_executed_units:' "$work/fuzz.log" | awk '{print $2}')
[ -n "$execs" ] || execs=$(sed -E 's/^#([0-9]+).*/\1/' <<<"$last")
field() { grep -oE "$1: [^ ]+" <<<"$last" | awk '{print $2}'; }
findings=$(find "$work/artifacts" -type f | wc -l)
rss=$(grep -E '^stat::peak_rss_mb:' "$work/fuzz.log" | awk '{print $2}')
# libFuzzer's corpus (seeds and regressions included): "units/size".
corpus=$(field corp)
printf 'target\texecs\tseconds\tcov\tft\tcorpus\tpeak_rss_mb\tfindings\tstatus\n' > "$work/stats.tsv"
printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$target" "$execs" "$elapsed" "$(field cov)" "$(field ft)" \
  "${corpus:-?}" "${rss:-?}" "$findings" "$status" >> "$work/stats.tsv"
echo "fuzz $target: $execs executions in ${elapsed}s, cov $(field cov), ft $(field ft), $findings finding(s), exit $status  ($work/fuzz.log)"
if [ "$status" -ne 0 ] || [ "$findings" -ne 0 ]; then
  grep -E '^==[0-9]+==ERROR|^SUMMARY|Fatal error|deadly signal|Test unit written' "$work/fuzz.log" | head -20 >&2
  exit 1
fi
