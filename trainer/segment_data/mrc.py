"""A reader for MRC volumes (the MRC2014 format of cryo-EM, as written by the mrcfile package).

Layout: a 1024-byte header of 4-byte words, then NSYMBT bytes of extended header, then the voxels, columns fastest:
    word  1-3  (byte   0) NX, NY, NZ   int32   columns, rows, sections
    word  4    (byte  12) MODE         int32   voxel type (MODES below)
    word  8-10 (byte  28) MX, MY, MZ   int32   sampling along x, y, z
    word 11-13 (byte  40) CELLA        float32 cell size in angstrom (0 when no size is stored)
    word 17-19 (byte  64) MAPC/R/S     int32   which axis (1 x, 2 y, 3 z) columns, rows, sections run along
    word 24    (byte  92) NSYMBT       int32   extended header size in bytes
    word 54    (byte 212) MACHST       4 bytes 0x44 0x44/0x41 little-endian, 0x11 0x11 big-endian
    word 56    (byte 220) NLABL        int32   number of 80-character labels used (bytes 224..1023)
The voxel array is returned in file order as (NZ, NY, NX) = (sections, rows, columns), like mrcfile's `data`.
"""

from dataclasses import dataclass

import numpy as np

from .errors import DataError

HEADER_BYTES = 1024

# MODE -> numpy dtype (byte order applied on read). Complex (3, 4) and packed 4-bit (101) volumes are refused.
MODES = {0: "i1", 1: "i2", 2: "f4", 6: "u2", 12: "f2"}
MODE_NAMES = {0: "int8", 1: "int16", 2: "float32", 3: "complex int16", 4: "complex float32", 6: "uint16",
              12: "float16", 101: "packed 4-bit"}


@dataclass
class MrcVolume:
    data: np.ndarray            # (NZ, NY, NX) sections x rows x columns, native byte order
    mode: int
    mapcrs: tuple               # (MAPC, MAPR, MAPS), a permutation of (1, 2, 3)
    voxel_size: tuple | None    # (x, y, z) in angstrom = CELLA / (MX, MY, MZ); None when the file stores no size
    nsymbt: int                 # bytes of extended header skipped
    big_endian: bool
    labels: list                # the NLABL text labels


def _byte_order(header: bytes) -> str:
    machst = header[212:214]
    if machst == b"\x11\x11":
        return ">"
    return "<"  # 0x44 0x44 / 0x44 0x41, and the zero MACHST of old writers, which were little-endian


def read_mrc(path: str) -> MrcVolume:
    """Reads and validates an MRC file; raises DataError naming the file and the problem."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise DataError(f"{path}: cannot read the MRC file: {e.strerror}") from e
    return parse_mrc(raw, path)


def parse_mrc(raw: bytes, path: str) -> MrcVolume:
    """Validates and decodes the bytes of an MRC file; `path` names it in errors."""
    if len(raw) < HEADER_BYTES:
        raise DataError(f"{path}: truncated MRC file: {len(raw)} bytes, shorter than the {HEADER_BYTES}-byte header")
    header = raw[:HEADER_BYTES]
    order = _byte_order(header)
    words = np.frombuffer(header, dtype=order + "i4")
    floats = np.frombuffer(header, dtype=order + "f4")
    nx, ny, nz, mode = (int(v) for v in words[0:4])
    mx, my, mz = (int(v) for v in words[7:10])
    cella = tuple(float(v) for v in floats[10:13])
    mapcrs = tuple(int(v) for v in words[16:19])
    nsymbt = int(words[23])
    nlabl = int(words[55])

    if min(nx, ny, nz) < 1:
        raise DataError(f"{path}: invalid MRC header: size NX, NY, NZ = {nx}, {ny}, {nz} (each must be >= 1); "
                        "the file is not an MRC volume or is corrupt")
    if mode not in MODES:
        name = MODE_NAMES.get(mode, "unknown")
        supported = ", ".join(f"{m} ({MODE_NAMES[m]})" for m in MODES)
        raise DataError(f"{path}: unsupported MRC mode {mode} ({name}); supported modes: {supported}")
    if sorted(mapcrs) != [1, 2, 3]:
        raise DataError(f"{path}: invalid MRC header: MAPC, MAPR, MAPS = {mapcrs} is not a permutation of 1, 2, 3")
    if nsymbt < 0:
        raise DataError(f"{path}: invalid MRC header: extended header size NSYMBT = {nsymbt} is negative")

    dtype = np.dtype(order + MODES[mode])
    count = nx * ny * nz
    start = HEADER_BYTES + nsymbt
    expected = count * dtype.itemsize
    available = len(raw) - start
    if available < expected:
        raise DataError(f"{path}: truncated MRC file: the header says {nx}x{ny}x{nz} {MODE_NAMES[mode]} "
                        f"({expected} bytes of data after {start} header bytes) but only {max(available, 0)} "
                        "are there; fetch or copy the file again")
    if available > expected:
        raise DataError(f"{path}: {available - expected} unexpected bytes after the {nx}x{ny}x{nz} "
                        f"{MODE_NAMES[mode]} data; the header's sizes do not describe this file")

    data = np.frombuffer(raw, dtype=dtype, count=count, offset=start).reshape(nz, ny, nx)
    data = data.astype(dtype.newbyteorder("="), copy=True)
    sampling = (mx, my, mz)
    voxel_size = (tuple(c / m for c, m in zip(cella, sampling))
                  if all(c > 0 for c in cella) and all(m > 0 for m in sampling) else None)
    labels = [header[224 + 80 * i: 304 + 80 * i].decode("ascii", "replace").rstrip("\x00 ")
              for i in range(min(max(nlabl, 0), 10))]
    return MrcVolume(data=data, mode=mode, mapcrs=mapcrs, voxel_size=voxel_size, nsymbt=nsymbt,
                     big_endian=(order == ">"), labels=labels)

