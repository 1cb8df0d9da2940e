#!/usr/bin/env bash
# Prints the stats of every target fuzz/run.sh ran (fuzz/work/*/stats.tsv) as one markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "| target | executions | seconds | cov | ft | corpus (units / bytes) | peak RSS MB | findings | exit |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
for f in fuzz/work/*/stats.tsv; do
  [ -e "$f" ] || continue
  tail -n +2 "$f" | while IFS=$'\t' read -r t e s c ft u b r n st; do
    echo "| $t | $e | $s | $c | $ft | $u / $b | $r | $n | $st |"
  done
done
