"""Batched augmentation: shapes, statistics, exact content shifts and generator determinism."""

from __future__ import annotations

import pytest
import torch

from cnnzoo.errors import ConfigError
from cnnzoo.train import augment as A
from cnnzoo.train.augment import build_augment


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _index_images(n: int, c: int = 1, h: int = 8, w: int = 8) -> torch.Tensor:
    """Images whose pixel at (y, x) holds 100·y + x + 1 (0 is left for padding), per sample."""
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    return (100 * yy + xx + 1).float().expand(n, c, h, w).contiguous()


def test_nothing_on_gives_none():
    assert build_augment() is None
    assert build_augment(hflip=True) is not None


def test_random_crop_offsets_uniform_and_content_shifted():
    n, pad, side = 4000, 2, 8
    x = _index_images(n, h=side, w=side)
    out = A.random_crop(x, _gen(), padding=pad)
    assert out.shape == x.shape
    # Recover each sample's offset from its content: the first non-padding pixel value.
    flat = out.view(n, -1)
    offsets = []
    for i in range(n):
        img = out[i, 0]
        nz = (img > 0).nonzero()
        r0, c0 = int(nz[:, 0].min()), int(nz[:, 1].min())
        y_src, x_src = divmod(int(img[r0, c0]) - 1, 100)
        # crop top (in padded coords) = pad + y_src - r0; same for x
        top, left = pad + y_src - r0, pad + x_src - c0
        offsets.append((top, left))
        # the whole crop is the padded image shifted by (top, left)
        padded = torch.nn.functional.pad(x[i, 0], (pad,) * 4)
        assert torch.equal(img, padded[top : top + side, left : left + side])
    assert flat.shape[0] == n
    tops = torch.tensor([o[0] for o in offsets])
    lefts = torch.tensor([o[1] for o in offsets])
    for t in (tops, lefts):
        assert t.min() == 0 and t.max() == 2 * pad
        counts = torch.bincount(t, minlength=2 * pad + 1).float()
        expected = n / (2 * pad + 1)
        assert ((counts - expected).abs() < 5 * expected**0.5).all(), counts  # 5 sigma
    # independent offsets in x and y: the joint count of (0, 0) is about n / 25
    joint = ((tops == 0) & (lefts == 0)).sum().item()
    assert abs(joint - n / 25) < 5 * (n / 25) ** 0.5


def test_random_crop_to_smaller_out_size_and_fill():
    x = torch.randn(16, 3, 10, 10)
    out = A.random_crop(x, _gen(), size=7)
    assert out.shape == (16, 3, 7, 7)
    filled = A.random_crop(torch.zeros(64, 2, 4, 4), _gen(), padding=3, fill=(1.5, -2.0))
    vals = set(filled[:, 0].unique().tolist()) | set(filled[:, 1].unique().tolist())
    assert vals <= {0.0, 1.5, -2.0} and 1.5 in vals and -2.0 in vals
    with pytest.raises(ConfigError, match="cannot crop"):
        A.random_crop(x, _gen(), size=11)


def test_hflip_probability_and_exact_mirror():
    n = 20000
    x = _index_images(n, h=2, w=5)
    out = A.random_hflip(x, _gen(1))
    flipped = (out == x.flip(3)).flatten(1).all(1)
    kept = (out == x).flatten(1).all(1)
    assert bool((flipped ^ kept).all())  # every sample is exactly one of the two
    frac = flipped.float().mean().item()
    assert abs(frac - 0.5) < 5 * (0.25 / n) ** 0.5


def test_pca_lighting_zero_mean_with_the_right_covariance():
    n = 40000
    sigma = 0.1
    x = torch.zeros(n, 3, 2, 2)
    std = torch.tensor([0.229, 0.224, 0.225])
    out = A.pca_lighting(
        x,
        _gen(),
        sigma=sigma,
        eigval=torch.tensor(A.IMAGENET_EIGVAL),
        eigvec=torch.tensor(A.IMAGENET_EIGVEC),
        std=std,
    )
    delta = out[:, :, 0, 0]  # the same offset on every pixel of an image
    assert torch.equal(out, delta.view(n, 3, 1, 1).expand_as(out))
    vec, val = torch.tensor(A.IMAGENET_EIGVEC), torch.tensor(A.IMAGENET_EIGVAL)
    expected_cov = (vec * (sigma * val) ** 2) @ vec.T / torch.outer(std, std)
    cov = torch.cov(delta.T.double()).float()
    assert delta.mean(0).abs().max() < 5 * expected_cov.diagonal().sqrt().max() / n**0.5
    assert torch.allclose(cov, expected_cov, rtol=0.05, atol=0.05 * expected_cov.abs().max().item())


