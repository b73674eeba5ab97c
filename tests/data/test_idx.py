"""The IDX reader on small generated files, including corrupt and truncated ones."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from cnnzoo.data.idx import IdxError, read_idx, write_idx
from cnnzoo.errors import CnnzooError


@pytest.fixture
def images():
    return np.random.default_rng(0).integers(0, 256, size=(5, 28, 28), dtype=np.uint8)


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_round_trip(tmp_path, images, suffix):
    p = tmp_path / f"x-idx3-ubyte{suffix}"
    write_idx(p, images)
    assert (p.read_bytes()[:2] == b"\x1f\x8b") == (suffix == ".gz")
    out = read_idx(p, expect_ndim=3)
    assert out.dtype == np.uint8 and out.shape == (5, 28, 28)
    np.testing.assert_array_equal(out, images)


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_all_type_codes(tmp_path, dtype):
    a = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    if dtype == np.uint8:
        a = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a.idx", a)
    np.testing.assert_array_equal(read_idx(tmp_path / "a.idx"), a)


def test_header_layout_is_big_endian(tmp_path):
    write_idx(tmp_path / "l", np.array([7, 2, 1], np.uint8))
    raw = (tmp_path / "l").read_bytes()
    assert (
        raw[:4] == bytes([0, 0, 0x08, 1])
        and raw[4:8] == (3).to_bytes(4, "big")
        and raw[8:] == b"\x07\x02\x01"
    )


def _raw(images):
    return bytes([0, 0, 8, 3]) + np.asarray(images.shape, ">u4").tobytes() + images.tobytes()


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda b: b[:-100], "truncated"),
        (lambda b: b + b"\x00" * 7, "trailing bytes"),
        (lambda b: b"\x08\x03" + b[2:], "magic"),
        (lambda b: b[:2] + b"\x42" + b[3:], "type code"),
        (lambda b: b[:10], "truncated header"),
        (lambda b: b[:3], "only 3 bytes"),
    ],
)
def test_corrupt_files_name_the_file_and_the_problem(tmp_path, images, mutate, message):
    p = tmp_path / "train-images-idx3-ubyte"
    p.write_bytes(mutate(_raw(images)))
    with pytest.raises(IdxError) as e:
        read_idx(p)
    assert message in str(e.value) and str(p) in str(e.value)
    assert isinstance(e.value, CnnzooError)


def test_truncated_gzip(tmp_path, images):
    p = tmp_path / "t10k-images-idx3-ubyte.gz"
    p.write_bytes(gzip.compress(_raw(images))[:-200])
    with pytest.raises(IdxError, match="gzip stream is corrupt or truncated"):
        read_idx(p)


def test_gz_name_without_gzip_data(tmp_path):
    p = tmp_path / "a.gz"
    p.write_bytes(b"not gzip at all")
    with pytest.raises(IdxError, match="not gzip"):
        read_idx(p)


def test_wrong_number_of_dimensions(tmp_path, images):
    write_idx(tmp_path / "x", images)
    with pytest.raises(IdxError, match="3 dimension.*expected 1"):
        read_idx(tmp_path / "x", expect_ndim=1)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        read_idx(tmp_path / "nope")
