"""Proof that the networks learn: a short Fashion-MNIST run per model, test accuracy against chance.

For every model matching ``--models`` (default: the families of issues 13 and 14 built so far, and
whatever else is registered under those names): ``create_model(NAME, in_chans=1, num_classes=10)``
at the config's ``small_input_size`` (28×28 resized, as ``cnnzoo train`` does), ``--steps`` SGD steps
(Nesterov momentum 0.9, weight decay 5e-5, peak lr ``--lr`` reached linearly over the first tenth
and decayed linearly to 0; batch ``--batch``; Adam instead for the models in ``OPTIMIZER``, with
their reasons), with a per-model time cap: the first three steps
are timed and a model that would run past ``--cap`` seconds gets fewer steps, its schedule fitted
to them. Then top-1 on 1,000 test images (chance is 10 %).

This is a smoke test of the architectures and their inits, not a recipe: a ninth of an epoch or
less, so the figures are far below what the nets reach when trained (``cnnzoo train``).

Usage::

    .venv/bin/python benchmarks/fashion_short_runs.py [--models 'shufflenet*'] [--steps 150] [--cap 300]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see benchmarks/throughput.py

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import cnnzoo  # noqa: E402
from cnnzoo.data import adapt_images, load_dataset  # noqa: E402

DEFAULT_MODELS = ["squeezenet*", "shufflenet*", "xception", "nasnet*"]
# SqueezeNet has no batch norm and ends in a ReLU before its average pool: at 0.01 and above one
# step can silence conv10 for good (every logit 0, loss ln 10 from then on); see its docstring.
LR: dict[str, float] = {"squeezenet": 0.005}
# Models whose short run needs another optimizer (and init) than SGD at their family's lr. SqueezeNet's
# bypasses add each fire module's input to its output without batch norm: with He's init the features
# grow ~7x (simple) and ~50x (complex) by fire9 and SGD at 0.005 leaves chance (11.5%; the
# complex one diverges). Adam's per-weight step does not scale with that growth: at 1e-4 the simple
# bypass trains from He's init; the complex one needs the authors' smaller Caffe init and 1e-3.
OPTIMIZER: dict[str, dict] = {
    "squeezenet1_0_bypass": {"optimizer": "adam", "lr": 1e-4},
    "squeezenet1_0_complex_bypass": {"optimizer": "adam", "lr": 1e-3, "init": "caffe"},
}


def short_run(name: str, train, test, *, steps: int, batch: int, lr: float, cap: float) -> dict:
    cfg = cnnzoo.get_model_config(name)
    side = cfg.small_input_size or cfg.input_size[-1]
    special = OPTIMIZER.get(name, {})
    torch.manual_seed(0)
    init = {"init": special["init"]} if "init" in special else {}
    model = cnnzoo.create_model(name, in_chans=1, num_classes=10, **init).train()
    peak = special.get("lr", LR.get(cfg.family, lr))
    if special.get("optimizer") == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=peak)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=peak, momentum=0.9, nesterov=True, weight_decay=5e-5)
    plan = {"steps": steps}

    def factor(s: int) -> float:
        n = plan["steps"]
        warm = max(1, n // 10)
        return (s + 1) / warm if s < warm else max(0.0, (n - s) / (n - warm))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)

    def prep(images):
        return adapt_images(
            images, size=side, mode=cfg.small_input_mode, mean=train.mean, std=train.std, in_chans=1
        )

    t0, done, losses = time.perf_counter(), 0, []
    step = 0
    while step < plan["steps"]:
        sl = slice(step * batch, (step + 1) * batch)
        loss = F.cross_entropy(model(prep(train.images[sl])), train.labels[sl])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
        step = done = step + 1
        if step == 3:  # fit the run into the cap, keeping its schedule whole
            per_step = (time.perf_counter() - t0) / 3
            plan["steps"] = max(3, min(steps, int(cap / per_step)))
    train_s = time.perf_counter() - t0
    model.eval()
    with torch.inference_mode():
        pred = torch.cat([model(prep(test.images[i : i + 100])).argmax(1) for i in range(0, len(test), 100)])
    acc = (pred == test.labels).float().mean().item()
    first, last = sum(losses[:10]) / len(losses[:10]), sum(losses[-10:]) / len(losses[-10:])
    optimizer = special.get("optimizer", "sgd") + (f", {special['init']} init" if "init" in special else "")
    return dict(model=name, side=side, steps=done, images=done * batch, seconds=round(train_s, 1), lr=peak,
                optimizer=optimizer,
                loss_first10=round(first, 3), loss_last10=round(last, 3), test_acc=round(acc, 4))  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="*", default=DEFAULT_MODELS)
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--cap", type=float, default=300.0, help="seconds of training per model at most")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    train = load_dataset("fashion-mnist", "train").subset(args.steps * args.batch, seed=0)
    test = load_dataset("fashion-mnist", "test").subset(1000, seed=0)
    rows = []
    print("| model | input | steps | images | s | optimizer | lr | loss (first 10 → last 10) | test top-1 |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in cnnzoo.list_models(args.models):
        r = short_run(name, train, test, steps=args.steps, batch=args.batch, lr=args.lr, cap=args.cap)
        rows.append(r)
        print(f"| {r['model']} | {r['side']} | {r['steps']} | {r['images']} | {r['seconds']} | {r['optimizer']} | {r['lr']} "
              f"| {r['loss_first10']} → {r['loss_last10']} | {100 * r['test_acc']:.1f} % |", flush=True)  # fmt: skip
    print(subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
