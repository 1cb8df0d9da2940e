"""segment reading DICOM series, proven against dcm2niix (an independent reader) on the fixtures of gen_dicom.py:
LiTS-117 written as CT series in several orientations and transfer syntaxes, pydicom's bundled series, and series
that must be refused. Masks are compared in world space, voxel for voxel (dicom_cases.assert_same_world)."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest

from dicom_cases import (AFFINE_TOL_MM, DICOM, assert_same_world, dcm2niix, manifest, segment,
                         series_geometry, world)

LITS_IMAGE = Path(__import__("os").environ.get("SEGMENT_DATA") or Path.home() / ".cache" / "segment-data") \
    / "lits117" / "image.nii.gz"
# Variants dcm2niix reads (Debian's dcm2niix has no JPEG-LS decoder and refuses the RLE multi-frame file).
BY_DCM2NIIX = ["axial", "axial-signed", "flip-rows", "flip-cols", "reverse-slices", "coronal", "sagittal", "aniso",
               "rle", "jpeg-lossless", "enhanced", "with-junk"]
# The others are the axial series through a lossless codec: their mask must be the axial series' mask.
TRANSCODED = ["jpegls", "enhanced-rle"]


@pytest.fixture(scope="module")
def masks(tmp_path_factory):
    """segment's mask of an input (a series folder or a NIfTI) with the shipped default model, computed once per
    module. That model records its training orientation (LPS), so inputs stored otherwise are reoriented first."""
    root = tmp_path_factory.mktemp("masks")
    done: dict[Path, Path] = {}

    def mask_of(src: Path) -> Path:
        if src not in done:
            out = root / f"{len(done)}.nii.gz"
            r = segment(src, "-o", out)
            assert r.returncode == 0, f"segment {src}: exit {r.returncode}\n{r.stderr}"
            assert out.is_file()
            done[src] = out
        return done[src]
    return mask_of


@pytest.fixture(scope="module")
def references(tmp_path_factory):
    """dcm2niix's NIfTI of a fixture folder, made once per module."""
    root = tmp_path_factory.mktemp("dcm2niix")
    done: dict[Path, Path] = {}

    def ref_of(series: Path) -> Path:
        if series not in done:
            done[series] = dcm2niix(series, root / str(len(done)), "ref")
        return done[series]
    return ref_of


# ---- the fixtures themselves, read by dcm2niix ----------------------------------------------------------------

@pytest.mark.parametrize("variant", BY_DCM2NIIX)
def test_dcm2niix_reads_each_variant_as_the_source_ct(variant, references):
    """The generator is right before segment is judged by it: dcm2niix reads every variant back as LiTS-117's HU
    on LiTS-117's grid (the stretched aniso variant: the same HU on its declared spacing)."""
    manifest()
    ref = references(DICOM / "lits117" / variant)
    src_affine, src = world(LITS_IMAGE)
    img = nib.as_closest_canonical(nib.load(str(ref)))
    affine, hu = img.affine, img.get_fdata(dtype=np.float64)
    assert hu.shape == src.shape
    # dcm2niix applies RescaleSlope/Intercept through scl_slope/scl_inter: exact in float64 for steps of 1/8 HU.
    assert np.array_equal(hu, src.astype(np.float64)), f"{variant}: HU differ from LiTS-117"
    if variant == "aniso":
        assert np.allclose(np.abs(np.diag(affine)[:3]), [0.8, 0.7, 1.5], atol=AFFINE_TOL_MM), affine
    else:
        assert np.abs(affine - src_affine).max() <= AFFINE_TOL_MM, (affine, src_affine)


