"""A strict reader for IDX files (the MNIST family's format), gzipped or raw.

Format (LeCun's MNIST page): a 4-byte magic ``0x00 0x00 TYPE NDIM``, then NDIM big-endian
uint32 dimensions, then the data in C order. We validate the magic, the type code, the number
of dimensions, and that the payload holds exactly prod(dims) items, so that a truncated or
corrupt download fails with a message naming the file, not as a garbled tensor.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from cnnzoo.errors import CnnzooError

__all__ = ["IdxError", "read_idx", "write_idx"]

# type code -> big-endian numpy dtype
_TYPES: dict[int, str] = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_CODES = {np.dtype(v).newbyteorder("=").str: k for k, v in _TYPES.items()}


class IdxError(CnnzooError, ValueError):
    """A file that is not a valid IDX file; the message names the file and what was wrong."""


def _read_bytes(path: Path) -> bytes:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":  # gzip magic, whatever the file is called
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise IdxError(f"{path}: the gzip stream is corrupt or truncated ({e}); download it again") from e
    if path.suffix == ".gz":
        raise IdxError(f"{path}: named .gz but is not gzip data (starts with {raw[:4]!r})")
    return raw


def read_idx(path: str | Path, *, expect_ndim: int | None = None) -> np.ndarray:
    """Read an IDX file into a numpy array (native byte order).

    Args:
        path: the file; gzip is detected from its content.
        expect_ndim: if given, the number of dimensions the file must have (3 for images,
            1 for labels).

    Raises:
        FileNotFoundError: the file does not exist.
        IdxError: a bad magic number, type code or dimension count, or a payload whose size
            does not match the header (truncated or padded).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"IDX file not found: {path}")
    data = _read_bytes(path)
    if len(data) < 4:
        raise IdxError(f"{path}: only {len(data)} bytes; an IDX file starts with a 4-byte magic number")
    if data[0] != 0 or data[1] != 0:
        raise IdxError(
            f"{path}: bad magic number 0x{data[:4].hex()} (an IDX file starts with two zero bytes); "
            "is this really an MNIST-style IDX file?"
        )
    code, ndim = data[2], data[3]
    if code not in _TYPES:
        raise IdxError(f"{path}: unknown IDX type code 0x{code:02x} (expected one of {sorted(_TYPES)})")
    if ndim == 0 or (expect_ndim is not None and ndim != expect_ndim):
        want = f"{expect_ndim}" if expect_ndim is not None else "at least 1"
        raise IdxError(f"{path}: header says {ndim} dimension(s), expected {want}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IdxError(f"{path}: truncated header ({len(data)} bytes, need {header} for {ndim} dims)")
    dims = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
    dtype = np.dtype(_TYPES[code])
    expected = int(np.prod(dims)) * dtype.itemsize
    got = len(data) - header
    if got != expected:
        what = "truncated" if got < expected else "has trailing bytes"
        raise IdxError(
            f"{path}: payload {what}: header dims {dims} need {expected:,} bytes, found {got:,}; "
            "the file is corrupt, download it again"
        )
    arr = np.frombuffer(data, dtype, offset=header).reshape(dims)
    return arr.astype(dtype.newbyteorder("="), copy=True)


def write_idx(path: str | Path, array: np.ndarray, *, compress: bool | None = None) -> None:
    """Write an array as an IDX file (gzipped when ``compress`` or the name ends in .gz)."""
    path = Path(path)
    arr = np.asarray(array)
    key = arr.dtype.newbyteorder("=").str
    if key not in _CODES:
        raise ValueError(f"IDX cannot store dtype {arr.dtype}")
    code = _CODES[key]
    header = bytes([0, 0, code, arr.ndim]) + np.asarray(arr.shape, ">u4").tobytes()
    payload = header + arr.astype(_TYPES[code]).tobytes()
    if compress or (compress is None and path.suffix == ".gz"):
        payload = gzip.compress(payload, compresslevel=6)
    path.write_bytes(payload)
