"""The DICOM SEG segment writes (`segment SERIES -o seg.dcm`), proven by independent readers: dciodvfy (dicom3tools)
validates it against the standard's IODs, highdicom reads its segments back, which must equal voxel for voxel the
mask of the NIfTI path on the same data (segment on dcm2niix's NIfTI of the series), and pydicom checks what it
references (patient, study, frame of reference, series, instances, the source of each frame)."""
from __future__ import annotations

import subprocess
from pathlib import Path

import highdicom as hd
import nibabel as nib
import numpy as np
import pydicom
import pytest

from dicom_cases import (AFFINE_TOL_MM, DICOM, LPS_TO_RAS, assert_same_world, dcm2niix, dicom_files,
                         need, segment)

SEGMENTATION_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"
# Series whose SEG is checked: both slice orders along the normal, a flipped and a coronal grid, a compressed and a
# multi-frame source, pydicom's real CT, the oblique enhanced MR.
SOURCES = ["lits117/axial", "lits117/flip-rows", "lits117/reverse-slices", "lits117/coronal", "lits117/rle",
           "lits117/enhanced", "pydicom/CT5N", "pydicom/emri-geom/le"]


def source_frames(folder: Path) -> list[dict]:
    """Every image frame of a series with its place in space, read by pydicom from the single-frame attributes or
    from the functional groups: {sop, frame (1-based, None for single-frame), ipp, iop, spacing [row, column]}."""
    frames = []
    for p in dicom_files(folder):
        ds = pydicom.dcmread(p, stop_before_pixels=True)
        if "PerFrameFunctionalGroupsSequence" in ds:
            shared = ds.SharedFunctionalGroupsSequence[0]
            for k, pf in enumerate(ds.PerFrameFunctionalGroupsSequence):
                def attr(seq, name):
                    for g in (pf, shared):
                        if seq in g:
                            return getattr(g[seq].value[0], name)
                    raise AssertionError(f"{p}: frame {k + 1} has no {seq}")
                frames.append({"sop": ds.SOPInstanceUID, "frame": k + 1,
                               "ipp": np.array(attr("PlanePositionSequence", "ImagePositionPatient"), float),
                               "iop": np.array(attr("PlaneOrientationSequence", "ImageOrientationPatient"), float),
                               "spacing": [float(x) for x in attr("PixelMeasuresSequence", "PixelSpacing")],
                               "rows": int(ds.Rows), "columns": int(ds.Columns)})
        else:
            frames.append({"sop": ds.SOPInstanceUID, "frame": None,
                           "ipp": np.array(ds.ImagePositionPatient, float),
                           "iop": np.array(ds.ImageOrientationPatient, float),
                           "spacing": [float(x) for x in ds.PixelSpacing], "rows": int(ds.Rows),
                           "columns": int(ds.Columns)})
    n = np.cross(frames[0]["iop"][:3], frames[0]["iop"][3:])
    frames.sort(key=lambda f: float(np.dot(n, f["ipp"])))
    return frames


def seg_as_nifti(seg_path: Path, source: Path, out: Path) -> Path:
    """The SEG's segments read by highdicom, placed by frame on the source series' grid (pydicom's geometry), as a
    NIfTI label image (voxel value = segment number, 0 where no segment): what a viewer overlaying the SEG on the
    series shows."""
    seg = hd.seg.segread(str(seg_path))
    frames = source_frames(source)
    if frames[0]["frame"] is None:
        # labels (K, R, C): the segment number of each pixel of each source slice, sorted along the normal.
        labels = seg.get_pixels_by_source_instance([f["sop"] for f in frames], combine_segments=True,
                                                   relabel=False, assert_missing_frames_are_empty=True)
    else:
        assert len({f["sop"] for f in frames}) == 1, "one multi-frame source file expected"
        labels = seg.get_pixels_by_source_frame(frames[0]["sop"], [f["frame"] for f in frames],
                                                combine_segments=True, relabel=False,
                                                assert_missing_frames_are_empty=True)
    # NIfTI voxel (i column, j row, k slice) from labels (k, row, column).
    nib.save(nib.Nifti1Image(np.ascontiguousarray(np.transpose(labels, (2, 1, 0))).astype(np.uint8),
                             series_affine(frames)), str(out))
    return out


