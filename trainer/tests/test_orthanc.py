"""examples/pacs/orthanc-segment.sh against a real PACS: a private Orthanc (orthanc_server.py) started on loopback
with its own temporary configuration and storage, stopped at the end. The test uploads LiTS-117's CT series over
Orthanc's REST API, runs the script (segment from PATH, the shipped default model), and checks through Orthanc's API
that the SEG is stored in the series' study and references the series; a series segment refuses stores nothing."""
from __future__ import annotations

import io
import os
import subprocess
from pathlib import Path

import pydicom
import pytest

from dicom_cases import BIN, DICOM, REPO, dicom_files, manifest, need
from orthanc_server import OrthancServer

SCRIPT = REPO / "examples" / "pacs" / "orthanc-segment.sh"


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory):
    need("Orthanc", "orthanc")
    server = OrthancServer(tmp_path_factory.mktemp("orthanc")).start()
    try:
        yield server
    finally:
        server.stop()
    assert server.process.poll() is not None, "Orthanc is still running after stop()"


def upload_series(orthanc: OrthancServer, folder: Path) -> dict:
    answers = [orthanc.upload(p) for p in dicom_files(folder)]
    assert all(a["Status"] in ("Success", "AlreadyStored") for a in answers), answers[:3]
    assert len({a["ParentSeries"] for a in answers}) == 1
    return answers[0]


def run_script(orthanc: OrthancServer, uid: str, *flags, cwd: Path) -> subprocess.CompletedProcess:
    assert BIN.is_file(), f"no segment executable at {BIN}: run `make build` or set SEGMENT_BIN"
    env = dict(os.environ, PATH=f"{BIN.parent}:{os.environ['PATH']}")
    env.pop("SEGMENT_MODEL", None)
    env.pop("SEGMENT", None)
    return subprocess.run([str(SCRIPT), orthanc.url, uid, *flags], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)


def seg_series_of(orthanc: OrthancServer, study_id: str) -> list[dict]:
    return [s for s in orthanc.get(f"/studies/{study_id}/series") if s["MainDicomTags"].get("Modality") == "SEG"]


def test_orthanc_round_trip(orthanc, tmp_path):
    m = manifest()
    src = DICOM / "lits117" / "axial"
    uid = m["lits117/axial"]["series_uid"]
    first = upload_series(orthanc, src)
    study_id, series_id = first["ParentStudy"], first["ParentSeries"]
    assert orthanc.get(f"/series/{series_id}")["MainDicomTags"]["SeriesInstanceUID"] == uid
    assert len(orthanc.get(f"/series/{series_id}/instances")) == 128
    assert seg_series_of(orthanc, study_id) == []

    r = run_script(orthanc, uid, cwd=tmp_path)
    assert r.returncode == 0, f"exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    assert r.stdout.startswith("SEG instance "), r.stdout

    # The SEG is a new series of the same study (Orthanc files instances by StudyInstanceUID).
    segs = seg_series_of(orthanc, study_id)
    assert len(segs) == 1, segs
    seg_series = segs[0]
    assert seg_series["ParentStudy"] == study_id
    assert len(seg_series["Instances"]) == 1
    instance = seg_series["Instances"][0]
    assert instance in r.stdout and seg_series["ID"] in r.stdout
    # Its references, as Orthanc parsed them: ReferencedSeriesSequence names the source series.
    tags = orthanc.get(f"/instances/{instance}/simplified-tags")
    assert tags["SOPClassUID"] == "1.2.840.10008.5.1.4.1.1.66.4"
    assert tags["StudyInstanceUID"] == orthanc.get(f"/studies/{study_id}")["MainDicomTags"]["StudyInstanceUID"]
    refs = tags["ReferencedSeriesSequence"]
    assert [x["SeriesInstanceUID"] for x in refs] == [uid]
    source_sops = {pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID for p in dicom_files(src)}
    assert {x["ReferencedSOPInstanceUID"] for x in refs[0]["ReferencedInstanceSequence"]} == source_sops
    # The stored file is the one pydicom reads as a SEG of this series.
    ds = pydicom.dcmread(io.BytesIO(orthanc.request("GET", f"/instances/{instance}/file")))
    assert ds.Modality == "SEG" and ds.ReferencedSeriesSequence[0].SeriesInstanceUID == uid


def test_orthanc_refused_series_stores_nothing(orthanc, tmp_path):
    """A series with a missing slice: the script exits with segment's 3, segment's message names the check, and the
    study gains no SEG."""
    m = manifest()
    src = DICOM / "lits117-hostile" / "gap"
    first = upload_series(orthanc, src)
    before = orthanc.get("/series")
    r = run_script(orthanc, m["lits117-hostile/gap"]["series_uid"], cwd=tmp_path)
    assert r.returncode == 3, f"exit {r.returncode}\n{r.stderr}"
    assert "gap" in r.stderr or "slice spacing" in r.stderr, r.stderr
    assert "nothing was stored" in r.stderr
    assert orthanc.get("/series") == before
    assert first["ParentSeries"] in before


def test_orthanc_unknown_series(orthanc, tmp_path):
    r = run_script(orthanc, "1.2.3.4.5.6.7.8.9", cwd=tmp_path)
    assert r.returncode == 3, (r.returncode, r.stderr)
    assert "has no series 1.2.3.4.5.6.7.8.9" in r.stderr, r.stderr


def test_orthanc_script_usage(tmp_path):
    r = subprocess.run([str(SCRIPT)], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 2 and "usage:" in r.stderr
