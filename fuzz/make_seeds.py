"""Writes the seed corpora of the fuzz targets into fuzz/corpus/TARGET/ (committed; `make fuzz-seeds` reruns it).

Seeds are small valid (and a few nearly valid) inputs of every kind each parser accepts, so that libFuzzer starts
from files that reach deep into the parser instead of having to discover the format:
  nifti        NIfTI-1 and -2, every supported datatype, 2D/3D/4D, scaling, qform/sform, big-endian, extensions,
               plain and gzip
  nifti-gz     uncompressed NIfTI files (the harness gzips each input)
  png          every colour type and bit depth, palette with tRNS, 16-bit with alpha, Adam7, text and gamma chunks
  model        tiny Swin-UNet model files (f32, f16, bf16) from the independent Python writer
  pickle       legacy torch.save streams: small state_dicts of every dtype, views, nesting, a tiny Swin-UNet
  zip          torch.save zip archives of the same
  safetensors  the same as safetensors
  labels       label masks: NIfTI (uint8, int16, scaled) and PNG (0/255, raw labels, 16-bit)
  dicom        single-frame CT slices (12-bit, signed, 8-bit, MONOCHROME1), an enhanced multi-frame object with
               functional groups, and RLE, JPEG-LS and JPEG-lossless copies made by DCMTK's dcmcrle / dcmcjpls / dcmcjpeg
Usage: PYTHONPATH=trainer python fuzz/make_seeds.py [OUTDIR]   (default fuzz/corpus)
"""
import gzip
import io
import os
import shutil
import struct
import sys
import zlib
from collections import OrderedDict

import nibabel as nib
import numpy as np
import torch
from safetensors.torch import save as safetensors_bytes

import segment_format_py as fmt
from segment_torch import SwinUNet, SwinUNetConfig, engine_tensors

# The smallest configuration with both kinds of stage: stage 0 has 4x4 tokens in 2x2 windows (shifted), stage 1
# 2x2 tokens in one window.
TINY = SwinUNetConfig(img_size=16, patch_size=4, in_chans=1, num_classes=2, embed_dim=4, depths=[2, 2],
                      num_heads=[1, 2], window_size=2, mlp_ratio=1.0)


class Corpus:
    def __init__(self, root: str, target: str):
        self.dir = os.path.join(root, target)
        if os.path.isdir(self.dir):
            shutil.rmtree(self.dir)
        os.makedirs(self.dir)

    def add(self, name: str, data: bytes) -> None:
        with open(os.path.join(self.dir, name), "wb") as f:
            f.write(data)


# NIfTI

def nifti_bytes(a: np.ndarray, version: int = 1, affine=None, big_endian: bool = False, slope=None, inter=None,
                qform_only: bool = False, extension: bool = False, zooms=None) -> bytes:
    cls = nib.Nifti1Image if version == 1 else nib.Nifti2Image
    img = cls(a, np.eye(4) if affine is None else affine, dtype=a.dtype)
    h = img.header
    if zooms is not None:
        h.set_zooms(zooms)
    if qform_only:
        img.set_sform(None, code=0)
        img.set_qform(img.affine, code=1)
    if slope is not None:
        h["scl_slope"], h["scl_inter"] = slope, inter if inter is not None else 0
    if extension:
        h.extensions.append(nib.nifti1.Nifti1Extension(6, b"fuzz seed comment\0\0\0\0\0\0\0"))
    if big_endian:
        img = cls(a.astype(a.dtype.newbyteorder(">")), img.affine, h.as_byteswapped(">"), dtype=a.dtype.newbyteorder(">"))
    buf = io.BytesIO()
    file_map = cls.make_file_map({"image": buf, "header": buf})
    img.to_file_map(file_map)
    return buf.getvalue()


def rotation(theta: float) -> np.ndarray:
    c, s = np.cos(theta), np.sin(theta)
    m = np.eye(4)
    m[:3, :3] = [[c * 1.5, -s, 0], [s * 1.5, c, 0], [0, 0, 2.0]]
    m[:3, 3] = [-10, 4.5, 30]
    return m