def series_affine(frames: list[dict]) -> np.ndarray:
    """RAS affine of voxel (i column, j row, k sorted frame) from pydicom's geometry of the frames."""
    row, col = frames[0]["iop"][:3], frames[0]["iop"][3:]
    dr, dc = frames[0]["spacing"]
    lps = np.eye(4)
    lps[:3, 0], lps[:3, 1] = row * dc, col * dr
    if len(frames) > 1:
        lps[:3, 2] = (frames[-1]["ipp"] - frames[0]["ipp"]) / (len(frames) - 1)
    else:
        lps[:3, 2] = np.cross(row, col)
    lps[:3, 3] = frames[0]["ipp"]
    return LPS_TO_RAS @ lps


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """For a source folder: (SEG path, segment's mask of dcm2niix's NIfTI of the series), made once per module."""
    root = tmp_path_factory.mktemp("seg")
    done = {}

    def make(rel: str):
        if rel not in done:
            d = root / rel.replace("/", "_")
            d.mkdir(exist_ok=True)
            src = DICOM / rel
            seg = d / "seg.dcm"
            r = segment(src, "-o", seg)
            assert r.returncode == 0, f"segment {rel} -o seg.dcm: exit {r.returncode}\n{r.stderr}"
            nifti_mask = d / "nifti-path-mask.nii.gz"
            r = segment(dcm2niix(src, d / "ref", "ref"), "-o", nifti_mask)
            assert r.returncode == 0, r.stderr
            done[rel] = (seg, nifti_mask)
        return done[rel]
    return make


@pytest.mark.parametrize("rel", SOURCES)
def test_seg_passes_dciodvfy(rel, written):
    """dciodvfy reports no error (warnings are listed in the failure message only when errors occur)."""
    need("dciodvfy", "dicom3tools")
    seg, _ = written(rel)
    r = subprocess.run(["dciodvfy", str(seg)], capture_output=True, text=True, timeout=300)
    text = r.stdout + r.stderr
    errors = [line for line in text.splitlines() if line.startswith("Error")]
    assert not errors, f"dciodvfy on the SEG of {rel}:\n" + "\n".join(errors)
    # dciodvfy names the IOD it recognised on a line of its own, among any warnings.
    assert "Segmentation" in [line.strip() for line in text.splitlines()], text[:2000]


@pytest.mark.parametrize("rel", SOURCES)
def test_seg_segments_equal_nifti_path_mask(rel, written, tmp_path):
    """highdicom's reading of the SEG, on the series' grid, equals the mask segment writes for dcm2niix's NIfTI of
    the same series, voxel for voxel in world space."""
    seg, nifti_mask = written(rel)
    got = seg_as_nifti(seg, DICOM / rel, tmp_path / "seg.nii.gz")
    assert_same_world(got, nifti_mask, f"SEG of {rel} vs the NIfTI path's mask")


@pytest.mark.parametrize("rel", SOURCES)
def test_seg_references_its_series(rel, written):
    """pydicom: the SEG is a new series of the source's study, patient and frame of reference, references the
    source series and only its instances, and each frame's source image is the slice at that frame's position."""
    seg_path, _ = written(rel)
    seg = pydicom.dcmread(seg_path)
    src = [pydicom.dcmread(p, stop_before_pixels=True) for p in dicom_files(DICOM / rel)]
    s0 = src[0]
    assert seg.SOPClassUID == SEGMENTATION_STORAGE and seg.Modality == "SEG"
    assert seg.file_meta.MediaStorageSOPInstanceUID == seg.SOPInstanceUID
    for key in ("PatientID", "StudyInstanceUID", "FrameOfReferenceUID"):
        assert seg.get(key) == s0.get(key), f"{key}: {seg.get(key)} vs source {s0.get(key)}"
    assert seg.SeriesInstanceUID != s0.SeriesInstanceUID
    assert seg.SOPInstanceUID not in {d.SOPInstanceUID for d in src}
    refs = seg.ReferencedSeriesSequence
    assert len(refs) == 1 and refs[0].SeriesInstanceUID == s0.SeriesInstanceUID
    by_uid = {d.SOPInstanceUID: d for d in src}
    referenced = {(i.ReferencedSOPClassUID, i.ReferencedSOPInstanceUID) for i in refs[0].ReferencedInstanceSequence}
    assert referenced == {(d.SOPClassUID, d.SOPInstanceUID) for d in src}, "the SEG must reference every source " \
        "instance and nothing else"
    # Each SEG frame: its source image (DerivationImageSequence) is the source frame at its PlanePosition.
    frames = {(f["sop"], f["frame"]): f for f in source_frames(DICOM / rel)}
    shared = seg.SharedFunctionalGroupsSequence[0]
    for k, pf in enumerate(seg.PerFrameFunctionalGroupsSequence):
        ipp = np.array(pf.PlanePositionSequence[0].ImagePositionPatient, float)
        srcimg = pf.DerivationImageSequence[0].SourceImageSequence[0]
        key = (srcimg.ReferencedSOPInstanceUID,
               int(srcimg.ReferencedFrameNumber) if "ReferencedFrameNumber" in srcimg else None)
        assert key in frames, f"SEG frame {k + 1} derives from {key}, not a frame of the source"
        assert np.abs(frames[key]["ipp"] - ipp).max() <= AFFINE_TOL_MM, (k, ipp, frames[key]["ipp"])
        assert key[0] in by_uid
    po = (shared.PlaneOrientationSequence[0] if "PlaneOrientationSequence" in shared
          else seg.PerFrameFunctionalGroupsSequence[0].PlaneOrientationSequence[0])
    first = next(iter(frames.values()))
    assert np.abs(np.array(po.ImageOrientationPatient, float) - first["iop"]).max() <= 1e-4
    assert (int(seg.Rows), int(seg.Columns)) == (first["rows"], first["columns"])


