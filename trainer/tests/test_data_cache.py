"""The real cache made by `make data` (env SEGMENT_DATA): every file against the manifest, the pinned facts, the
LiTS-117 orientation against anatomy, and the conversion against mrcfile's reading of the packaged MRC files.
Skipped when there is no cache (the only skip of the data tests)."""

import io
import os
import zipfile

import numpy as np
import nibabel as nib
import mrcfile
from PIL import Image
import pytest

from segment_data import convert, fetch, load_lits117, manifest, sources, synthetic_isic

CACHE = os.environ.get("SEGMENT_DATA", "")


def check_manifest(cache):
    assert manifest.problems(cache) == []
    listed = set(manifest.load(cache))
    for _, outputs, _ in fetch.STEPS:
        assert set(outputs) <= listed
    on_disk = {os.path.relpath(os.path.join(d, f), cache) for d, _, fs in os.walk(cache) for f in fs}
    assert on_disk == listed | {manifest.MANIFEST}          # nothing unlisted, no temporary files left


def check_lits117(cache):
    image, label, affine = load_lits117(cache)
    assert image.shape == label.shape == sources.LITS117_SHAPE
    assert image.dtype == np.float32 and label.dtype == np.uint8
    assert dict(enumerate(np.bincount(label.ravel()).tolist())) == sources.LITS117_LABEL_COUNTS
    assert (float(image.min()), float(image.max())) == sources.LITS117_HU_RANGE
    np.testing.assert_array_equal(affine, convert.lits_affine(image.shape))
    with open(os.path.join(cache, "examples/liver-117.nii.gz"), "rb") as a, \
            open(os.path.join(cache, "lits117/image.nii.gz"), "rb") as b:
        assert a.read() == b.read()

    # Anatomy in world (RAS+) coordinates: the spine (bone, > 250 HU) lies to the patient's left of the liver and
    # behind it; air-filled lung (-950..-600 HU) sits above the liver, in the superior quarter.
    ijk = np.indices(image.shape).reshape(3, -1)
    world = affine[:3, :3] @ ijk + affine[:3, 3:]
    bone = world[:, (image > 250).ravel()].mean(1)
    liver = world[:, (label > 0).ravel()].mean(1)
    assert bone[0] < liver[0] - 10 and bone[1] < liver[1] - 10
    lung = (image > -950) & (image < -600)
    assert lung[:, :, 96:].mean() > 4 * lung[:, :, :32].mean()

    # The same voxels as mrcfile (the writer of these files) reads from the packaged MRC files.
    wheel = os.path.join(cache, "downloads", sources.LIVER.filename)
    with zipfile.ZipFile(wheel) as z:
        for member, expected in (("img_117.mrc", image), ("lab_117.mrc", label)):
            raw = z.read("liver_ct_segmentation_package/data/" + member)
            with mrcfile.mrcinterpreter.MrcInterpreter(io.BytesIO(raw)) as m:
                np.testing.assert_array_equal(np.asarray(m.data), expected)


def check_others(cache):
    ch2 = nib.load(os.path.join(cache, "brain/ch2.nii.gz"))
    mask = nib.load(os.path.join(cache, "brain/brainmask.nii.gz"))
    assert ch2.shape == mask.shape == sources.BRAIN_SHAPE
    np.testing.assert_array_equal(ch2.affine, mask.affine)
    assert int(np.count_nonzero(np.asarray(mask.dataobj))) == sources.BRAIN_VOXELS
    with Image.open(os.path.join(cache, "nuclei/image.png")) as im, \
            Image.open(os.path.join(cache, "nuclei/mask.png")) as m:
        assert (im.mode, m.mode, im.size, m.size) == ("L", "L", sources.NUCLEI_SHAPE, sources.NUCLEI_SHAPE)
        assert set(np.unique(np.asarray(m)).tolist()) == {0, 255}
    with Image.open(os.path.join(cache, "retina/retina.png")) as r:
        assert (r.mode, r.size) == ("RGB", sources.RETINA_SIZE)
    with open(os.path.join(cache, "synthetic-isic/README.txt")) as f:
        assert f.read().startswith("SYNTHETIC DATA")
    rgb, seg = synthetic_isic.lesion_image(synthetic_isic.SEED, 0)
    with Image.open(os.path.join(cache, "synthetic-isic/ISIC_synth00000.png")) as im, \
            Image.open(os.path.join(cache, "synthetic-isic/ISIC_synth00000_segmentation.png")) as m:
        np.testing.assert_array_equal(np.asarray(im), rgb)
        np.testing.assert_array_equal(np.asarray(m), seg)


@pytest.mark.skipif(not CACHE or not os.path.exists(os.path.join(CACHE, manifest.MANIFEST)),
                    reason="no data cache: run `make data` (SEGMENT_DATA names the folder)")
def test_real_cache_matches_manifest_and_facts():
    check_manifest(CACHE)
    check_lits117(CACHE)
    check_others(CACHE)