def nifti_seeds(rng) -> list[tuple[str, bytes]]:
    seeds = []
    for dt in ("uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64", "float32", "float64"):
        a = (rng.integers(0, 100, (5, 4, 3))).astype(dt)
        seeds.append((f"{dt}.nii", nifti_bytes(a)))
    seeds.append(("n2_int16.nii", nifti_bytes(rng.integers(-50, 50, (4, 3, 2)).astype("int16"), version=2)))
    seeds.append(("n2_float32_oblique.nii", nifti_bytes(rng.standard_normal((3, 4, 2)).astype("float32"), version=2,
                                                       affine=rotation(0.4))))
    seeds.append(("two_d.nii", nifti_bytes(rng.integers(0, 3, (6, 5)).astype("uint8"))))
    seeds.append(("one_d.nii", nifti_bytes(rng.integers(0, 3, (7,)).astype("uint8"))))
    seeds.append(("four_d.nii", nifti_bytes(rng.standard_normal((3, 3, 2, 3)).astype("float32"))))
    seeds.append(("scaled.nii", nifti_bytes(rng.integers(0, 9, (4, 4, 2)).astype("int16"), slope=0.5, inter=-3.0)))
    seeds.append(("qform.nii", nifti_bytes(rng.integers(0, 9, (4, 3, 2)).astype("int16"), affine=rotation(-0.7),
                                           qform_only=True)))
    flip = np.diag([-1.0, -2.0, 1.5, 1.0])
    seeds.append(("lps.nii", nifti_bytes(rng.integers(0, 9, (3, 4, 2)).astype("uint8"), affine=flip)))
    seeds.append(("big_endian.nii", nifti_bytes(rng.standard_normal((4, 3, 2)).astype("float64"), big_endian=True)))
    seeds.append(("big_endian_n2.nii", nifti_bytes(rng.integers(0, 500, (3, 3, 3)).astype("int32"), version=2,
                                                   big_endian=True)))
    seeds.append(("extension.nii", nifti_bytes(rng.integers(0, 9, (3, 3, 2)).astype("uint8"), extension=True)))
    seeds.append(("nan_inf.nii", nifti_bytes(np.array([[[np.nan, np.inf], [-np.inf, 1.5]]], dtype="float32"))))
    return seeds


# PNG, written here chunk by chunk so every colour type, depth and interlacing can be made

def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def pack_row(samples: np.ndarray, depth: int) -> bytes:
    if depth == 16:
        return samples.astype(">u2").tobytes()
    if depth == 8:
        return samples.astype("u1").tobytes()
    per = 8 // depth
    out = bytearray()
    for i in range(0, len(samples), per):
        byte = 0
        for j, v in enumerate(samples[i:i + per]):
            byte |= int(v) << (8 - depth * (j + 1))
        out.append(byte)
    return bytes(out)


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def png_bytes(pixels: np.ndarray, color_type: int, depth: int, interlace: bool = False, palette=None, trns=None,
              extra: list[tuple[bytes, bytes]] = ()) -> bytes:
    """pixels: (H, W, channels) integer samples (palette indices for colour type 3)."""
    h, w = pixels.shape[:2]
    rows = []
    passes = ADAM7 if interlace else [(0, 0, 1, 1)]
    for x0, y0, dx, dy in passes:
        sub = pixels[y0::dy, x0::dx]
        if sub.shape[0] == 0 or sub.shape[1] == 0:
            continue
        for r in sub:
            rows.append(b"\0" + pack_row(r.reshape(-1), depth))
    ihdr = struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, 1 if interlace else 0)
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
    for kind, data in extra:
        out += chunk(kind, data)
    if palette is not None:
        out += chunk(b"PLTE", bytes(np.asarray(palette, dtype="u1").reshape(-1)))
    if trns is not None:
        out += chunk(b"tRNS", trns)
    out += chunk(b"IDAT", zlib.compress(b"".join(rows), 9))
    return out + chunk(b"IEND", b"")


