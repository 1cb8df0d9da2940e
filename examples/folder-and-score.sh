#!/usr/bin/env bash
# A folder of scans, then scoring against reference masks: masks in OUT/masks, the run report OUT/run.json, the
# scores OUT/scores.json (nnU-Net's summary.json layout) and OUT/scores.csv (one row per case and label).
#
#   examples/folder-and-score.sh CASES REFS OUT [segment flags...]
#
# References are matched by case name (CASE.nii.gz, CASE.nii, CASE.png or CASE_segmentation.png in REFS; see
# docs/SCORING.md). Runs with --continue: after an interruption, the same command finishes the folder.
# SEGMENT names the executable (default: segment on PATH).
set -euo pipefail
usage="usage: $0 CASES REFS OUT [segment flags...]"
cases=${1:?$usage}
refs=${2:?$usage}
out=${3:?$usage}
shift 3
segment=${SEGMENT:-segment}

# A folder run exits 6 when some cases failed: score what was made, then report the failure.
status=0
"$segment" "$cases" -o "$out/masks" --report "$out/run.json" --continue "$@" || status=$?
if [ "$status" != 0 ] && [ "$status" != 6 ]; then exit "$status"; fi

# score prints the per-label means on stdout; its exit code is segment's table's too.
"$segment" score --pred "$out/masks" --ref "$refs" --json "$out/scores.json" --csv "$out/scores.csv"
exit "$status"