def test_generated_ct_passes_dciodvfy():
    """dciodvfy (dicom3tools) finds no error in a generated CT Image and in the Legacy Converted Enhanced CT."""
    from dicom_cases import need
    need("dciodvfy", "dicom3tools")
    import subprocess
    for f in (DICOM / "lits117" / "axial" / "IM0001.dcm", DICOM / "lits117" / "coronal" / "IM0064.dcm",
              DICOM / "lits117" / "axial-signed" / "IM0128.dcm"):
        r = subprocess.run(["dciodvfy", str(f)], capture_output=True, text=True, timeout=120)
        errors = [l for l in (r.stdout + r.stderr).splitlines() if l.startswith("Error")]
        assert not errors, f"{f}:\n" + "\n".join(errors)


# ---- segment on series, against the NIfTI path ----------------------------------------------------------------

@pytest.mark.parametrize("variant", BY_DCM2NIIX)
def test_series_mask_equals_nifti_path_mask(variant, masks, references):
    """A series and dcm2niix's NIfTI of it give the same mask, voxel for voxel in world space, whatever the
    orientation, slice order, file naming or transfer syntax."""
    series = DICOM / "lits117" / variant
    assert_same_world(masks(series), masks(references(series)),
                      f"{variant}: series vs dcm2niix NIfTI")


@pytest.mark.parametrize("variant", [v for v in BY_DCM2NIIX + TRANSCODED if v != "aniso"])
def test_every_layout_gives_the_source_nifti_mask(variant, masks):
    """All variants but aniso are LiTS-117 on its own grid, stored differently: each gives the mask of LiTS-117's
    NIfTI."""
    assert_same_world(masks(DICOM / "lits117" / variant), masks(LITS_IMAGE),
                      f"{variant} vs LiTS-117 NIfTI")


def test_axial_series_mask_equals_source_nifti_mask(masks):
    """The axial series stores LiTS-117's own grid in the NIfTI's voxel order: its mask is the mask of the NIfTI it was
    written from, and the model finds the liver in it."""
    assert_same_world(masks(DICOM / "lits117" / "axial"), masks(LITS_IMAGE), "axial series vs LiTS-117 NIfTI")
    labels = np.unique(world(masks(LITS_IMAGE))[1])
    assert set(labels.tolist()) >= {0, 1}, f"the model finds no liver in LiTS-117: {labels}"


@pytest.mark.parametrize("variant", TRANSCODED)
def test_transcoded_series_mask_equals_axial(variant, masks):
    assert_same_world(masks(DICOM / "lits117" / variant), masks(DICOM / "lits117" / "axial"), variant)


@pytest.mark.parametrize("variant", ["axial", "flip-rows", "flip-cols", "reverse-slices", "coronal", "sagittal",
                                     "aniso"])
def test_mask_is_written_on_the_series_grid(variant, masks):
    """The mask keeps the series' own voxel order (i along the rows' direction, j down the columns, k sorted along
    the slice normal) with the affine pydicom's attributes give after LPS -> RAS; not resampled, not reordered."""
    geo = series_geometry(DICOM / "lits117" / variant)
    img = nib.load(str(masks(DICOM / "lits117" / variant)))
    assert img.shape == geo["shape"], (img.shape, geo["shape"])
    err = float(np.abs(img.affine - geo["affine"]).max())
    assert err <= AFFINE_TOL_MM, f"{variant}: mask affine off by {err} mm\n{img.affine}\n{geo['affine']}"


def test_pydicom_ct5n_mask_equals_nifti_path(masks, references):
    """pydicom's real 5-slice CT (16 x 16, slices listed top down): the same mask as dcm2niix's NIfTI of it."""
    series = DICOM / "pydicom" / "CT5N"
    assert_same_world(masks(series), masks(references(series)), "CT5N")


@pytest.mark.parametrize("sub", ["le", "big-endian"])
def test_enhanced_mr_functional_groups_equal_nifti_path(sub, masks, references):
    """Enhanced MR multi-frame (pydicom-data's emri_small with functional groups: an oblique plane, 0.9 x 1.1 mm):
    the same mask as dcm2niix's NIfTI of it, little and big endian."""
    series = DICOM / "pydicom" / "emri-geom" / sub
    assert_same_world(masks(series), masks(references(series)), f"emri-geom/{sub}")