def png_seeds(rng) -> list[tuple[str, bytes]]:
    seeds = []
    for depth in (1, 2, 4, 8, 16):
        px = rng.integers(0, 2 ** depth, (5, 7, 1))
        seeds.append((f"gray{depth}.png", png_bytes(px, 0, depth)))
    for depth in (8, 16):
        seeds.append((f"rgb{depth}.png", png_bytes(rng.integers(0, 2 ** depth, (4, 5, 3)), 2, depth)))
        seeds.append((f"gray_alpha{depth}.png", png_bytes(rng.integers(0, 2 ** depth, (4, 3, 2)), 4, depth)))
        seeds.append((f"rgba{depth}.png", png_bytes(rng.integers(0, 2 ** depth, (3, 4, 4)), 6, depth)))
    for depth in (1, 2, 4, 8):
        n = 2 ** depth
        pal = rng.integers(0, 256, (n, 3))
        seeds.append((f"palette{depth}.png", png_bytes(rng.integers(0, n, (4, 9, 1)), 3, depth, palette=pal)))
    pal = rng.integers(0, 256, (4, 3))
    seeds.append(("palette_trns.png", png_bytes(rng.integers(0, 4, (5, 5, 1)), 3, 8, palette=pal, trns=b"\x00\x80\xff")))
    seeds.append(("gray_trns.png", png_bytes(rng.integers(0, 256, (3, 3, 1)), 0, 8, trns=b"\x00\x07")))
    seeds.append(("interlaced_gray8.png", png_bytes(rng.integers(0, 256, (9, 11, 1)), 0, 8, interlace=True)))
    seeds.append(("interlaced_rgb16.png", png_bytes(rng.integers(0, 65536, (9, 10, 3)), 2, 16, interlace=True)))
    seeds.append(("interlaced_gray1.png", png_bytes(rng.integers(0, 2, (10, 9, 1)), 0, 1, interlace=True)))
    seeds.append(("gamma_text.png", png_bytes(rng.integers(0, 256, (3, 4, 3)), 2, 8,
                                              extra=[(b"gAMA", struct.pack(">I", 45455)),
                                                     (b"tEXt", b"Comment\0fuzz seed"),
                                                     (b"zTXt", b"Note\0\0" + zlib.compress(b"compressed text"))])))
    seeds.append(("srgb.png", png_bytes(rng.integers(0, 65536, (3, 3, 1)), 0, 16, extra=[(b"sRGB", b"\0")])))
    seeds.append(("one_pixel.png", png_bytes(np.array([[[200]]]), 0, 8)))
    return seeds


# Model files

def model_seeds() -> list[tuple[str, bytes]]:
    torch.manual_seed(0)
    tensors = engine_tensors(SwinUNet(TINY))
    cfg = dict(img_size=TINY.img_size, patch_size=TINY.patch_size, in_chans=TINY.in_chans,
               num_classes=TINY.num_classes, embed_dim=TINY.embed_dim, depths=list(TINY.depths),
               num_heads=list(TINY.num_heads), window_size=TINY.window_size, mlp_ratio=TINY.mlp_ratio)
    base = {
        "general.architecture": "swin-unet",
        "general.class_names": ["background", "organ"],
        "general.source_sha256": "0" * 64,
        "general.converter_version": "make_seeds.py",
        **{f"swin_unet.{k}": v for k, v in cfg.items()},
    }
    preprocessing = {"preprocessing.channels": "gray", "preprocessing.intensity": "window",
                     "preprocessing.window_lo": -100.0, "preprocessing.window_hi": 240.0,
                     "preprocessing.slice_axis": 2, "preprocessing.row_axis": 1, "preprocessing.col_axis": 0,
                     "preprocessing.orientation": "LPS", "preprocessing.image_order": 3,
                     "preprocessing.label_order": 0}
    variants = [
        ("f32", "f32", {"provenance.seed": "1"}),
        ("f16", "f16", {"preprocessing.intensity": "minmax", "preprocessing.orientation": "",
                        "preprocessing.slice_axis": 0, "preprocessing.row_axis": 2, "preprocessing.col_axis": 1}),
        ("bf16", "bf16", {"preprocessing.intensity": "zscore", "preprocessing.image_order": 1,
                          "provenance.note": "µm"}),
    ]
    seeds = []
    for name, dtype, extra in variants:
        path = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"segment-seed-{os.getpid()}.segm")
        arrays = {n: (a.astype(np.float32) if hasattr(a, "astype") else a.numpy().astype(np.float32))
                  for n, a in tensors.items()}
        fmt.write(path, {**base, **preprocessing, **extra}, [(n, arrays[n], dtype) for n in tensors])
        with open(path, "rb") as f:
            seeds.append((f"tiny_{name}.segm", f.read()))
        os.unlink(path)
    return seeds