def test_seg_segments_are_described(written):
    """Each segment names its class (SegmentLabel) and carries a category and type code, as SEG readers display;
    segment numbers are the mask's labels (1 liver, ...), which test_seg_segments_equal_nifti_path_mask relies on."""
    seg = hd.seg.segread(str(written("lits117/axial")[0]))
    numbers = [int(s.SegmentNumber) for s in seg.SegmentSequence]
    assert numbers == list(range(1, len(numbers) + 1)), numbers
    for s in seg.SegmentSequence:
        assert str(s.SegmentLabel).strip(), s
        assert "SegmentedPropertyCategoryCodeSequence" in s and "SegmentedPropertyTypeCodeSequence" in s
    labels = [str(s.SegmentLabel).lower() for s in seg.SegmentSequence]
    assert "liver" in labels[0], labels


def test_harness_reads_back_a_highdicom_seg(tmp_path):
    """The reading above is itself right: a SEG highdicom writes from a known mask on the axial series reads back
    through seg_as_nifti as that mask, in world space, and passes the reference checks' reading of frames."""
    src = DICOM / "lits117" / "axial"
    frames = source_frames(src)
    dss = [pydicom.dcmread(p) for p in dicom_files(src)]
    by_uid = {d.SOPInstanceUID: d for d in dss}
    ordered = [by_uid[f["sop"]] for f in frames]
    rng = np.random.default_rng(3)
    # mask (K, R, C) over the sorted slices: random blobs of labels 1 and 2, with empty slices at both ends.
    mask = np.zeros((len(ordered), ordered[0].Rows, ordered[0].Columns), np.uint8)
    mask[10:100, 20:90, 30:100] = 1
    mask[40:60, 40:60, 50:70] = 2
    mask[rng.random(mask.shape) < 0.01] = 0
    desc = [hd.seg.SegmentDescription(
        segment_number=i, segment_label=name,
        segmented_property_category=hd.sr.CodedConcept("123037004", "SCT", "Anatomical Structure"),
        segmented_property_type=hd.sr.CodedConcept("10200004", "SCT", "Liver"),
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL) for i, name in ((1, "liver"), (2, "tumour"))]
    seg = hd.seg.Segmentation(ordered, mask, hd.seg.SegmentationTypeValues.BINARY, desc,
                              hd.UID(), 99, hd.UID(), 1, "segment tests", "harness", "1", "0")
    seg.save_as(tmp_path / "hd.dcm")
    got = seg_as_nifti(tmp_path / "hd.dcm", src, tmp_path / "hd.nii.gz")
    want = nib.Nifti1Image(np.ascontiguousarray(np.transpose(mask, (2, 1, 0))), series_affine(frames))
    assert_same_world(got, (nib.as_closest_canonical(want).affine, np.asarray(nib.as_closest_canonical(want).dataobj)),
                      "highdicom SEG read back")
