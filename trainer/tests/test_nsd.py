"""`segment score --nsd` against DeepMind's surface-distance package (PyPI surface-distance 0.1, the definition
FLARE reports): LiTS-117's liver and tumour masks under an anisotropic header, with a prediction made from them,
per label, per region (--regions) and with --ignore-label; and the edge cases (empty masks, one voxel, masks
touching the image border, 2D).

Tolerance 1e-6 (absolute, on values in [0, 1]): both sides sum the same surfel areas of the same border elements;
what differs is the order of the sums (the package sorts its surfels) and the last bits of a few areas, about 1e-10.

LiTS-117 comes from the data cache made by `make data` ($SEGMENT_DATA, default ~/.cache/segment-data), which
`make test` fetches first; without it that test fails, saying how to get it.
"""
import csv
import json
import os
import subprocess
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

# surface-distance 0.1 writes np.Inf for a mask without border, which numpy 2 removed: the same value under its
# old name, so the package runs unchanged.
if not hasattr(np, "Inf"):
    np.Inf = np.inf
import surface_distance  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("SEGMENT_BIN") or REPO / ".build" / "release" / "segment")
CACHE = Path(os.path.expanduser(os.environ.get("SEGMENT_DATA") or "~/.cache/segment-data"))
TOLERANCE = 1e-6
TOLERANCES_MM = (0.5, 1, 2, 5)
ANISOTROPIC = (0.8, 0.7, 2.5)
# the package imports scipy.ndimage's deprecated submodules; nothing to act on here
pytestmark = pytest.mark.filterwarnings("ignore:Please import:DeprecationWarning")


def key(t):
    return f"nsd_{int(t)}mm" if float(t).is_integer() else f"nsd_{t}mm"


def save(array, path, spacing):
    """A label NIfTI with a diagonal affine of `spacing` (2D arrays as one slice)."""
    data = array.astype(np.uint8)
    if data.ndim == 2:
        data = data[:, :, None]
        spacing = tuple(spacing) + (1.0,)
    affine = np.diag(list(spacing) + [1.0])
    img = nib.Nifti1Image(data, affine)
    img.set_qform(affine, 1)
    img.set_sform(affine, 1)
    nib.save(img, path)


