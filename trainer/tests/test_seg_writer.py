"""The DICOM SEGs segment writes, checked by independent readers: dciodvfy (dicom3tools) for the standard's rules,
highdicom for the pixel data (each segment equals its class in the mask, voxel for voxel), pydicom for the references.

The SEGs come from the Swift tests (Tests/SegmentDICOMTests/SegWriterTests.swift), which copy every SEG they write,
with a JSON sidecar of its mask and sources, into $SEGMENT_SEG_OUT: this module runs them into a temporary folder, or
uses the folder named by $SEGMENT_SEG_DIR when a previous run filled it.
"""
import json
import os
import pathlib
import subprocess
import sys

import highdicom as hd
import numpy as np
import pydicom
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
NAMES = ["ct5n", "flipped", "no-tumour", "empty"]
SEG_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"
# The sRGB colours SegColour.palette gives labels 1 and 2 (Sources/SegmentDICOM/SegWriter.swift).
PALETTE = {1: (221, 130, 101), 2: (241, 214, 145)}


@pytest.fixture(scope="module")
def seg_dir(tmp_path_factory):
    given = os.environ.get("SEGMENT_SEG_DIR")
    if given:
        return pathlib.Path(given)
    out = tmp_path_factory.mktemp("segs")
    # The Swift tests run Python (pydicom) too: this interpreter, unless the caller chose one.
    env = dict(os.environ, SEGMENT_SEG_OUT=str(out))
    env.setdefault("SEGMENT_PYTHON", sys.executable)
    r = subprocess.run(["swift", "test", "-c", "release", "-Xswiftc", "-enable-testing", "--filter", "SegWriterTests"],
                       cwd=ROOT, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    return out


def load(seg_dir, name):
    side = json.loads((seg_dir / f"{name}.json").read_text())
    mask = np.array(side["labels"], dtype=np.uint8).reshape(side["slices"], side["rows"], side["columns"])
    return seg_dir / f"{name}.dcm", side, mask


@pytest.mark.parametrize("name", NAMES)
def test_dciodvfy_reports_no_error(seg_dir, name):
    path, _, _ = load(seg_dir, name)
    r = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True)
    errors = [line for line in (r.stdout + r.stderr).splitlines() if line.startswith("Error")]
    assert errors == [], "\n".join(errors)


@pytest.mark.parametrize("name", NAMES)
def test_highdicom_reads_the_mask_back(seg_dir, name):
    path, side, mask = load(seg_dir, name)
    seg = hd.seg.segread(str(path))
    assert seg.SegmentationType == "BINARY"
    uids = [s["sop_instance_uid"] for s in side["sources"]]
    # Exact: a label map is integers, and BINARY frames hold bits.
    combined = seg.get_pixels_by_source_instance(source_sop_instance_uids=uids, combine_segments=True)
    np.testing.assert_array_equal(combined, mask)
    numbers = [d["label"] for d in side["segments"]]
    per = seg.get_pixels_by_source_instance(source_sop_instance_uids=uids, segment_numbers=numbers)
    for i, label in enumerate(numbers):
        np.testing.assert_array_equal(per[..., i], (mask == label).astype(per.dtype), err_msg=f"segment {label}")


@pytest.mark.parametrize("name", NAMES)
def test_references_and_codes(seg_dir, name):
    path, side, mask = load(seg_dir, name)
    ds = pydicom.dcmread(path)
    assert ds.SOPClassUID == SEG_STORAGE and ds.Modality == "SEG"
    sources = side["sources"]
    by_uid = {s["sop_instance_uid"]: s for s in sources}
    # The source series and every source instance, each once.
    (series,) = ds.ReferencedSeriesSequence
    listed = [i.ReferencedSOPInstanceUID for i in series.ReferencedInstanceSequence]
    assert sorted(listed) == sorted(by_uid)
    assert ds.SeriesInstanceUID != series.SeriesInstanceUID
    # Each frame names the source slice at its position (positions are DS: equal to 1e-4 mm, far below any spacing).
    frames = ds.PerFrameFunctionalGroupsSequence
    assert len(frames) == int(ds.NumberOfFrames)
    seen = set()
    for f in frames:
        (src,) = f.DerivationImageSequence[0].SourceImageSequence
        position = [float(v) for v in f.PlanePositionSequence[0].ImagePositionPatient]
        np.testing.assert_allclose(position, by_uid[src.ReferencedSOPInstanceUID]["position"], atol=1e-4)
        segment = int(f.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        seen.add((segment, src.ReferencedSOPInstanceUID))
    # Frames exist exactly for the (segment, slice) pairs with a voxel, plus slice 0 for a segment with none.
    expected = set()
    for d in side["segments"]:
        slices = [k for k in range(mask.shape[0]) if (mask[k] == d["label"]).any()] or [0]
        expected |= {(d["label"], sources[k]["sop_instance_uid"]) for k in slices}
    assert seen == expected
    for item, d in zip(ds.SegmentSequence, side["segments"]):
        assert item.SegmentLabel == d["name"]
        assert item.SegmentAlgorithmType == "AUTOMATIC"
        assert item.SegmentedPropertyTypeCodeSequence[0].CodingSchemeDesignator == "SCT"
        assert item.SegmentedPropertyTypeCodeSequence[0].CodeValue == d["type"]
        assert item.SegmentedPropertyCategoryCodeSequence[0].CodeValue == d["category"]
        algorithm = item.SegmentationAlgorithmIdentificationSequence[0]
        assert algorithm.AlgorithmName == "segment"
        assert "checksum=" + "ab" * 32 in algorithm.AlgorithmParameters
        # highdicom's sRGB -> CIELab conversion is the reference; 2 units of 65535 allow for the sRGB matrix's
        # rounding in either implementation (about 0.003 L*, invisible).
        want = hd.color.CIELabColor.from_rgb(*PALETTE[d["label"]]).value
        assert np.abs(np.array(item.RecommendedDisplayCIELabValue, dtype=int) - np.array(want)).max() <= 2


def test_patient_and_study_are_the_sources(seg_dir):
    path, side, _ = load(seg_dir, "ct5n")
    seg, src = pydicom.dcmread(path), pydicom.dcmread(side["sources"][0]["path"])
    for keyword in ["PatientName", "PatientID", "StudyInstanceUID", "StudyID", "StudyDate", "FrameOfReferenceUID"]:
        assert seg.get(keyword) == src.get(keyword), keyword
