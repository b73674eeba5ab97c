"""The convolution's forward and backward pass exactly as the lectures derive them, written plainly.

For one input map ``x`` and one kernel ``w`` (stride 1, no padding), the forward pass is the *valid
cross-correlation* ``y = x ⋆ w``, i.e. ``y[p, q] = Σ_ij x[p+i, q+j] · w[i, j]``. The chain rule gives:

* **filter gradient**: ``dW = x ⋆ dY`` — the valid cross-correlation of the input with the output
  gradient (each weight touched every output, through the input pixel under it);
* **input gradient**: ``dX = full_conv(dY, rot180(w))`` — pad dY with k−1 zeros on every side and
  slide the 180°-rotated kernel over it (a "full" convolution; sliding a rotated kernel is a true
  convolution with the unrotated one);
* **stride** s: the forward keeps every s-th output, so in the backward pass dY is first *dilated*
  with s−1 zeros between its entries, after which the stride-1 formulas hold;
* **padding**: the forward reads a zero-padded input; dX is the gradient of that padded input with
  the border cropped away;
* **dilation** d: the kernel is spread out with d−1 zeros between taps (``dilate(w, d)``), the
  formulas above run on that effective kernel, and dW keeps every d-th tap;
* **groups**: output map o only sees the input maps of its own group.

Everything loops over images and maps and uses only the 2-D helpers below, so each line can be
read against the derivation. It is slow; :mod:`cnnzoo.scratch.ops` (im2col + BLAS) is the default
and the tests check that the two agree. No torch.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "correlate2d_valid",
    "rot180",
    "dilate",
    "pad2d",
    "full_convolution",
    "conv2d_forward_reference",
    "conv2d_backward_reference",
]


def correlate2d_valid(a: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Valid cross-correlation of 2-D ``a`` with 2-D ``k``: ``out[p, q] = Σ_ij a[p+i, q+j]·k[i, j]``."""
    kh, kw = k.shape
    oh, ow = a.shape[0] - kh + 1, a.shape[1] - kw + 1
    out = np.zeros((oh, ow), dtype=np.result_type(a, k))
    for p in range(oh):
        for q in range(ow):
            out[p, q] = np.sum(a[p : p + kh, q : q + kw] * k)
    return out


def rot180(k: np.ndarray) -> np.ndarray:
    """The kernel turned by 180°: flipped upside down and left to right."""
    return k[::-1, ::-1]


def dilate(a: np.ndarray, step: int) -> np.ndarray:
    """Insert ``step − 1`` zeros between neighbouring entries of 2-D ``a`` (no zeros at the border)."""
    if step == 1:
        return a
    h, w = a.shape
    out = np.zeros(((h - 1) * step + 1, (w - 1) * step + 1), dtype=a.dtype)
    out[::step, ::step] = a
    return out


def pad2d(a: np.ndarray, ph: int, pw: int | None = None) -> np.ndarray:
    """Zero-pad 2-D ``a`` by ``ph`` rows above and below and ``pw`` columns left and right."""
    pw = ph if pw is None else pw
    return np.pad(a, ((ph, ph), (pw, pw)))


def full_convolution(dy: np.ndarray, k: np.ndarray) -> np.ndarray:
    """The lectures' full convolution: pad ``dy`` by (k−1) zeros, slide ``rot180(k)`` over it.

    Its output is ``dy.shape + k.shape − 1``, the size of the input that produced ``dy``.
    """
    kh, kw = k.shape
    return correlate2d_valid(pad2d(dy, kh - 1, kw - 1), rot180(k))


def _unpack(stride, padding, dilation):
    pair = lambda v: (v, v) if isinstance(v, int) else tuple(v)
    return pair(stride), pair(padding), pair(dilation)


def _dilated_kernel(k: np.ndarray, dh: int, dw: int) -> np.ndarray:
    if dh == dw:
        return dilate(k, dh)
    out = np.zeros(((k.shape[0] - 1) * dh + 1, (k.shape[1] - 1) * dw + 1), dtype=k.dtype)
    out[::dh, ::dw] = k
    return out


def _dilate_hw(a: np.ndarray, sh: int, sw: int) -> np.ndarray:
    out = np.zeros(((a.shape[0] - 1) * sh + 1, (a.shape[1] - 1) * sw + 1), dtype=a.dtype)
    out[::sh, ::sw] = a
    return out


def conv2d_forward_reference(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
    groups: int = 1,
) -> np.ndarray:
    """y[n, o] = b[o] + Σ_{c in o's group} (x_pad[n, c] ⋆ dilate(w[o, c], d)) kept every s-th position."""
    (sh, sw), (ph, pw), (dh, dw) = _unpack(stride, padding, dilation)
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    og = o // groups
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (wd + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    y = np.zeros((n, o, oh, ow), dtype=np.result_type(x, w))
    for img in range(n):
        for out_map in range(o):
            g = out_map // og
            acc = np.zeros((oh, ow), dtype=y.dtype)
            for ci in range(cg):
                xin = pad2d(x[img, g * cg + ci], ph, pw)  # 1. zero-pad the input map
                k = _dilated_kernel(w[out_map, ci], dh, dw)  # 2. spread the kernel taps (dilation)
                full = correlate2d_valid(xin, k)  # 3. slide it over every position (stride 1)
                acc += full[::sh, ::sw][:oh, :ow]  # 4. keep every s-th position (stride)
            y[img, out_map] = acc + (b[out_map] if b is not None else 0)
    return y


def conv2d_backward_reference(
    dy: np.ndarray,
    x: np.ndarray,
    w: np.ndarray,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
    groups: int = 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(dx, dw, db)`` by the lectures' formulas (see the module docstring)."""
    (sh, sw), (ph, pw), (dh, dw) = _unpack(stride, padding, dilation)
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    og = o // groups
    hp, wp = h + 2 * ph, wd + 2 * pw
    keh, kew = dh * (kh - 1) + 1, dw * (kw - 1) + 1  # the dilated ("effective") kernel's size
    dx_pad = np.zeros((n, c, hp, wp), dtype=np.result_type(dy, w))
    dwt = np.zeros(w.shape, dtype=np.result_type(dy, x))
    db = dy.sum(axis=(0, 2, 3))
    for img in range(n):
        for out_map in range(o):
            g = out_map // og
            dyd = _dilate_hw(dy[img, out_map], sh, sw)  # stride: zeros between dY's entries
            for ci in range(cg):
                xin = pad2d(x[img, g * cg + ci], ph, pw)
                # dW: valid cross-correlation of the (padded) input with the dilated dY; with a
                # dilated kernel only every d-th tap is a real weight
                dw_eff = correlate2d_valid(xin, dyd)[:keh, :kew]
                dwt[out_map, ci] += dw_eff[::dh, ::dw]
                # dX: full convolution of dY with the 180°-rotated (effective) kernel
                k = _dilated_kernel(w[out_map, ci], dh, dw)
                full = full_convolution(dyd, k)  # covers the rows/cols the forward read
                dx_pad[img, g * cg + ci, : full.shape[0], : full.shape[1]] += full
    dx = dx_pad[:, :, ph : ph + h, pw : pw + wd]  # crop the padding: it was not an input
    return dx, dwt, db
