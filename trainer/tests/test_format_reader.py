"""The independent Python model-file reader/writer (segment_format_py) against docs/FORMAT.md's rules.

The cross-checks with the Swift reader and writer are in Tests/SegmentFormatTests/RoundTripTests.swift."""
import struct

import ml_dtypes
import numpy as np
import pytest
import xxhash

import segment_format_py as fmt

META = {"general.architecture": "swin-unet", "swin_unet.depths": [2, 2], "preprocessing.window_lo": -1.5,
        "general.class_names": ["background", "liver"], "provenance.seed": "7"}


@pytest.fixture
def model_path(tmp_path):
    rng = np.random.default_rng(0)
    tensors = [("a", rng.standard_normal((3, 5)).astype(np.float32), "f32"),
               ("b", rng.standard_normal(7).astype(np.float32), "f16"),
               ("c", rng.standard_normal((2, 2, 2)).astype(np.float32), "bf16")]
    path = tmp_path / "m.segm"
    fmt.write(str(path), META, tensors)
    return path, tensors


def test_round_trip_layout_and_values(model_path):
    path, tensors = model_path
    m = fmt.read(str(path))
    buf = path.read_bytes()
    assert buf[:4] == b"SEGM" and struct.unpack_from("<I", buf, 4)[0] == 1
    assert m.checksum == xxhash.xxh64_intdigest(buf[16:]) and struct.unpack_from("<Q", buf, 16)[0] == len(buf)
    assert m.metadata == META
    assert [(t.name, t.dtype, t.shape) for t in m.table] == [(n, d, a.shape) for n, a, d in tensors]
    assert all(t.offset % 64 == 0 for t in m.table)
    a, b, c = (t[1] for t in tensors)
    np.testing.assert_array_equal(m.floats("a"), a)                                   # exact
    np.testing.assert_array_equal(m.floats("b"), b.astype(np.float16).astype(np.float32))
    np.testing.assert_array_equal(m.floats("c"), c.astype(ml_dtypes.bfloat16).astype(np.float32))


@pytest.mark.parametrize("damage, message", [
    (lambda b: b[:-1], "file_size"),                                      # truncated
    (lambda b: b + b"\0", "file_size"),                                   # appended
    (lambda b: b[:100] + bytes([b[100] ^ 4]) + b[101:], "checksum"),      # bit flip
    (lambda b: b"SEGX" + b[4:], "magic"),
    (lambda b: b[:4] + struct.pack("<I", 2) + b[8:], "version"),
    (lambda b: b"", "empty"),
])
def test_damage_is_refused(model_path, damage, message):
    path, _ = model_path
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(fmt.FormatError, match=message):
        fmt.read(str(path))