@pytest.mark.parametrize("sub", ["rle", "jpegls"])
def test_enhanced_mr_compressed_equals_uncompressed(sub, masks):
    series = DICOM / "pydicom" / "emri-geom"
    assert_same_world(masks(series / sub), masks(series / "le"), f"emri-geom/{sub}")


# ---- refusals ---------------------------------------------------------------------------------------------------

# (fixture folder or file, what stderr must say: the check, as a regex)
REFUSED = [
    ("lits117-hostile/gap", r"gap|slice spacing"),
    ("lits117-hostile/duplicate", r"same position|repeated|duplicate"),
    ("lits117-hostile/tilted", r"tilt|slice alignment|sideways"),
    ("lits117-hostile/mixed-rows", r"size|127 x 128"),
    ("lits117-hostile/truncated", r"truncat|not a readable|premature|end of (the )?file|pixel data"),
    ("lits117-hostile/mixed-spacing", r"spacing"),
    ("lits117-hostile/no-position", r"ImagePositionPatient"),
    ("pydicom/CT2-gap", r"gap|slice spacing"),
    ("pydicom/MR700-nonparallel", r"orientation|not parallel"),
    ("pydicom/emri/emri_small.dcm", r"ImagePositionPatient|ImageOrientationPatient|PixelSpacing|PlanePosition"),
    ("pydicom/emri/emri_small_RLE.dcm", r"ImagePositionPatient|ImageOrientationPatient|PixelSpacing|PlanePosition"),
    ("pydicom/emri/emri_small_big_endian.dcm",
     r"ImagePositionPatient|ImageOrientationPatient|PixelSpacing|PlanePosition"),
    ("pydicom/emri/emri_small_jpeg_2k_lossless.dcm", r"JPEG 2000"),
]


@pytest.mark.parametrize("rel,check", REFUSED, ids=[r for r, _ in REFUSED])
@pytest.mark.parametrize("fmt", ["nii.gz", "dcm"])
def test_refused_with_exit_3_naming_file_or_series_and_check(rel, check, fmt, tmp_path):
    """Exit 3 (invalid input), a message naming the file or the series and the failed check, nothing written."""
    m = manifest()
    src = DICOM / rel
    if src.is_file():
        # A single file is given as a one-file folder, the way a PACS export arrives.
        folder = tmp_path / "series"
        folder.mkdir()
        shutil.copy(src, folder / src.name)
        src = folder
    out = tmp_path / f"out.{fmt}"
    r = segment(src, "-o", out)
    assert r.returncode == 3, f"{rel}: exit {r.returncode}, expected 3\n{r.stderr}"
    assert re.search(check, r.stderr, re.IGNORECASE), f"{rel}: the message does not name the check /{check}/:\n" \
        f"{r.stderr}"
    entry = m.get(rel, {})
    names = [entry.get("bad_file")] if entry.get("bad_file") else [p.name for p in src.rglob("*") if p.is_file()]
    uids = [entry["series_uid"]] if "series_uid" in entry else entry.get("series_uids", [])
    assert any(n and n in r.stderr for n in names + uids), f"{rel}: the message names neither the file nor the " \
        f"series:\n{r.stderr}"
    assert not out.exists(), f"{rel}: {out} was written for a refused series"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("out")], list(tmp_path.iterdir())


# ---- folders of several series ------------------------------------------------------------------------------------

@pytest.fixture()
def study(tmp_path):
    """A study folder holding three series of LiTS-117 (axial, coronal, flip-rows), as a PACS export would."""
    d = tmp_path / "study"
    for v in ("axial", "coronal", "flip-rows"):
        shutil.copytree(DICOM / "lits117" / v, d / v)
    return d


