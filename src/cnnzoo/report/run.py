"""What a run's page adds to its model's: curves, test results, filters, feature maps, provenance.

The learning curves are ``metrics.csv``; the confusion matrix is the trainer's own
(``confusion_matrix.csv``, over the run's test set, so it agrees with the reported top-1), and is
computed here only for a run that has none (the NumPy engine writes none). Misclassified examples,
the first layer's filters and the stage outputs (``forward_intermediates``) of one test image come
from the trained model itself, on the CPU.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cnnzoo.rundir import RunDir, RunDirError
from cnnzoo.train.runs import Network, verify_weights

from .images import data_uri, tile

__all__ = ["run_data", "read_confusion", "first_layer_filters", "stage_maps", "EXAMPLES"]

#: test images evaluated for the misclassified examples (the first ones of the split), at most,
#: and the FLOPs that evaluating them may take: a ResNet-50 at 224×224 gets 64, LeNet-5 the 1,000
EXAMPLES = 1000
EXAMPLE_FLOPS = 5e11
MIN_EXAMPLES = 64
MAX_WRONG = 24
MAX_FILTERS = 96
MAX_MAPS = 16  # channels shown per stage

CURVE_KEYS = ("epoch", "train_loss", "test_loss", "val_loss", "train_top1", "test_top1", "val_top1", "lr")


def _finite(v: Any) -> Any:
    return None if isinstance(v, float) and not math.isfinite(v) else v


def read_confusion(path: Path) -> tuple[list[str], list[list[int]]] | None:
    """The trainer's ``confusion_matrix.csv``: (class names, rows of counts, true class by row)."""
    if not path.is_file():
        return None
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if len(rows) < 2:
        raise RunDirError(f"{path} is empty; the run directory is damaged (re-run `cnnzoo eval` or training)")
    classes = rows[0][1:]
    try:
        counts = [[int(v) for v in r[1:]] for r in rows[1:]]
    except ValueError as e:
        raise RunDirError(f"{path} holds a non-integer count ({e}); the run directory is damaged") from e
    return classes, counts


def _checksum(run: RunDir, weights: Path, summary: dict[str, Any]) -> dict[str, Any]:
    """The weights' recorded sha256, checked (``open_network`` already refused a changed file; the
    page shows what was verified)."""
    keys = {run.ema.name: "ema_sha256", run.best.name: "best_sha256"}
    keys[summary.get("weights_file", run.weights.name)] = "weights_sha256"
    want = summary.get(keys.get(weights.name, ""))
    verify_weights(weights, want)
    return {"file": weights.name, "sha256": want, "recorded": want, "verified": True}


def first_layer_filters(model: nn.Module) -> dict[str, Any] | None:
    """The first convolution's kernels as one image (RGB for 3 input channels, else channel 0)."""
    conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    if conv is None:
        return None
    name = next(n for n, m in model.named_modules() if m is conv)
    w = conv.weight.detach().float().cpu().numpy()[:MAX_FILTERS]
    maps = w[:, :3].transpose(0, 2, 3, 1) if w.shape[1] == 3 else w[:, 0]
    return {"layer": name, "shape": list(conv.weight.shape), "image": data_uri(tile(maps, cols=16))}


def stage_maps(model: nn.Module, x: torch.Tensor) -> list[dict[str, Any]]:
    """The outputs of the model's stages (``feature_info``) for one image: the first channels."""
    info = getattr(model, "feature_info", None)
    if not info or not hasattr(model, "forward_intermediates"):
        return []
    with torch.no_grad():
        stages = model.forward_intermediates(x, intermediates_only=True)
    out = []
    for fi, t in zip(info, stages, strict=True):
        a = t[0].float().cpu().numpy()
        if a.ndim != 3:
            continue
        out.append(
            {
                "stage": fi.module,
                "shape": list(a.shape),
                "reduction": fi.reduction,
                "image": data_uri(tile(a[:MAX_MAPS], cols=8)),
            }
        )
    return out