# Checkpoints

def small_state_dicts(rng) -> list[tuple[str, object]]:
    """(name, object to save): small dicts of every dtype, views, nesting, and the tiny Swin-UNet."""
    g = torch.Generator().manual_seed(1)
    dtypes = OrderedDict()
    for dt in (torch.float32, torch.float16, torch.bfloat16, torch.float64, torch.int64, torch.int32, torch.int16,
               torch.int8, torch.uint8, torch.bool):
        t = (torch.randn(3, 2, generator=g) * 10).to(dt)
        dtypes["w_" + str(dt).removeprefix("torch.")] = t
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    views = OrderedDict(transposed=base.t(), sliced=base[1:3, 2:5], strided=base[:, ::2], shared=base,
                        scalar=torch.tensor(2.5), empty=torch.zeros(0, 3))
    torch.manual_seed(3)
    swin = SwinUNet(TINY).state_dict()
    return [("dtypes", dtypes), ("views", views), ("nested_model", {"model": dtypes, "epoch": 3}),
            ("nested_state_dict", {"state_dict": views, "optimizer": {"lr": 0.01, "betas": (0.9, 0.99)}}),
            ("swin_tiny", swin)]


def torch_bytes(obj, legacy: bool) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf, _use_new_zipfile_serialization=not legacy)
    return buf.getvalue()


def checkpoint_seeds(rng) -> dict[str, list[tuple[str, bytes]]]:
    out = {"pickle": [], "zip": [], "safetensors": []}
    for name, obj in small_state_dicts(rng):
        out["pickle"].append((f"{name}.pth", torch_bytes(obj, legacy=True)))
        out["zip"].append((f"{name}.pth", torch_bytes(obj, legacy=False)))
        flat = obj if all(isinstance(v, torch.Tensor) for v in obj.values()) else None
        if flat is not None:
            # safetensors refuses shared storage and non-contiguous views: each tensor is saved as its own copy.
            tensors = {k: v.contiguous().clone() for k, v in flat.items()}
            meta = {"format": "pt", "seed": name}
            out["safetensors"].append((f"{name}.safetensors", safetensors_bytes(tensors, metadata=meta)))
    return out


# Label masks for score

