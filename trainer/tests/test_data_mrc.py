"""segment_data.mrc against mrcfile (the library that wrote the LiTS files) on small files made here."""

import numpy as np
import pytest
import mrcfile

from segment_data.errors import DataError
from segment_data.mrc import parse_mrc, read_mrc, MODES

SHAPE = (3, 4, 5)   # (NZ, NY, NX)


def sample(dtype):
    rng = np.random.default_rng(7)
    if np.dtype(dtype).kind == "f":
        return rng.normal(0, 100, SHAPE).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, SHAPE, endpoint=True).astype(dtype)


def write_with_mrcfile(path, data, voxel_size=None, extended=b""):
    with mrcfile.new(str(path), overwrite=True) as m:
        m.set_data(data)
        if voxel_size is not None:
            m.voxel_size = voxel_size
        if extended:
            m.set_extended_header(np.frombuffer(extended, dtype="V1"))
    return path.read_bytes()


def big_endian_mrc(data, mode):
    """An MRC2014 file written big-endian (MACHST 0x11 0x11), built word by word."""
    nz, ny, nx = data.shape
    words = np.zeros(256, dtype=">i4")
    words[0:4] = (nx, ny, nz, mode)
    words[7:10] = (nx, ny, nz)
    words[16:19] = (1, 2, 3)
    header = bytearray(words.tobytes())
    header[208:216] = b"MAP \x11\x11\x00\x00"
    return bytes(header) + data.astype(np.dtype(">" + MODES[mode])).tobytes()


@pytest.mark.parametrize("dtype,mode", [(np.int8, 0), (np.int16, 1), (np.float32, 2), (np.uint16, 6),
                                        (np.float16, 12)])
def test_every_supported_mode_reads_as_mrcfile_wrote_it(tmp_path, dtype, mode):
    data = sample(dtype)
    write_with_mrcfile(tmp_path / "a.mrc", data)
    with mrcfile.open(str(tmp_path / "a.mrc")) as reference:
        assert int(reference.header.mode) == mode
        expected = np.array(reference.data)
    volume = read_mrc(str(tmp_path / "a.mrc"))
    assert volume.mode == mode
    assert volume.data.dtype == np.dtype(dtype)
    assert volume.data.shape == SHAPE
    np.testing.assert_array_equal(volume.data, expected)
    np.testing.assert_array_equal(volume.data, data)
    assert volume.voxel_size is None          # mrcfile leaves the cell size 0 unless told
    assert volume.mapcrs == (1, 2, 3) and not volume.big_endian


def test_extended_header_is_skipped_and_voxel_size_read(tmp_path):
    data = sample(np.float32)
    raw = write_with_mrcfile(tmp_path / "x.mrc", data, voxel_size=(1.5, 2.0, 2.5), extended=b"EXT!" * 100)
    volume = parse_mrc(raw, "x.mrc")
    assert volume.nsymbt == 400
    np.testing.assert_array_equal(volume.data, data)
    assert volume.voxel_size == pytest.approx((1.5, 2.0, 2.5))


def test_big_endian_file(tmp_path):
    data = sample(np.int16)
    volume = parse_mrc(big_endian_mrc(data, 1), "be.mrc")
    assert volume.big_endian
    assert volume.data.dtype == np.dtype(np.int16) and volume.data.dtype.isnative
    np.testing.assert_array_equal(volume.data, data)


@pytest.fixture
def valid(tmp_path):
    return write_with_mrcfile(tmp_path / "v.mrc", sample(np.float32))


def patched(raw, offset, value):
    out = bytearray(raw)
    out[offset:offset + 4] = np.int32(value).astype("<i4").tobytes()
    return bytes(out)


def test_truncated_data_is_a_clear_error(valid):
    with pytest.raises(DataError, match=r"cut\.mrc: truncated MRC file: the header says 5x4x3 float32 \(240 bytes"):
        parse_mrc(valid[:-10], "cut.mrc")


def test_truncated_header_is_a_clear_error(valid):
    with pytest.raises(DataError, match=r"h\.mrc: truncated MRC file: 500 bytes, shorter than the 1024-byte header"):
        parse_mrc(valid[:500], "h.mrc")


def test_extended_header_longer_than_the_file_is_truncation(valid):
    with pytest.raises(DataError, match="truncated"):
        parse_mrc(patched(valid, 92, 64), "n.mrc")


@pytest.mark.parametrize("mode,name", [(3, "complex int16"), (4, "complex float32"), (101, "packed 4-bit"),
                                       (7, "unknown")])
def test_unsupported_mode_is_a_clear_error(valid, mode, name):
    with pytest.raises(DataError, match=rf"m\.mrc: unsupported MRC mode {mode} \({name}\); supported modes: "
                                        r"0 \(int8\), 1 \(int16\), 2 \(float32\), 6 \(uint16\), 12 \(float16\)"):
        parse_mrc(patched(valid, 12, mode), "m.mrc")


def test_trailing_bytes_are_refused(valid):
    with pytest.raises(DataError, match="8 unexpected bytes after the 5x4x3 float32 data"):
        parse_mrc(valid + b"\x00" * 8, "t.mrc")


@pytest.mark.parametrize("offset,value,message", [(0, 0, r"size NX, NY, NZ = 0, 4, 3 \(each must be >= 1\)"),
                                                  (64, 2, r"MAPC, MAPR, MAPS = \(2, 2, 3\) is not a permutation"),
                                                  (92, -4, r"extended header size NSYMBT = -4 is negative")])
def test_invalid_header_fields(valid, offset, value, message):
    with pytest.raises(DataError, match=r"bad\.mrc: invalid MRC header: " + message):
        parse_mrc(patched(valid, offset, value), "bad.mrc")


def test_missing_file_names_it(tmp_path):
    with pytest.raises(DataError, match="nothere.mrc: cannot read the MRC file"):
        read_mrc(str(tmp_path / "nothere.mrc"))
