"""Shared by the DICOM tests (test_dicom*.py, test_orthanc.py): where the fixtures and tools are, running segment and
dcm2niix, the geometry of a series computed with pydicom alone, and comparing masks in world space."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("SEGMENT_BIN") or REPO / ".build" / "release" / "segment").resolve()
FIXTURES = Path(os.environ.get("SEGMENT_FIXTURES") or REPO / ".fixtures")
DICOM = FIXTURES / "dicom"
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
# Affines agree within 1e-4 mm: DICOM stores positions as decimal strings of at most 16 characters (the fixtures
# write 6 decimals) and dcm2niix writes float32 affines (7 significant digits, 1e-5 mm at 100 mm); a real mistake
# (a swapped spacing, a flipped axis, an off-by-one slice) moves the grid by at least 0.1 mm.
AFFINE_TOL_MM = 1e-4


def need(tool: str, package: str) -> str:
    """The path of a tool; a missing tool fails the test (make setup installs the package), never skips it."""
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is not installed: Debian package {package} (`make setup` installs it)")
    return path


def manifest() -> dict:
    p = DICOM / "manifest.json"
    if not p.is_file():
        pytest.fail(f"no DICOM fixtures at {DICOM}: run `make fixtures` (trainer/fixtures/gen_dicom.py)")
    return json.loads(p.read_text())


def segment(*args, timeout: float = 600) -> subprocess.CompletedProcess:
    assert BIN.is_file(), f"no segment executable at {BIN}: run `make build` or set SEGMENT_BIN"
    env = dict(os.environ)
    env.pop("SEGMENT_MODEL", None)           # the shipped default model, as a user gets it
    return subprocess.run([str(BIN), *map(str, args)], capture_output=True, text=True, timeout=timeout, env=env)


def dcm2niix(series: Path, out: Path, name: str) -> Path:
    """dcm2niix's NIfTI of a series folder: the independent reference reader."""
    need("dcm2niix", "dcm2niix")
    out.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["dcm2niix", "-z", "y", "-f", name, "-o", str(out), str(series)], capture_output=True,
                       text=True, timeout=300)
    made = sorted(out.glob(f"{name}*.nii.gz"))
    assert r.returncode == 0 and len(made) == 1, f"dcm2niix {series}: {r.returncode} {made}\n{r.stdout}\n{r.stderr}"
    return made[0]


def world(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(affine, array) of a NIfTI reoriented to the closest RAS+ voxel order, so that two images of the same grid
    stored in different voxel orders compare element by element."""
    img = nib.as_closest_canonical(nib.load(str(path)))
    return img.affine, np.asarray(img.dataobj)


def assert_same_world(a, b, what: str) -> None:
    """Two images (paths or (affine, array)) hold the same voxels at the same places: affines within AFFINE_TOL_MM,
    arrays equal voxel for voxel."""
    aa, av = world(a) if isinstance(a, Path) else a
    ba, bv = world(b) if isinstance(b, Path) else b
    assert av.shape == bv.shape, f"{what}: shapes {av.shape} and {bv.shape}"
    err = float(np.abs(aa - ba).max())
    assert err <= AFFINE_TOL_MM, f"{what}: affines differ by {err} mm\n{aa}\n{ba}"
    diff = int(np.count_nonzero(av != bv))
    assert diff == 0, f"{what}: {diff} of {av.size} voxels differ (labels {np.unique(av)} vs {np.unique(bv)})"


def dicom_files(folder: Path) -> list[Path]:
    """The image files of a folder (subfolders included), read by pydicom: DICOMDIR and non-DICOM files left out."""
    out = []
    for p in sorted(folder.rglob("*")):
        if not p.is_file() or p.name == "DICOMDIR":
            continue
        try:
            ds = pydicom.dcmread(p, stop_before_pixels=True)
        except Exception:
            continue
        if "SOPClassUID" in ds and "Rows" in ds:
            out.append(p)
    return out


def series_geometry(folder: Path) -> dict:
    """The grid of a single-frame series computed with pydicom from its attributes: SOP instance UIDs sorted along
    the slice normal n = row x column, and the RAS affine mapping voxel (i column, j row, k sorted slice)."""
    dss = [pydicom.dcmread(p, stop_before_pixels=True) for p in dicom_files(folder)]
    iop = np.array(dss[0].ImageOrientationPatient, dtype=float)
    row, col = iop[:3], iop[3:]
    n = np.cross(row, col)
    dss.sort(key=lambda d: float(np.dot(n, np.array(d.ImagePositionPatient, dtype=float))))
    pos = np.array([d.ImagePositionPatient for d in dss], dtype=float)
    dr, dc = (float(x) for x in dss[0].PixelSpacing)     # between rows, between columns
    lps = np.eye(4)
    lps[:3, 0] = row * dc
    lps[:3, 1] = col * dr
    lps[:3, 2] = (pos[-1] - pos[0]) / (len(pos) - 1) if len(pos) > 1 else n * float(dss[0].SliceThickness)
    lps[:3, 3] = pos[0]
    return {"uids": [d.SOPInstanceUID for d in dss], "positions": pos, "affine": LPS_TO_RAS @ lps,
            "shape": (int(dss[0].Columns), int(dss[0].Rows), len(dss)), "series_uid": dss[0].SeriesInstanceUID,
            "study_uid": dss[0].StudyInstanceUID, "frame_of_reference": dss[0].FrameOfReferenceUID,
            "patient_id": dss[0].PatientID}