def label_seeds(rng) -> list[tuple[str, bytes]]:
    seeds = []
    a = np.zeros((8, 7, 3), dtype="uint8")
    a[2:6, 1:5, 1] = 1
    a[3:5, 2:4, 1:3] = 2
    seeds.append(("labels_uint8.nii", nifti_bytes(a, zooms=(0.8, 0.8, 2.5))))
    b = np.zeros((9, 9), dtype="int16")
    b[2:7, 3:6] = 1
    seeds.append(("labels_int16_2d.nii", nifti_bytes(b)))
    seeds.append(("labels_scaled.nii", nifti_bytes((a * 2).astype("int16"), slope=0.5, inter=0.0)))
    seeds.append(("labels_float.nii", nifti_bytes(a.astype("float32"), version=2, affine=rotation(0.2))))
    m = np.zeros((8, 10, 1), dtype="uint8")
    m[2:6, 3:8] = 255
    seeds.append(("mask_binary.png", png_bytes(m, 0, 8)))
    seeds.append(("mask_labels.png", png_bytes((m // 255) * rng.integers(1, 4, m.shape), 0, 8)))
    seeds.append(("mask16.png", png_bytes((m.astype("u2") // 255) * 65535, 0, 16)))
    seeds.append(("mask1bit.png", png_bytes(m // 255, 0, 1)))
    return seeds


def dicom_seeds(rng) -> list[tuple[str, bytes]]:
    import subprocess
    import tempfile
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian
    from fixtures.gen_hostile import dicom_slice
    seeds = [("ct12.dcm", dicom_slice(0, rows=6, cols=5))]

    def edited(name, **attrs):
        def edit(d):
            for k, v in attrs.items():
                setattr(d, k, v)
        seeds.append((name, dicom_slice(1, rows=5, cols=4, edit=edit)))
    edited("signed16.dcm", PixelRepresentation=1, BitsStored=16, HighBit=15)
    edited("monochrome1.dcm", PhotometricInterpretation="MONOCHROME1")
    seeds.append(("uint8.dcm", dicom_slice(2, rows=4, cols=4, pixels=rng.integers(0, 256, (4, 4)).astype(np.uint8),
                                           edit=lambda d: (setattr(d, "BitsAllocated", 8), setattr(d, "BitsStored", 8),
                                                           setattr(d, "HighBit", 7)))))

    # Enhanced CT: two frames placed by per-frame PlanePositionSequence, shared orientation and pixel measures.
    def enhanced(d):
        d.SOPClassUID = d.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2.1"
        d.NumberOfFrames = 2
        for a in ["ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "SliceThickness",
                  "RescaleIntercept", "RescaleSlope"]:
            delattr(d, a)
        shared = Dataset()
        o, m, t = Dataset(), Dataset(), Dataset()
        o.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        m.PixelSpacing, m.SliceThickness = [0.5, 0.5], 1.0
        t.RescaleIntercept, t.RescaleSlope, t.RescaleType = -1024, 1, "HU"
        shared.PlaneOrientationSequence, shared.PixelMeasuresSequence = Sequence([o]), Sequence([m])
        shared.PixelValueTransformationSequence = Sequence([t])
        d.SharedFunctionalGroupsSequence = Sequence([shared])
        frames = []
        for k in range(2):
            f, p = Dataset(), Dataset()
            p.ImagePositionPatient = [0, 0, float(k)]
            f.PlanePositionSequence = Sequence([p])
            frames.append(f)
        d.PerFrameFunctionalGroupsSequence = Sequence(frames)
        d.PixelData = rng.integers(0, 4000, (2, 4, 3)).astype(np.uint16).tobytes()
    seeds.append(("enhanced_ct.dcm", dicom_slice(0, rows=4, cols=3, edit=enhanced)))

    # Compressed copies by DCMTK's own encoders.
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "src.dcm")
        with open(src, "wb") as f:
            f.write(dicom_slice(3, rows=8, cols=8))
        for name, tool in [("rle.dcm", ["dcmcrle"]), ("jpeg_ls.dcm", ["dcmcjpls"]), ("jpeg_lossless.dcm", ["dcmcjpeg"])]:
            out = os.path.join(tmp, name)
            subprocess.run(tool + [src, out], check=True)
            with open(out, "rb") as f:
                seeds.append((name, f.read()))
    return seeds


def main(root: str) -> None:
    rng = np.random.default_rng(20261205)
    nifti = nifti_seeds(rng)
    c = Corpus(root, "nifti")
    for name, data in nifti:
        c.add(name, data)
    for name, data in nifti[::3]:
        c.add(name + ".gz", gzip.compress(data, mtime=0))
    c = Corpus(root, "nifti-gz")
    for name, data in nifti:
        c.add(name, data)
    c = Corpus(root, "png")
    for name, data in png_seeds(rng):
        c.add(name, data)
    c = Corpus(root, "model")
    for name, data in model_seeds():
        c.add(name, data)
    for target, seeds in checkpoint_seeds(rng).items():
        c = Corpus(root, target)
        for name, data in seeds:
            c.add(name, data)
    c = Corpus(root, "labels")
    for name, data in label_seeds(rng):
        c.add(name, data)
    for name, data in label_seeds(rng)[:2]:
        c.add(name + ".gz", gzip.compress(data, mtime=0))
    c = Corpus(root, "dicom")
    for name, data in dicom_seeds(np.random.default_rng(14)):
        c.add(name, data)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus"))