def test_study_folder_gives_one_case_per_series(study, tmp_path, masks):
    """Each series is a case named by its SeriesInstanceUID; its mask is the mask of the series alone; --report
    names the series (UID, description, number of files)."""
    m = manifest()
    out = tmp_path / "out"
    r = segment(study, "-o", f"{out}/", "--report", tmp_path / "run.json")
    assert r.returncode == 0, r.stderr
    uids = {m[f"lits117/{v}"]["series_uid"]: v for v in ("axial", "coronal", "flip-rows")}
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{u}.nii.gz" for u in uids)
    for u, v in uids.items():
        assert_same_world(out / f"{u}.nii.gz", masks(DICOM / "lits117" / v), f"study case {v}")
    report = json.loads((tmp_path / "run.json").read_text())
    assert report["summary"]["ok"] == 3, report["summary"]
    cases = {c["name"]: c for c in report["cases"]}
    assert sorted(cases) == sorted(uids)
    for u, v in uids.items():
        geo = series_geometry(DICOM / "lits117" / v)          # pydicom's reading of the same files
        s = cases[u]["series"]
        assert (s["series_instance_uid"], s["study_instance_uid"], s["frame_of_reference_uid"]) == \
            (u, geo["study_uid"], geo["frame_of_reference"]), s
        assert s["description"] == f"LiTS-117 {v}" and s["files"] == 128, s


def test_study_folder_series_option_picks_one(study, tmp_path, masks):
    """--series UID segments that series alone: into an existing OUTDIR as OUTDIR/<UID>.nii.gz, or into a file -o."""
    m = manifest()
    u = m["lits117/coronal"]["series_uid"]
    out = tmp_path / "out"
    out.mkdir()
    r = segment(study, "-o", f"{out}/", "--series", u)
    assert r.returncode == 0, r.stderr
    assert [p.name for p in out.iterdir()] == [f"{u}.nii.gz"]
    assert_same_world(out / f"{u}.nii.gz", masks(DICOM / "lits117" / "coronal"), "--series coronal")
    r = segment(study, "-o", tmp_path / "one.nii.gz", "--series", u)
    assert r.returncode == 0, r.stderr
    assert_same_world(tmp_path / "one.nii.gz", out / f"{u}.nii.gz", "--series into a file")


def test_study_folder_unknown_series_is_a_usage_error(study, tmp_path):
    r = segment(study, "-o", f"{tmp_path}/out/", "--series", "1.2.3.4.5.999")
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "1.2.3.4.5.999" in r.stderr, r.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_pydicom_folder_of_three_series_gives_three_cases(tmp_path):
    """pydicom's MR1 folder: three single-slice MR series, three masks named by SeriesInstanceUID, each on its
    slice's grid (16 x 16 x 1)."""
    m = manifest()["pydicom/MR1-three-series"]
    out = tmp_path / "out"
    r = segment(DICOM / "pydicom" / "MR1-three-series", "-o", f"{out}/")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{u}.nii.gz" for u in m["series_uids"])
    for u in m["series_uids"]:
        assert nib.load(str(out / f"{u}.nii.gz")).shape[:2] == (16, 16)


def test_study_folder_as_dicom_seg(study, tmp_path):
    """--output-format dicom-seg: OUTDIR/<SeriesInstanceUID>.dcm per series, each a SEG referencing its series."""
    m = manifest()
    out = tmp_path / "out"
    r = segment(study, "-o", f"{out}/", "--output-format", "dicom-seg")
    assert r.returncode == 0, r.stderr
    uids = [m[f"lits117/{v}"]["series_uid"] for v in ("axial", "coronal", "flip-rows")]
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{u}.dcm" for u in uids)
    for u in uids:
        ds = pydicom.dcmread(out / f"{u}.dcm", stop_before_pixels=True)
        assert ds.Modality == "SEG"
        assert ds.ReferencedSeriesSequence[0].SeriesInstanceUID == u