def score(tmp, pred, ref, spacing, *extra, tolerances=TOLERANCES_MM):
    save(pred, tmp / "pred.nii.gz", spacing)
    save(ref, tmp / "ref.nii.gz", spacing)
    report, table = tmp / "report.json", tmp / "cases.csv"
    r = subprocess.run([str(BIN), "score", "--pred", str(tmp / "pred.nii.gz"), "--ref", str(tmp / "ref.nii.gz"),
                        "--nsd", ",".join(map(str, tolerances)), "--json", str(report), "--csv", str(table), "-q",
                        *extra], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    with open(report) as f:
        return json.load(f), list(csv.DictReader(open(table)))


def expected(pred_mask, ref_mask, spacing, tolerances=TOLERANCES_MM):
    d = surface_distance.compute_surface_distances(ref_mask.astype(bool), pred_mask.astype(bool), list(spacing))
    with np.errstate(invalid="ignore"):       # both masks empty: 0 / 0, NaN as we report it
        return {key(t): float(surface_distance.compute_surface_dice_at_tolerance(d, t)) for t in tolerances}


def assert_close(got, want, what):
    for k, v in want.items():
        g = float(got[k])
        if np.isnan(v):
            assert np.isnan(g), (what, k, g, v)
        else:
            assert abs(g - v) <= TOLERANCE, (what, k, g, v)


@pytest.fixture(scope="module")
def lits_pair():
    label_file = CACHE / "lits117" / "label.nii.gz"
    if not label_file.is_file():
        pytest.fail(f"no LiTS-117 in the data cache {CACHE}: run `make data` (make test does)")
    ref = np.asarray(nib.load(label_file).dataobj, dtype=np.uint8)      # (128, 128, 128): 0, 1 liver, 2 tumour
    # A prediction as a network makes one: the liver grown by one voxel and moved, its tumour shrunk by one voxel,
    # a false positive blob elsewhere.
    liver = ndimage.shift(ndimage.binary_dilation(ref > 0), (1, -2, 0), order=0)
    tumour = ndimage.binary_erosion(ref == 2)
    pred = np.zeros_like(ref)
    pred[liver] = 1
    pred[tumour] = 2
    pred[100:106, 10:15, 60:70] = 2
    assert (ref == 1).sum() > 10000 and (ref == 2).sum() > 100 and tumour.sum() > 0
    return pred, ref


def test_lits117_anisotropic_labels_and_region(tmp_path, lits_pair):
    pred, ref = lits_pair
    report, rows = score(tmp_path, pred, ref, ANISOTROPIC, "--regions", "1+2")
    metrics = report["metric_per_case"][0]["metrics"]
    assert report["nsd_tolerances"] == list(map(float, TOLERANCES_MM))
    for label in (1, 2):
        assert_close(metrics[str(label)], expected(pred == label, ref == label, ANISOTROPIC), f"label {label}")
    assert_close(metrics["1+2"], expected(pred > 0, ref > 0, ANISOTROPIC), "region 1+2")
    # the values are not trivial: the tolerances separate them
    assert 0.2 < metrics["1"]["nsd_0.5mm"] < metrics["1"]["nsd_2mm"] < metrics["1"]["nsd_5mm"] <= 1
    # the CSV carries the same numbers
    by_label = {r["label"]: r for r in rows}
    for label in ("1", "2", "1+2"):
        for t in TOLERANCES_MM:
            assert abs(float(by_label[label][key(t)]) - metrics[label][key(t)]) <= 1e-12


def test_lits117_ignore_label(tmp_path, lits_pair):
    """--ignore-label 2: the tumour voxels of the reference are background in both images, for NSD as for HD."""
    pred, ref = lits_pair
    report, _ = score(tmp_path, pred, ref, ANISOTROPIC, "--ignore-label", "2", "--labels", "1")
    kept = ref != 2
    assert_close(report["metric_per_case"][0]["metrics"]["1"],
                 expected((pred == 1) & kept, (ref == 1) & kept, ANISOTROPIC), "label 1 with tumour ignored")


def blob(shape, centre, radii):
    g = np.indices(shape)
    return sum(((g[a] - centre[a]) / radii[a]) ** 2 for a in range(len(shape))) <= 1


EDGE_CASES = {
    # name: (prediction, reference), 3D unless 2D
    "one voxel each, apart": (np.pad([[[1]]], ((2, 5), (3, 1), (1, 1))), np.pad([[[1]]], ((4, 3), (3, 1), (1, 1)))),
    "one voxel, the same": (np.pad([[[1]]], ((2, 5), (3, 1), (1, 1))), np.pad([[[1]]], ((2, 5), (3, 1), (1, 1)))),
    "prediction empty": (np.zeros((6, 5, 4)), blob((6, 5, 4), (3, 2, 2), (2, 2, 1.5))),
    "reference empty": (blob((6, 5, 4), (3, 2, 2), (2, 2, 1.5)), np.zeros((6, 5, 4))),
    "touching the border": (np.ones((7, 6, 5)), blob((7, 6, 5), (0, 0, 4), (5, 4, 3))),
    "full image, cut face": (np.pad(np.ones((6, 6, 5)), ((0, 1), (0, 0), (0, 0))), np.ones((7, 6, 5))),
    "3D blobs, no cache needed": (blob((40, 36, 24), (19, 17, 12), (13, 11, 7)) | blob((40, 36, 24), (30, 8, 5), (4, 3, 2)),
                                  blob((40, 36, 24), (21, 16, 11), (12, 12, 8))),
    "2D blobs": (blob((40, 33), (18, 15), (12, 9)), blob((40, 33), (20, 14), (11, 10))),
    "2D touching the border": (blob((20, 17), (0, 8), (9, 6)), blob((20, 17), (1, 16), (8, 7))),
}


@pytest.mark.parametrize("name", EDGE_CASES)
def test_edge_cases(tmp_path, name):
    pred, ref = (np.asarray(a, dtype=np.uint8) for a in EDGE_CASES[name])
    spacing = ANISOTROPIC[:pred.ndim] if pred.ndim == 3 else (0.9, 0.6)
    report, _ = score(tmp_path, pred, ref, spacing, "--labels", "1")
    got = report["metric_per_case"][0]["metrics"]["1"]
    assert_close(got, expected(pred == 1, ref == 1, spacing), name)


def test_both_empty_is_nan(tmp_path):
    empty = np.zeros((5, 4, 3), np.uint8)
    report, _ = score(tmp_path, empty, empty, ANISOTROPIC, "--labels", "1")
    want = expected(empty == 1, empty == 1, ANISOTROPIC)
    assert all(np.isnan(v) for v in want.values())
    assert_close(report["metric_per_case"][0]["metrics"]["1"], want, "both empty")
    assert report["counts"]["1"]["excluded"][key(1)] == 1


def test_bad_tolerances_are_refused(tmp_path):
    for bad in ("-1", "1,x", "1,,2", "nan", "inf"):
        r = subprocess.run([str(BIN), "score", "--pred", "p.nii.gz", "--ref", "r.nii.gz", f"--nsd={bad}"],
                           capture_output=True, text=True, cwd=tmp_path)
        assert r.returncode == 2 and "--nsd takes tolerances" in r.stderr, (bad, r.returncode, r.stderr)
    r = subprocess.run([str(BIN), "score", "--merge", "a.json", "b.json", "--nsd", "1"], capture_output=True, text=True,
                       cwd=tmp_path)
    assert r.returncode == 2 and "--merge keeps the tolerances" in r.stderr, r.stderr


def test_tolerance_past_the_image(tmp_path):
    """A tolerance larger than the image (the distance-transform path, and a huge one): every border is within it."""
    pred, ref = (np.asarray(a, dtype=np.uint8) for a in EDGE_CASES["touching the border"])
    report, _ = score(tmp_path, pred, ref, ANISOTROPIC, "--labels", "1", tolerances=(40, 1e300))
    got = report["metric_per_case"][0]["metrics"]["1"]
    assert got["nsd_40mm"] == 1 and got["nsd_1e+300mm"] == 1

