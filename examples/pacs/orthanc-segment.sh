#!/usr/bin/env bash
# Example PACS script for Orthanc: fetch one series by its SeriesInstanceUID over Orthanc's REST API, segment it,
# and store the DICOM SEG back in Orthanc, where it joins the series' study and references the series.
#
#   examples/pacs/orthanc-segment.sh ORTHANC_URL SERIES_INSTANCE_UID [segment flags...]
#
#   ORTHANC_URL   e.g. http://127.0.0.1:8042 (ORTHANC_AUTH=user:password for a server with authentication)
#   SEGMENT       the segment executable (default: segment on PATH)
#
# Exit codes: segment's own (README, "Exit codes"): 0 the SEG is stored in Orthanc (its Orthanc IDs on stdout);
# 3 the series is refused (segment's message on stderr names the file and the check; nothing is stored) or Orthanc
# has no series with that UID; 4 the model; 5 Orthanc did not accept the SEG; 2 this script's arguments; 1 Orthanc
# cannot be reached or answers with an error while fetching.
# Needs curl and python3 (its standard library reads Orthanc's JSON and the series archive).
set -uo pipefail
usage="usage: $0 ORTHANC_URL SERIES_INSTANCE_UID [segment flags...]"
[ $# -ge 2 ] || { echo "$usage" >&2; exit 2; }
url=${1%/}
uid=$2
shift 2
segment=${SEGMENT:-segment}
curl_args=(--silent --show-error --fail)
[ -n "${ORTHANC_AUTH:-}" ] && curl_args+=(--user "$ORTHANC_AUTH")

say() { echo "orthanc-segment.sh: $*" >&2; }

work=$(mktemp -d) || exit 1
trap 'rm -rf "$work"' EXIT

# 1. Orthanc's ID of the series (/tools/find matches DICOM tags exactly).
query=$(python3 -c 'import json,sys; print(json.dumps({"Level": "Series", "Query": {"SeriesInstanceUID": sys.argv[1]}}))' "$uid")
if ! curl "${curl_args[@]}" -X POST "$url/tools/find" --data-binary "$query" -o "$work/find.json"; then
    say "cannot query Orthanc at $url"; exit 1
fi
series_id=$(python3 -c 'import json,sys; ids=json.load(open(sys.argv[1])); print(ids[0] if len(ids) == 1 else "")' "$work/find.json")
if [ -z "$series_id" ]; then
    say "Orthanc at $url has no series $uid"; exit 3
fi

# 2. The series' files, as the ZIP archive Orthanc builds of them, unpacked into a folder segment reads as one series.
if ! curl "${curl_args[@]}" "$url/series/$series_id/archive" -o "$work/series.zip"; then
    say "cannot download series $uid ($series_id) from $url"; exit 1
fi
python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$work/series.zip" "$work/series" \
    || { say "the archive of series $uid is not a readable ZIP"; exit 1; }

# 3. segment writes the SEG; on a refusal (exit 3) or any other failure nothing goes back to Orthanc.
"$segment" "$work/series" -o "$work/seg.dcm" "$@"
code=$?
if [ "$code" != 0 ]; then
    say "segment exited with $code for series $uid; nothing was stored in Orthanc"
    exit "$code"
fi

# 4. Store the SEG. Orthanc files it under the study of its StudyInstanceUID, the source series' study.
if ! curl "${curl_args[@]}" -X POST "$url/instances" -H "Content-Type: application/dicom" \
        --data-binary "@$work/seg.dcm" -o "$work/stored.json"; then
    say "Orthanc at $url did not accept the SEG of series $uid"; exit 5
fi
python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
if r.get("Status") not in ("Success", "AlreadyStored"):
    sys.exit("orthanc-segment.sh: Orthanc answered %s" % r)
print("SEG instance %s series %s study %s" % (r["ID"], r["ParentSeries"], r["ParentStudy"]))
' "$work/stored.json" || exit 5
exit 0