def _test_feed(config: dict[str, Any], model: nn.Module, flops_per_image: float):
    from cnnzoo.data import load_dataset
    from cnnzoo.data.feed import DataFeed
    from cnnzoo.data.subsets import select_classes
    from cnnzoo.data.transforms import resolve_input

    ds = load_dataset(config["data"], "test", data_dir=config.get("data_dir"))
    ds = select_classes(ds, config.get("classes") or ())  # a --classes run: its classes, its labels
    size, mode = resolve_input(model.default_cfg, config.get("input_size"), ds.images.shape[-1])
    feed = DataFeed(ds, size=size, mode=mode, in_chans=model.in_chans, device=torch.device("cpu"))
    n = int(min(EXAMPLES, max(MIN_EXAMPLES, EXAMPLE_FLOPS // max(flops_per_image, 1.0))))
    return feed.select(range(min(n, len(feed))))


def _examples(model: nn.Module, feed, classes: list[str]) -> tuple[dict[str, Any], torch.Tensor]:
    """Misclassified test images among the first :data:`EXAMPLES`, and the first test image."""
    from cnnzoo.train.evaluate import evaluate

    res = evaluate(model, feed.batches(250), num_samples=len(feed), collect=True, max_wrong=MAX_WRONG)
    wrong = []
    if "wrong_x" in res:
        for x, t, p in zip(res["wrong_x"], res["wrong_true"], res["wrong_pred"], strict=True):
            a = x.numpy()
            img = a.transpose(1, 2, 0) if a.shape[0] == 3 else a[0]
            wrong.append(
                {"true": classes[int(t)], "pred": classes[int(p)], "image": data_uri(tile(img[None], 1))}
            )
    first = next(iter(feed.batches(1)))[0]
    return {"evaluated": len(feed), "top1": res["top1"], "wrong": wrong, "preds": res["preds"]}, first


def _curves(run: RunDir) -> list[dict[str, Any]]:
    if not run.metrics.is_file():
        return []
    rows = run.read_metrics()
    return [{k: _finite(r[k]) for k in CURVE_KEYS if k in r} for r in rows]


def run_data(net: Network, flops_per_image: float) -> dict[str, Any]:
    """The run page's additions for an opened run (:func:`cnnzoo.train.runs.open_network`);
    ``flops_per_image`` (the model page's) sizes the evaluation of the examples."""
    assert net.run is not None and net.weights is not None
    run = RunDir(net.run)
    summary = run.read_summary() if run.summary.is_file() else {}
    checksum = _checksum(run, net.weights, summary)
    model = net.model.cpu().eval()
    feed = _test_feed(net.config, model, flops_per_image)
    classes = list(feed.classes)
    examples, first = _examples(model, feed, classes)
    confusion = read_confusion(run / "confusion_matrix.csv")
    source = "the run's test set (confusion_matrix.csv, written by the trainer)"
    if confusion is None:
        from cnnzoo.train.report import confusion_matrix

        preds = examples["preds"]
        targets = torch.cat([y for _, y in feed.batches(1000)])
        cm = confusion_matrix(preds, targets, len(classes))
        confusion = (classes, cm.tolist())
        source = (
            f"the first {len(feed)} test images, evaluated for this page (the run wrote no confusion matrix)"
        )
    del examples["preds"]
    names, counts = confusion
    per_class = [100.0 * r[i] / s if (s := sum(r)) else None for i, r in enumerate(counts)]
    first_img = first[0].numpy()
    return {
        "dir": str(run.path),
        "summary": {k: _finite(v) for k, v in summary.items() if not isinstance(v, dict | list)},
        "test_top1": _finite(summary.get("test_top1")),
        "config": net.config,
        "checksum": checksum,
        "curves": _curves(run),
        "confusion": {"classes": names, "counts": counts, "source": source},
        "per_class": per_class,
        "examples": examples,
        "filters": first_layer_filters(model),
        "test_image": data_uri(
            tile((first_img.transpose(1, 2, 0) if first_img.shape[0] == 3 else first_img[0])[None], 1)
        ),
        "stages": stage_maps(model, first),
    }
