#!/usr/bin/env bash
# One scan: segment a NIfTI volume or a PNG picture with the default model, write its run report beside the mask,
# and print the labels found with their volumes.
#
#   examples/one-scan.sh SCAN MASK [segment flags...]
#   examples/one-scan.sh ~/.cache/segment-data/examples/liver-117.nii.gz out/liver-117_mask.nii.gz
#
# SEGMENT names the executable (default: segment on PATH); the model is the default one unless --model is given
# (or SEGMENT_MODEL is set). Exits with segment's exit code (README, "Exit codes").
set -euo pipefail
usage="usage: $0 SCAN MASK [segment flags...]"
scan=${1:?$usage}
mask=${2:?$usage}
shift 2
segment=${SEGMENT:-segment}

# The report is MASK's name without its image extension, plus .json: out/liver-117_mask.json.
base=${mask%.gz}; base=${base%.nii}; base=${base%.png}
report=$base.json

"$segment" "$scan" -o "$mask" --report "$report" --overwrite "$@"

# The report is the record of what ran (model checksum, options, shape, labels); python3's standard library reads it.
python3 - "$report" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
c = r["cases"][0]
print(f"{c['input']} -> {c['output']}: shape {c.get('shape')}, {c.get('time_s', 0):.1f} s, model {r['model']['checksum']}")
for l in c.get("labels", []):
    print(f"  label {l['label']} {l['name']}: {l['voxels']} voxels, {l['volume_ml']:.1f} ml")
PY
