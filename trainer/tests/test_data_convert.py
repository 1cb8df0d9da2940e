"""Conversions: MRC -> NIfTI header and orientation (checked with nibabel), the brain mask on ch2's header, the
PNGs (checked with Pillow), and the synthetic lesion generator."""

import gzip
import io
import struct

import numpy as np
import nibabel as nib
import pytest
import mrcfile
import tifffile
from PIL import Image

from segment_data import convert, sources, synthetic_isic
from segment_data.errors import DataError
from segment_data.mrc import read_mrc

NZ, NY, NX = 4, 5, 6


def raw_header_floats(nii: bytes, offset: int, count: int):
    return struct.unpack(f"<{count}f", nii[offset:offset + 4 * count])


@pytest.fixture
def tiny_mrc(tmp_path):
    """A (NZ, NY, NX) float32 MRC whose voxel value encodes its position: 100 z + 10 y + x."""
    z, y, x = np.meshgrid(np.arange(NZ), np.arange(NY), np.arange(NX), indexing="ij")
    data = (100 * z + 10 * y + x).astype(np.float32)
    with mrcfile.new(str(tmp_path / "tiny.mrc")) as m:
        m.set_data(data)
    return read_mrc(str(tmp_path / "tiny.mrc"))


def test_lits_image_keeps_the_array_and_puts_mrc_x_on_the_third_axis(tiny_mrc):
    nii = convert.lits_nifti(tiny_mrc.data, "image")
    img = nib.Nifti1Image.from_bytes(nii)
    array = np.asarray(img.dataobj)
    assert array.shape == (NZ, NY, NX) and array.dtype == np.float32
    i, j, k = 3, 2, 5
    assert array[i, j, k] == 100 * i + 10 * j + k       # i = MRC section (z), j = row (y), k = column (x)


def test_lits_header_orientation_and_codes(tiny_mrc):
    nii = convert.lits_nifti(tiny_mrc.data, "image")
    img = nib.Nifti1Image.from_bytes(nii)
    h = img.header
    assert nib.aff2axcodes(img.affine) == ("L", "P", "S")
    expected = np.array([[-1, 0, 0, (NZ - 1) / 2], [0, -1, 0, (NY - 1) / 2], [0, 0, 1, -(NX - 1) / 2], [0, 0, 0, 1]])
    np.testing.assert_allclose(img.get_sform(), expected, atol=0)
    np.testing.assert_allclose(img.get_qform(), expected, atol=1e-6)   # the quaternion stores float32 values
    assert int(h["qform_code"]) == 2 and int(h["sform_code"]) == 2
    assert h["magic"] == b"n+1" and h.get_data_dtype() == np.float32
    assert raw_header_floats(nii, 108, 3) == (352.0, 1.0, 0.0)      # vox_offset, scl_slope, scl_inter
    np.testing.assert_array_equal(h["pixdim"][1:4], [1, 1, 1])
    assert h["pixdim"][0] == 1                                        # qfac
    assert h.get_xyzt_units() == ("mm", "sec")
    # The centre of the volume is the world origin.
    np.testing.assert_allclose(img.affine @ [(NZ - 1) / 2, (NY - 1) / 2, (NX - 1) / 2, 1], [0, 0, 0, 1])


def test_lits_label_header(tiny_mrc):
    labels = (tiny_mrc.data.astype(np.uint16) % 3)
    nii = convert.lits_nifti(labels, "label")
    img = nib.Nifti1Image.from_bytes(nii)
    h = img.header
    assert h.get_data_dtype() == np.uint8
    np.testing.assert_array_equal(np.asarray(img.dataobj), labels)
    assert int(h["intent_code"]) == 1002                             # NIFTI_INTENT_LABEL
    assert (float(h["cal_min"]), float(h["cal_max"])) == (0.0, 2.0)
    assert raw_header_floats(nii, 112, 2) == (1.0, 0.0)
    image = nib.Nifti1Image.from_bytes(convert.lits_nifti(tiny_mrc.data, "image"))
    np.testing.assert_array_equal(img.affine, image.affine)


def test_lits_refuses_wrong_voxel_types(tiny_mrc):
    with pytest.raises(DataError, match=r"LiTS label: expected integer labels 0, 1, 2, got uint16 values \[0, 3\]"):
        convert.lits_nifti(np.array([[[0, 3]]], dtype=np.uint16), "label")
    with pytest.raises(DataError, match="LiTS image: expected float voxels"):
        convert.lits_nifti(tiny_mrc.data.astype(np.int16), "image")


def test_gzip_is_deterministic():
    a, b = convert.gzip_bytes(b"same bytes"), convert.gzip_bytes(b"same bytes")
    assert a == b and a[4:8] == b"\x00\x00\x00\x00"          # no timestamp
    assert gzip.decompress(a) == b"same bytes"


def ch2_like(data, quatern_b=1.0):
    """A .nii.gz with ch2's header quirks: qform_code 0 with a non-zero quaternion, sform_code 4 (MNI), no units."""
    header = nib.Nifti1Header()
    header.set_data_dtype(np.uint8)
    affine = np.array([[1, 0, 0, -90], [0, 1, 0, -125], [0, 0, 1, -71], [0, 0, 0, 1.0]])
    header.set_sform(affine, code=4)
    header["qform_code"] = 0
    header["quatern_b"] = quatern_b
    header["descrip"] = b"spm - algebra"
    return convert.gzip_bytes(convert.nifti1_bytes(header, data))