def test_pca_lighting_one_channel_is_intensity_jitter():
    n, sigma, std = 40000, 0.1, 0.353
    aug = build_augment(pca_lighting=sigma, std=(std,))
    out = aug(torch.zeros(n, 1, 3, 3), _gen())
    d = out[:, 0, 0, 0]
    assert torch.equal(out, d.view(n, 1, 1, 1).expand_as(out))
    # Δ_pixel = α·std², in normalised units α·std: standard deviation σ·std
    assert d.std().item() == pytest.approx(sigma * std, rel=0.03)
    with pytest.raises(ConfigError, match="eigval and eigvec"):
        build_augment(pca_lighting=0.1)(torch.zeros(2, 2, 3, 3), _gen())


def test_random_erasing_area_fraction_and_probability():
    n, h, w = 4000, 40, 40
    x = torch.ones(n, 3, h, w)
    out = A.random_erasing(x, _gen(), p=0.5)
    erased = out[:, 0] == 0
    assert torch.equal(out[:, 0] == 0, out[:, 2] == 0)  # all channels of a pixel together
    frac = erased.flatten(1).float().mean(1)
    hit = frac > 0
    assert abs(hit.float().mean().item() - 0.5) < 0.05
    # rounding h and w to whole pixels moves the area a little past the nominal 2-33%
    assert frac[hit].min() >= 0.02 * 0.8 and frac[hit].max() <= 0.33 * 1.2
    # each erased region is one rectangle: its area equals (rows touched) x (cols touched)
    rows = erased.any(2).sum(1)
    cols = erased.any(1).sum(1)
    assert torch.equal((rows * cols)[hit], erased.flatten(1).sum(1)[hit])
    aspect = rows[hit].float() / cols[hit].float()
    assert aspect.min() >= 0.3 * 0.7 and aspect.max() <= 3.3 / 0.7


def test_scale_jitter_resizes_then_crops():
    aug = build_augment(scale_jitter=(40, 48), out_size=32)
    x = torch.randn(6, 3, 36, 36)
    out = aug(x, _gen())
    assert out.shape == (6, 3, 32, 32)
    with pytest.raises(ConfigError, match="below the crop"):
        build_augment(scale_jitter=(30, 48), out_size=32)


def test_determinism_for_a_fixed_seed_and_difference_across_seeds():
    aug = build_augment(crop_padding=4, hflip=True, pca_lighting=0.1, random_erasing=0.5)
    x = torch.randn(64, 3, 16, 16)
    a = aug(x, _gen(7))
    b = aug(x, _gen(7))
    c = aug(x, _gen(8))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    # the generator's state is all there is: a saved state replays the same batch
    g = _gen(3)
    aug(x, g)
    state = g.get_state()
    nxt = aug(x, g)
    g2 = torch.Generator()
    g2.set_state(state)
    assert torch.equal(aug(x, g2), nxt)


def test_keeps_channels_last_and_global_rng_untouched():
    aug = build_augment(crop_padding=2, hflip=True, random_erasing=0.3)
    x = torch.randn(8, 3, 12, 12).contiguous(memory_format=torch.channels_last)
    torch.manual_seed(0)
    before = torch.rand(1)
    torch.manual_seed(0)
    out = aug(x, _gen())
    assert out.is_contiguous(memory_format=torch.channels_last) and out.shape == x.shape
    assert torch.equal(torch.rand(1), before)  # no draws from the global generator


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(crop_padding=-1), "crop_padding"),
        (dict(random_erasing=1.5), "probability"),
        (dict(scale_jitter=(300, 200)), "S_min"),
        (dict(pca_lighting=0.1, eigval=(1.0,)), "both"),
    ],
)
def test_bad_augment_configs(kw, match):
    with pytest.raises(ConfigError, match=match):
        build_augment(**kw)
