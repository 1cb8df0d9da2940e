#!/usr/bin/env bash
# Template for a hospital (PACS) script: segment every scan of an incoming folder, handle each of segment's exit
# codes (README, "Exit codes"), retry a partly failed folder once with --continue, and check the run report before
# telling the next step that the masks are there. Copy it and replace the notify function.
#
#   examples/hospital.sh INCOMING MASKS REPORT [segment flags...]
#
# Exit codes of this script: 0 every scan has its mask (REPORT says so); 6 some scans failed twice (REPORT names them,
# their masks are missing, the next run with the same command retries only those); 1 to 5 as segment's own table:
# nothing to retry until someone acts. SEGMENT names the executable (default: segment on PATH).
set -uo pipefail
usage="usage: $0 INCOMING MASKS REPORT [segment flags...]"
incoming=${1:?$usage}
masks=${2:?$usage}
report=${3:?$usage}
shift 3
segment=${SEGMENT:-segment}

# Replace with the site's alerting (mail, a ticket, the PACS worklist). Messages go to stderr for the scheduler's log.
notify() { echo "hospital.sh: $*" >&2; }

run() {
    # --continue: masks already written (by an earlier, interrupted or partly failed run) are kept, not redone.
    # --quiet: only failed cases print their status line, which names the case, the exit code and the reason.
    "$segment" "$incoming" -o "$masks" --continue --quiet --report "$report" "$@"
}

run "$@"; code=$?
if [ "$code" = 6 ]; then
    # Some cases failed (a damaged file, a crashed worker): their masks are absent, so a second run retries only them.
    notify "some scans failed; retrying them once"
    run "$@"; code=$?
fi

case $code in
    0) ;;
    6) notify "scans still failing after a retry, see $report (cases with \"status\": \"failed\")"; exit 6 ;;
    2) notify "usage error: this script's flags are wrong (fix the script)"; exit 2 ;;
    3) notify "invalid input: $incoming is missing, empty, or holds no readable scan"; exit 3 ;;
    4) notify "the model file is missing or damaged (reinstall segment or fix --model)"; exit 4 ;;
    5) notify "cannot write to $masks or $report (disk full? permissions?); rerun when fixed, finished masks are kept"; exit 5 ;;
    1) notify "internal error in segment: report it with the command line"; exit 1 ;;
    *) notify "segment ended with unexpected status $code (killed?); rerun the same command to resume"; exit "$code" ;;
esac

# Exit 0 alone is not the end of the check: the report must account for every scan of the folder, each with its mask.
python3 - "$report" <<'PY' || { notify "the run report $report does not account for every scan"; exit 1; }
import json, os, sys
r = json.load(open(sys.argv[1]))
s = r["summary"]
assert r["exit_code"] == 0, f"report exit_code {r['exit_code']}"
assert s["failed"] == 0 and s["cases"] == s["discovered"] == s["ok"] + s["skipped"], f"summary {s}"
missing = [c["output"] for c in r["cases"] if not os.path.isfile(os.path.join(r["working_directory"], c["output"]))]
assert not missing, f"masks missing: {missing}"
print(f"hospital.sh: {s['discovered']} scans, {s['ok']} segmented now, {s['skipped']} done before; report {sys.argv[1]}")
PY
