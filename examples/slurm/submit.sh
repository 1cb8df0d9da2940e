#!/bin/bash
# Submit a folder to Slurm: an array of N shard tasks, then a merge job that runs only if every task succeeded.
#
#   examples/slurm/submit.sh [-n N] [-c CPUS] CASES MASKS WORKDIR [REFS] [-- segment flags...]
#
# Shard reports go to WORKDIR/reports-JOBID/, logs to WORKDIR/logs/, the merged report to WORKDIR/run-JOBID.json
# (and its scores beside it with REFS). Prints the two job ids ("array JOBID", "merge JOBID") on stdout.
# Resubmitting the same command after a cancelled or failed task redoes only the missing masks (--continue).
# Extra sbatch options (partition, time limit, account) come from the environment: SBATCH_PARTITION,
# SBATCH_TIMELIMIT, SBATCH_ACCOUNT, ... as sbatch reads them. Paths are made absolute: the jobs may start elsewhere.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
usage="usage: $0 [-n N] [-c CPUS] CASES MASKS WORKDIR [REFS] [-- segment flags...]"
n=3 cpus=2
while getopts n:c: opt; do
    case $opt in n) n=$OPTARG ;; c) cpus=$OPTARG ;; *) echo "$usage" >&2; exit 2 ;; esac
done
shift $((OPTIND - 1))
[ $# -ge 3 ] || { echo "$usage" >&2; exit 2; }
abs() { case $1 in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }
cases=$(abs "$1") masks=$(abs "$2") work=$(abs "$3"); shift 3
refs=()
if [ $# -gt 0 ] && [ "$1" != -- ]; then refs=("$(abs "$1")"); shift; fi
[ "${1:-}" = -- ] && shift

mkdir -p "$work/logs"
array=$(sbatch --parsable --array="0-$((n - 1))" --cpus-per-task="$cpus" \
        --output="$work/logs/segment-%A_%a.log" \
        "$here/segment-array.sbatch" "$cases" "$masks" "$work/reports-%A" "$@")
array=${array%%;*}   # --parsable prints "JOBID" or "JOBID;CLUSTER"
echo "array $array"
merge=$(sbatch --parsable --dependency="afterok:$array" --output="$work/logs/segment-merge-%j.log" \
        "$here/segment-merge.sbatch" "$masks" "$work/reports-$array" "$work/run-$array.json" "${refs[@]}")
echo "merge ${merge%%;*}"
