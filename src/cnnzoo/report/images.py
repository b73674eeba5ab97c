"""Small PNGs as data URIs: filters, feature maps and test images, inline in the page.

The page must work offline and stay small, so images are encoded here (``zlib`` and the PNG chunk
layout, no imaging library) at their own resolution; the page scales them up with
``image-rendering: pixelated``.
"""

from __future__ import annotations

import base64
import struct
import zlib

import numpy as np

__all__ = ["png_bytes", "data_uri", "to_uint8", "tile"]


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def png_bytes(pixels: np.ndarray) -> bytes:
    """A PNG of ``pixels``: uint8, (H, W) grey or (H, W, 3) RGB."""
    a = np.ascontiguousarray(pixels, dtype=np.uint8)
    if a.ndim == 2:
        colour, channels = 0, 1
    elif a.ndim == 3 and a.shape[2] == 3:
        colour, channels = 2, 3
    else:
        raise ValueError(f"png_bytes takes (H, W) or (H, W, 3) uint8 pixels, got shape {a.shape}")
    h, w = a.shape[:2]
    raw = np.zeros((h, 1 + w * channels), dtype=np.uint8)  # filter byte 0 (none) before each row
    raw[:, 1:] = a.reshape(h, w * channels)
    header = struct.pack(">IIBBBBB", w, h, 8, colour, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(raw.tobytes(), 9))
        + _chunk(b"IEND", b"")
    )


def data_uri(pixels: np.ndarray) -> str:
    """``data:image/png;base64,...`` of :func:`png_bytes`."""
    return "data:image/png;base64," + base64.b64encode(png_bytes(pixels)).decode("ascii")


def to_uint8(x: np.ndarray) -> np.ndarray:
    """Min-max scaled to 0..255 (a constant map is mid-grey): each tile shows its own contrast."""
    x = np.asarray(x, dtype=np.float64)
    lo, hi = float(np.nanmin(x)), float(np.nanmax(x))
    if not np.isfinite(lo) or not np.isfinite(hi) or hi - lo < 1e-12:
        return np.full(x.shape, 128, dtype=np.uint8)
    return np.round((x - lo) / (hi - lo) * 255).astype(np.uint8)


def tile(maps: np.ndarray, cols: int, pad: int = 1) -> np.ndarray:
    """(N, H, W) or (N, H, W, 3) maps, each scaled by :func:`to_uint8`, in a grid of ``cols``
    columns with ``pad`` pixels of white between them."""
    maps = np.asarray(maps)
    n, h, w = maps.shape[:3]
    cols = max(1, min(cols, n))
    rows = -(-n // cols)
    shape = (rows * (h + pad) - pad, cols * (w + pad) - pad, *maps.shape[3:])
    out = np.full(shape, 255, dtype=np.uint8)
    for i in range(n):
        r, c = divmod(i, cols)
        out[r * (h + pad) : r * (h + pad) + h, c * (w + pad) : c * (w + pad) + w] = to_uint8(maps[i])
    return out
