"""Conversions of the fetched files into the cache's formats. Pure functions: bytes or arrays in, bytes out.

LiTS-117 (MRC -> NIfTI-1). The MRC files store a 128^3 crop of LiTS training case 117, as mrcfile's (NZ, NY, NX)
array. Looking at the data (docs/DATA.md has the evidence) that array is the crop in the usual LiTS/DICOM layout:
    array axis 0 (MRC sections, z) runs from the patient's right to left    -> NIfTI i, toward L
    array axis 1 (MRC rows, y)     runs from anterior to posterior           -> NIfTI j, toward P
    array axis 2 (MRC columns, x)  runs from inferior to superior (axial)    -> NIfTI k, toward S
so the array is stored unchanged as NIfTI (i, j, k), the third axis axial, with the RAS+ affine diag(-s, -s, s)
(axis codes "LPS"), centred on the volume, as qform and sform with code 2 (aligned to anatomy: the directions are
anatomical truth, the origin is not a scanner position). The MRC stores no voxel size (CELLA = 0): the spacing is a
nominal LITS117_SPACING_MM, isotropic.
"""

import gzip
import io

import numpy as np
import nibabel as nib
from PIL import Image
import tifffile

from .errors import DataError
from . import sources

LITS117_SPACING_MM = 1.0
LITS117_CLASSES = ("background", "liver", "tumour")
XFORM_ALIGNED_ANAT = 2


def lits_affine(shape: tuple, spacing: float = LITS117_SPACING_MM) -> np.ndarray:
    """RAS+ affine of the LiTS crop: i -> left, j -> posterior, k -> superior; the volume's centre at (0, 0, 0)."""
    axes = np.diag([-spacing, -spacing, spacing])
    centre = (np.asarray(shape, dtype=float) - 1) / 2
    affine = np.eye(4)
    affine[:3, :3] = axes
    affine[:3, 3] = -axes @ centre
    return affine


def nifti1_bytes(header: nib.Nifti1Header, data: np.ndarray) -> bytes:
    """A single-file NIfTI-1 (.nii) image: `header` (its datatype must be data's), no extension, data in F order."""
    if header.get_data_dtype() != data.dtype.newbyteorder(header.endianness):
        raise ValueError(f"header datatype {header.get_data_dtype()} != data {data.dtype}")
    header = header.copy()
    header.set_data_shape(data.shape)
    header["vox_offset"] = 352
    body = np.asarray(data, dtype=header.get_data_dtype()).tobytes(order="F")
    return header.binaryblock + b"\x00\x00\x00\x00" + body


def gzip_bytes(data: bytes) -> bytes:
    """gzip with no timestamp or file name: the same input gives the same bytes."""
    return gzip.compress(data, compresslevel=6, mtime=0)


def lits_nifti(data: np.ndarray, kind: str, spacing: float = LITS117_SPACING_MM) -> bytes:
    """The MRC array (NZ, NY, NX) of the LiTS crop as .nii bytes: kind "image" (float32 HU) or "label" (uint8)."""
    header = nib.Nifti1Header()
    header.set_data_shape(data.shape)
    if kind == "image":
        if data.dtype.kind != "f":
            raise DataError(f"LiTS image: expected float voxels (MRC mode 2), got {data.dtype}")
        values = data.astype(np.float32)
        header.set_data_dtype(np.float32)
        header["descrip"] = b"LiTS case 117 crop, HU; spacing unknown, nominal 1 mm"
    elif kind == "label":
        present = set(np.unique(data).tolist())
        if data.dtype.kind not in "iu" or not present <= set(range(len(LITS117_CLASSES))):
            raise DataError(f"LiTS label: expected integer labels 0, 1, 2, got {data.dtype} values {sorted(present)}")
        values = data.astype(np.uint8)
        header.set_data_dtype(np.uint8)
        header.set_intent("label")
        header["cal_min"], header["cal_max"] = 0, len(LITS117_CLASSES) - 1
        header["descrip"] = b"LiTS case 117 labels: 0 background, 1 liver, 2 tumour"
    else:
        raise ValueError(f"kind {kind!r}")
    affine = lits_affine(data.shape, spacing)
    header.set_qform(affine, code=XFORM_ALIGNED_ANAT)
    header.set_sform(affine, code=XFORM_ALIGNED_ANAT)
    header.set_xyzt_units("mm", "sec")
    header.set_slope_inter(1.0, 0.0)
    return nifti1_bytes(header, values)


def brain_mask_nifti(ch2_gz: bytes, ch2bet_gz: bytes) -> bytes:
    """brain = ch2bet > 0 as uint8 label .nii bytes on ch2's header (dim, pixdim, qform, sform kept as they are)."""
    ch2 = nib.Nifti1Image.from_bytes(gzip.decompress(ch2_gz))
    bet = nib.Nifti1Image.from_bytes(gzip.decompress(ch2bet_gz))
    if ch2.shape != bet.shape or not np.allclose(ch2.affine, bet.affine):
        raise DataError(f"mricron-data: ch2bet {bet.shape} is not on ch2's grid {ch2.shape}")
    mask = (np.asarray(bet.dataobj) > 0).astype(np.uint8)
    # from_bytes moved ch2's scaling into the array proxy; its header block is read again from the raw bytes.
    header = nib.Nifti1Header.from_fileobj(io.BytesIO(gzip.decompress(ch2_gz)))
    header.set_data_dtype(np.uint8)
    header.set_slope_inter(1.0, 0.0)
    header.set_intent("label")
    header["cal_min"], header["cal_max"] = 0, 1
    header["descrip"] = b"brain mask = ch2bet > 0 (mricron-data)"
    return nifti1_bytes(header, mask)


def png_bytes(array: np.ndarray) -> bytes:
    """PNG of a uint8 (H, W) gray or (H, W, 3) RGB array."""
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def nuclei_pngs(image_tif: bytes, mask_tif: bytes) -> tuple:
    """stardist's img2d (uint16, values <= 255) as an exact 8-bit gray PNG, mask2d's instances as a 0/255 PNG,
    and counts to check: (image_png, mask_png, instances, foreground_pixels)."""
    image = tifffile.imread(io.BytesIO(image_tif))
    labels = tifffile.imread(io.BytesIO(mask_tif))
    if image.shape != sources.NUCLEI_SHAPE or labels.shape != image.shape:
        raise DataError(f"stardist img2d/mask2d: shapes {image.shape}/{labels.shape}, expected {sources.NUCLEI_SHAPE}")
    if image.min() < 0 or image.max() > 255:
        raise DataError(f"stardist img2d: values {image.min()}..{image.max()} do not fit 8 bits exactly")
    mask = np.where(labels > 0, 255, 0).astype(np.uint8)
    instances = len(np.unique(labels)) - 1
    return png_bytes(image.astype(np.uint8)), png_bytes(mask), instances, int(np.count_nonzero(mask))


def retina_png(jpeg: bytes) -> bytes:
    """scikit-image's retina.jpg decoded to RGB and stored as PNG."""
    with Image.open(io.BytesIO(jpeg)) as im:
        rgb = np.asarray(im.convert("RGB"))
    if rgb.shape[1::-1] != sources.RETINA_SIZE:
        raise DataError(f"retina.jpg: size {rgb.shape[1::-1]}, expected {sources.RETINA_SIZE}")
    return png_bytes(rgb)
