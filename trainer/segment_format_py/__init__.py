"""An independent reader and writer of the segment model file (docs/FORMAT.md), written from the specification only.

It checks that docs/FORMAT.md is complete: files it writes must open in `segment` (Swift), and files `segment`
writes must read here with the same metadata and values. Checksums come from the `xxhash` C library, so the Swift
XXH64 is tested against it too; f16 rounding is numpy's, bf16 rounding ml_dtypes' (checked against PyTorch's by
trainer/fixtures/gen_format.py). The reader checks the structure (FORMAT.md "Validation" 1-9); the tensor set of
step 10 is the caller's to compare (segment_torch.engine_tensors gives it for a PyTorch model).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

import ml_dtypes
import numpy as np
import xxhash

MAGIC = b"SEGM"
VERSION = 1
ALIGN = 64
FIXED = 56
DTYPES = {0: ("f32", 4), 1: ("f16", 2), 2: ("bf16", 2)}
CODES = {name: code for code, (name, _) in DTYPES.items()}


class FormatError(ValueError):
    """The file breaks docs/FORMAT.md; the message says where."""


@dataclass
class TensorEntry:
    name: str
    dtype: str
    shape: tuple[int, ...]
    offset: int          # absolute, in the file
    byte_size: int


@dataclass
class Model:
    version: int
    checksum: int
    metadata: dict       # key -> int | float | str | list[int] | list[str], in file order
    table: list[TensorEntry]
    data: bytes

    def raw(self, name: str) -> np.ndarray:
        """The stored elements of tensor `name` as uint16 (f16/bf16 bits) or float32, shaped."""
        t = next(t for t in self.table if t.name == name)
        dt = np.dtype("<f4") if t.dtype == "f32" else np.dtype("<u2")
        return np.frombuffer(self.data, dtype=dt, count=int(np.prod(t.shape)), offset=t.offset).reshape(t.shape)

    def floats(self, name: str) -> np.ndarray:
        """Tensor `name` widened to float32."""
        t = next(t for t in self.table if t.name == name)
        a = self.raw(name)
        if t.dtype == "f16":
            return a.view(np.float16).astype(np.float32)
        if t.dtype == "bf16":
            return (a.astype(np.uint32) << 16).view(np.float32)
        return a.astype(np.float32)


class _Cursor:
    def __init__(self, buf: bytes, pos: int, end: int):
        self.buf, self.pos, self.end = buf, pos, end

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or self.pos + n > self.end:
            raise FormatError(f"{what} at byte {self.pos} runs past the header end {self.end}")
        b = self.buf[self.pos:self.pos + n]
        self.pos += n
        return b

    def u32(self, what: str) -> int:
        return struct.unpack("<I", self.take(4, what))[0]

    def u64(self, what: str) -> int:
        return struct.unpack("<Q", self.take(8, what))[0]

    def string(self, what: str, limit: int) -> str:
        n = self.u64(what)
        if n > limit:
            raise FormatError(f"{what}: length {n} above {limit}")
        try:
            return self.take(n, what).decode("utf-8")
        except UnicodeDecodeError as e:
            raise FormatError(f"{what} is not UTF-8") from e

    def value(self, what: str):
        kind = self.u32(what)
        if kind == 1:
            return struct.unpack("<q", self.take(8, what))[0]
        if kind == 2:
            return struct.unpack("<d", self.take(8, what))[0]
        if kind == 3:
            return self.string(what, 1 << 16)
        if kind in (4, 5):
            n = self.u64(what)
            if n > 1 << 16:
                raise FormatError(f"{what}: {n} elements above 65536")
            if kind == 4:
                return [struct.unpack("<q", self.take(8, what))[0] for _ in range(n)]
            return [self.string(what, 1 << 16) for _ in range(n)]
        raise FormatError(f"{what}: unknown value type {kind}")


def read(path: str) -> Model:
    with open(path, "rb") as f:
        buf = f.read()
    n = len(buf)
    if n == 0:
        raise FormatError("empty file")
    if buf[:4] != MAGIC[:min(4, n)]:
        raise FormatError("bad magic")
    if n < FIXED:
        raise FormatError(f"truncated: {n} bytes, below the {FIXED}-byte fixed header")
    version, checksum, file_size, header_size, n_meta, n_tensors, data_offset = struct.unpack_from("<IQQQQQQ", buf, 4)
    if version != VERSION:
        raise FormatError(f"unsupported version {version}")
    if file_size != n:
        raise FormatError(f"file_size {file_size} but the file has {n} bytes")
    if xxhash.xxh64_intdigest(buf[16:]) != checksum:
        raise FormatError("checksum mismatch")
    if not FIXED <= header_size <= n or data_offset != -(-header_size // ALIGN) * ALIGN or data_offset > n:
        raise FormatError(f"header_size {header_size} / data_offset {data_offset} inconsistent")
    if any(buf[header_size:data_offset]):
        raise FormatError("non-zero padding before the data")
    c = _Cursor(buf, FIXED, header_size)
    metadata = {}
    for i in range(n_meta):
        key = c.string(f"metadata key {i}", 256)
        if not key or key in metadata:
            raise FormatError(f"metadata key {key!r} empty or repeated")
        metadata[key] = c.value(key)
    table, names = [], set()
    for i in range(n_tensors):
        name = c.string(f"tensor name {i}", 256)
        code, rank = c.u32(name), c.u32(name)
        if code not in DTYPES or rank > 8:
            raise FormatError(f"{name}: dtype {code} / rank {rank}")
        shape = tuple(c.u64(name) for _ in range(rank))
        offset, size = c.u64(name), c.u64(name)
        dtype, itemsize = DTYPES[code]
        if size != int(np.prod(shape, dtype=object)) * itemsize or offset % ALIGN or data_offset + offset + size > n:
            raise FormatError(f"{name}: size {size} / offset {offset} invalid")
        if name in names:
            raise FormatError(f"{name} twice")
        names.add(name)
        table.append(TensorEntry(name, dtype, shape, data_offset + offset, size))
    if c.pos != header_size:
        raise FormatError(f"tensor table ends at {c.pos}, header at {header_size}")
    spans = sorted((t.offset, t.offset + t.byte_size) for t in table if t.byte_size)
    if any(b[0] < a[1] for a, b in zip(spans, spans[1:])):   # sorted by start: an overlap shows between neighbours
        raise FormatError("overlapping tensors")
    return Model(version, checksum, metadata, table, buf)


def _value(v) -> bytes:
    def s(x: str) -> bytes:
        b = x.encode("utf-8")
        return struct.pack("<Q", len(b)) + b
    if isinstance(v, bool):
        raise TypeError("no bool type in the format")
    if isinstance(v, int):
        return struct.pack("<Iq", 1, v)
    if isinstance(v, float):
        return struct.pack("<Id", 2, v)
    if isinstance(v, str):
        return struct.pack("<I", 3) + s(v)
    if isinstance(v, list) and all(isinstance(x, int) for x in v) and v:
        return struct.pack("<IQ", 4, len(v)) + b"".join(struct.pack("<q", x) for x in v)
    if isinstance(v, list) and all(isinstance(x, str) for x in v):
        return struct.pack("<IQ", 5, len(v)) + b"".join(s(x) for x in v)
    raise TypeError(f"cannot store {v!r}")


def to_storage(a: np.ndarray, dtype: str) -> bytes:
    """float32 values as stored: f16 by numpy, bf16 by ml_dtypes (both round to nearest, ties to even)."""
    a = np.ascontiguousarray(a, dtype=np.float32)
    if dtype == "f32":
        return a.astype("<f4").tobytes()
    if dtype == "f16":
        return a.astype("<f2").tobytes()
    if dtype == "bf16":
        return a.astype(ml_dtypes.bfloat16).view("<u2").tobytes()
    raise ValueError(dtype)


def write(path: str, metadata: dict, tensors: list[tuple[str, np.ndarray, str]]) -> None:
    """Writes a model file: metadata key -> value (int, float, str, list of int, list of str), tensors as
    (name, float32 array, "f32" | "f16" | "bf16"), in the order given. No validation of names or shapes."""
    header = b"".join(struct.pack("<Q", len(k.encode())) + k.encode() + _value(v) for k, v in metadata.items())
    blobs, entries, offset = [], [], 0
    for name, a, dtype in tensors:
        blob = to_storage(a, dtype)
        nb = name.encode()
        entries.append(struct.pack("<Q", len(nb)) + nb + struct.pack("<II", CODES[dtype], a.ndim)
                       + b"".join(struct.pack("<Q", d) for d in a.shape) + struct.pack("<QQ", offset, len(blob)))
        blobs.append((offset, blob))
        offset = -(-(offset + len(blob)) // ALIGN) * ALIGN
    header_size = FIXED + len(header) + sum(map(len, entries))
    data_offset = -(-header_size // ALIGN) * ALIGN
    data = bytearray()
    for o, blob in blobs:
        data += bytes(o - len(data)) + blob
    file_size = data_offset + len(data)
    body = (struct.pack("<QQQQQ", file_size, header_size, len(metadata), len(tensors), data_offset) + header
            + b"".join(entries) + bytes(data_offset - header_size) + bytes(data))
    with open(path, "wb") as f:
        f.write(MAGIC + struct.pack("<IQ", VERSION, xxhash.xxh64_intdigest(body)) + body)