def test_brain_mask_keeps_ch2_header():
    rng = np.random.default_rng(3)
    ch2 = rng.integers(0, 255, (7, 8, 9)).astype(np.uint8)
    bet = np.where(rng.random((7, 8, 9)) < 0.4, ch2, 0).astype(np.uint8)
    mask_nii = convert.brain_mask_nifti(ch2_like(ch2), ch2_like(bet))
    src = nib.Nifti1Header.from_fileobj(io.BytesIO(gzip.decompress(ch2_like(ch2))))
    out = nib.Nifti1Header.from_fileobj(io.BytesIO(mask_nii))
    for field in ("dim", "pixdim", "qform_code", "sform_code", "quatern_b", "quatern_c", "quatern_d", "qoffset_x",
                  "srow_x", "srow_y", "srow_z", "xyzt_units"):
        np.testing.assert_array_equal(out[field], src[field], err_msg=field)
    assert out.get_data_dtype() == np.uint8 and int(out["intent_code"]) == 1002
    assert raw_header_floats(mask_nii, 112, 2) == (1.0, 0.0)
    mask = np.asarray(nib.Nifti1Image.from_bytes(mask_nii).dataobj)
    np.testing.assert_array_equal(mask, (bet > 0).astype(np.uint8))


def test_brain_mask_refuses_another_grid():
    with pytest.raises(DataError, match=r"ch2bet \(7, 8, 8\) is not on ch2's grid \(7, 8, 9\)"):
        convert.brain_mask_nifti(ch2_like(np.zeros((7, 8, 9), np.uint8)), ch2_like(np.zeros((7, 8, 8), np.uint8)))


def tif(array):
    buf = io.BytesIO()
    tifffile.imwrite(buf, array)
    return buf.getvalue()


def test_nuclei_pngs_are_exact_8_bit_and_0_255():
    rng = np.random.default_rng(5)
    image = rng.integers(0, 256, sources.NUCLEI_SHAPE).astype(np.uint16)
    labels = np.zeros(sources.NUCLEI_SHAPE, np.uint16)
    labels[10:20, 10:20], labels[30:35, 40:50], labels[100:101, 7:9] = 4, 9, 200
    image_png, mask_png, instances, foreground = convert.nuclei_pngs(tif(image), tif(labels))
    with Image.open(io.BytesIO(image_png)) as im:
        assert im.mode == "L"
        np.testing.assert_array_equal(np.asarray(im), image)
    with Image.open(io.BytesIO(mask_png)) as m:
        assert m.mode == "L"
        np.testing.assert_array_equal(np.asarray(m), np.where(labels > 0, 255, 0))
    assert (instances, foreground) == (3, 100 + 50 + 2)


def test_nuclei_refuses_values_that_do_not_fit_8_bits():
    image = np.zeros(sources.NUCLEI_SHAPE, np.uint16)
    image[0, 0] = 256
    with pytest.raises(DataError, match=r"img2d: values 0\.\.256 do not fit 8 bits"):
        convert.nuclei_pngs(tif(image), tif(np.zeros(sources.NUCLEI_SHAPE, np.uint16)))


def test_retina_png_is_the_decoded_jpeg_in_rgb():
    y, x = np.indices(sources.RETINA_SIZE[::-1])
    rgb = np.stack([x % 256, y % 256, (x + y) % 256], -1).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG")
    with Image.open(io.BytesIO(buf.getvalue())) as j:
        decoded = np.asarray(j.convert("RGB"))
    with Image.open(io.BytesIO(convert.retina_png(buf.getvalue()))) as p:
        assert p.mode == "RGB"
        np.testing.assert_array_equal(np.asarray(p), decoded)
    small = io.BytesIO()
    Image.fromarray(rgb[:10, :12]).save(small, format="JPEG")
    with pytest.raises(DataError, match=r"retina\.jpg: size \(12, 10\), expected \(1411, 1411\)"):
        convert.retina_png(small.getvalue())


def test_synthetic_lesions_are_deterministic_and_look_like_lesions():
    images = [synthetic_isic.lesion_image(synthetic_isic.SEED, index) for index in range(3)]
    again_rgb, again_mask = synthetic_isic.lesion_image(synthetic_isic.SEED, 2)
    np.testing.assert_array_equal(images[2][0], again_rgb)
    np.testing.assert_array_equal(images[2][1], again_mask)
    for rgb, mask in images:
        assert rgb.dtype == np.uint8 and rgb.shape == (*mask.shape, 3)
        assert mask.shape in synthetic_isic.SIZES
        assert set(np.unique(mask).tolist()) == {0, 255}
        lesion = mask == 255
        assert 0.03 < lesion.mean() < 0.5
        luminance = rgb.astype(float) @ [0.299, 0.587, 0.114]
        assert luminance[lesion].mean() < luminance[~lesion].mean() - 30      # pigmented: darker than the skin
    other, _ = synthetic_isic.lesion_image(synthetic_isic.SEED + 1, 0)
    assert other.shape != images[0][0].shape or not np.array_equal(other, images[0][0])


def test_synthetic_names_and_readme():
    assert synthetic_isic.name(7) == "ISIC_synth00007"
    text = synthetic_isic.README.format(count=3, seed=11)
    assert text.startswith("SYNTHETIC DATA - NOT REAL DERMOSCOPY") and "seed 11" in text
