#!/usr/bin/env bash
# Prints the stats of every target fuzz/run.sh ran (fuzz/work/*/stats.tsv) as one markdown table, then a closing
# line counting the targets without a finding ("fuzz: N passed, M failed").
set -euo pipefail
cd "$(dirname "$0")/.."
echo "| target | executions | seconds | cov | ft | corpus (units/size) | peak RSS MB | findings | exit |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
passed=0 failed=0
for f in fuzz/work/*/stats.tsv; do
  [ -e "$f" ] || continue
  while IFS=$'\t' read -r t e s c ft corp r n st; do
    echo "| $t | $e | $s | $c | $ft | $corp | $r | $n | $st |"
    if [ "$n" = 0 ] && [ "$st" = 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
  done < <(tail -n +2 "$f")
done
echo
echo "fuzz: $passed passed, $failed failed"
