"""The feed protocol: the in-memory DataFeed and the streamed ImageFolderFeed behave as one."""

from __future__ import annotations

import pytest
import torch

from cnnzoo.data.datasets import ImageDataset
from cnnzoo.data.feed import DataFeed, Feed, epoch_order, holdout_split, shard_bounds
from cnnzoo.data.imagefolder import ImageFolderFeed

MEAN, STD = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)


def _tree(root, classes=("ant", "bee", "cow"), per_class=4):
    from PIL import Image

    for split in ("train", "val"):
        for k, c in enumerate(classes):
            d = root / split / c
            d.mkdir(parents=True)
            for i in range(per_class):
                Image.new("RGB", (12, 10), (80 * k, 20 * i, 7 * (i + k))).save(d / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def feeds(tmp_path_factory):
    """The same 12 images as a streamed feed and as an in-memory feed (from the decoded files)."""
    root = _tree(tmp_path_factory.mktemp("tree"))
    streamed = ImageFolderFeed(root, "train", size=8, in_chans=3, mean=MEAN, std=STD, workers=0)
    images = torch.stack([streamed.data[i][0] for i in range(len(streamed))])
    ds = ImageDataset("tiny", "train", images, streamed.labels.clone(), streamed.classes, MEAN, STD)
    memory = DataFeed(ds, size=8, mode="none", in_chans=3, device=torch.device("cpu"))
    return streamed, memory


def _epoch(feed, **kw):
    xs, ys = zip(*feed.batches(5, **kw), strict=True)
    return torch.cat(xs), torch.cat(ys)


def test_both_feeds_implement_the_protocol(feeds):
    for feed in feeds:
        assert isinstance(feed, Feed)
        assert len(feed) == 12 and feed.num_classes == 3 and feed.channels == 3
        assert feed.classes == ("ant", "bee", "cow") and feed.mean == MEAN and feed.std == STD
        assert feed.num_batches(5) == 3 and feed.num_batches(5, world=2) == 2


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"shuffle": True},
        {"shuffle": True, "start": 1},
        {"shuffle": True, "rank": 1, "world": 2},
        {"shuffle": True, "rank": 0, "world": 5},
    ],
)
def test_both_feeds_yield_the_same_batches(feeds, kw):
    streamed, memory = feeds
    gen = lambda: torch.Generator().manual_seed(7)  # noqa: E731
    xs, ys = _epoch(streamed, generator=gen(), **kw)
    xm, ym = _epoch(memory, generator=gen(), **kw)
    assert torch.equal(ys, ym) and torch.allclose(xs, xm)
    order = epoch_order(
        12,
        shuffle=kw.get("shuffle", False),
        generator=gen(),
        rank=kw.get("rank", 0),
        world=kw.get("world", 1),
    )
    expected = torch.arange(12) if order is None else order
    assert torch.equal(ym, memory.labels[expected[kw.get("start", 0) * 5 :]])


def test_shards_cover_the_split_once_in_both_feeds(feeds):
    for feed in feeds:
        labels = torch.cat([y for r in range(3) for _, y in feed.shard(2, rank=r, world=3)])
        assert torch.equal(labels, feed.labels)  # contiguous slices, nothing dropped
    assert [shard_bounds(10, r, 3) for r in range(3)] == [(0, 3), (3, 6), (6, 10)]


def test_select_keeps_the_settings_and_the_order(feeds):
    idx = torch.tensor([11, 0, 5])
    for feed in feeds:
        sub = feed.select(idx)
        assert type(sub) is type(feed) and len(sub) == 3 and sub.classes == feed.classes
        assert torch.equal(sub.labels, feed.labels[idx])
        x, _ = next(sub.batches(3))
        x_all, _ = next(feed.batches(12))
        assert torch.allclose(x, x_all[idx])
        assert len(feed) == 12  # the original is untouched


def test_holdout_split_is_seeded_and_disjoint():
    train, val = holdout_split(100, 20, seed=3)
    assert len(val) == 20 and len(train) == 80
    assert set(train.tolist()).isdisjoint(val.tolist()) and set(train.tolist()) | set(val.tolist()) == set(
        range(100)
    )
    assert torch.equal(val, val.sort().values) and torch.equal(train, train.sort().values)
    again, val2 = holdout_split(100, 20, seed=3)
    assert torch.equal(val, val2) and torch.equal(train, again)
    assert not torch.equal(holdout_split(100, 20, seed=4)[1], val)
    expected = torch.randperm(100, generator=torch.Generator().manual_seed(3))[:20].sort().values
    assert torch.equal(val, expected)  # the documented recipe reproduces it
    with pytest.raises(ValueError, match="cannot hold out"):
        holdout_split(10, 10, seed=0)


def test_preload_adapts_the_split_once_and_changes_no_batch(feeds):
    streamed, memory = feeds
    fresh = memory.select(list(range(len(memory))))
    lazy = _epoch(fresh)
    fresh._adapted = None  # as built: the adapted copy is made on first use
    fresh.preload()
    made = fresh._adapted
    assert made is not None and made.shape == (12, 3, 8, 8)
    assert all(torch.equal(a, b) for a, b in zip(_epoch(fresh), lazy, strict=True))
    assert fresh._adapted is made  # reused, not re-adapted
    streamed.preload()  # nothing to prepare ahead for a streamed feed: a no-op, not an error
