#!/usr/bin/env bash
# A model file from a PyTorch checkpoint (.pth, zip or legacy pickle, or .safetensors), checked and then used.
#
#   examples/convert-checkpoint.sh CHECKPOINT MODEL [convert flags...]
#   examples/convert-checkpoint.sh iter_30000.pth models/acdc.segm --classes background,RV,MYO,LV
#
# convert infers the configuration from the tensor shapes (flags confirm or override it, docs/FORMAT.md) and never
# executes the checkpoint's pickle code. inspect then validates the whole file and prints its metadata; MODEL is
# ready for `segment SCAN -o MASK --model MODEL`. SEGMENT names the executable (default: segment on PATH).
set -euo pipefail
usage="usage: $0 CHECKPOINT MODEL [convert flags...]"
checkpoint=${1:?$usage}
model=${2:?$usage}
shift 2
segment=${SEGMENT:-segment}

mkdir -p "$(dirname "$model")"
"$segment" convert "$checkpoint" -o "$model" "$@"
# The summary of inspect; the tensor table that follows it is left out here (`segment inspect MODEL` shows it).
info=$("$segment" inspect "$model")
printf '%s\n' "$info" | sed -n '1,/^parameters/p'
