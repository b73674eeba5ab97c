"""The MBConv lineage (issue 13): meta build times, MACs against torchvision and the papers, and a
short Fashion-MNIST run of every variant.

Three parts, each printed as a Markdown table for ``benchmarks/README.md``:

* ``build``: every variant built on the meta device (best of ``--repeat``), against the same
  network built by torchvision or timm in the same run (the baseline; ratio cnnzoo / library);
* ``macs``: conv and linear multiply-adds at the paper resolution from ``cnnzoo.analyze``, next to
  torchvision's ``_ops`` (read from its weights' metadata in the run; ``=`` where cnnzoo's count
  rounds to it) and the papers' figures, with the ratio and the paper's reported top-1;
* ``learn``: the proof that every variant learns. Each trains ``--steps`` Adam steps (lr ``--lr``, default 1e-3;
  batch ``--batch``) on Fashion-MNIST resized to its ``small_input_size`` (64) and is scored on
  ``--test`` test images (chance is 10%). This is the small-input adaptation: the EfficientNets
  at their paper resolutions (up to 600 px) are far too slow for a CPU (``--side`` sets another
  input side). Before the eval-mode score, the BN running statistics are re-estimated over 20
  training batches for the final weights (``torch.optim.swa_utils.update_bn``, "precise BN"): a
  few dozen Adam steps move the weights faster than the running averages follow (0.1 per step,
  0.01 in the TF-ported nets), and the stale statistics alone would score chance. The 10-class
  head is a fresh one from ``reset_classifier`` (PyTorch's Linear init, U(±1/√in)): the official
  init, U(±1/√out), is scaled for 1000 classes, and with 10 it starts the wide EfficientNets at a
  loss of 8 that 60 steps do not undo. Drop connect and dropout are off: they are regularizers for
  hundreds of epochs, and in a hundred steps they hide whether the network learns (EfficientNet-B1,
  60 steps at 33 px: training loss 2.39 → 1.95 with them, 2.40 → 1.52 without). Everything else
  is each variant's default.

    .venv/bin/python benchmarks/mbconv_zoo.py [--part build|macs|learn|all] [--models 'efficientnet*']
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import sys
import time

FAMILIES = ("mobilenet_v1", "mobilenet_v2", "mobilenet_v3", "mnasnet", "efficientnet")
# the library network each variant equals (torchvision's name, or timm's; v2 widths by width_mult)
TV_SAME = {
    "mobilenet_v2": "mobilenet_v2",
    "mobilenet_v3_large": "mobilenet_v3_large",
    "mobilenet_v3_small": "mobilenet_v3_small",
    "mnasnet_b1": "mnasnet1_0",
    "mnasnet_b1_050": "mnasnet0_5",
    "mnasnet_b1_075": "mnasnet0_75",
    "mnasnet_b1_130": "mnasnet1_3",
    **{f"efficientnet_b{i}": f"efficientnet_b{i}" for i in range(8)},
}
TIMM_SAME = {
    "mobilenet_v1": "mobilenetv1_100",
    "mnasnet_a1": "semnasnet_100",
    **{f"tf_efficientnet_b{i}": f"tf_efficientnet_b{i}" for i in range(8)},
}
TV_WIDTH = {
    "mobilenet_v2_035": 0.35,
    "mobilenet_v2_050": 0.5,
    "mobilenet_v2_075": 0.75,
    "mobilenet_v2_140": 1.4,
}


def variants(pattern: str) -> list[str]:
    from cnnzoo import get_model_config, list_models

    return [n for n in list_models(pattern) if get_model_config(n).family in FAMILIES]


def best_time(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def library_builder(name: str):
    import timm
    import torchvision

    if name in TV_SAME:
        return f"torchvision {TV_SAME[name]}", lambda: torchvision.models.get_model(TV_SAME[name])
    if name in TV_WIDTH:
        return f"torchvision width_mult={TV_WIDTH[name]}", lambda: torchvision.models.mobilenet_v2(
            width_mult=TV_WIDTH[name]
        )
    if name in TIMM_SAME:
        return f"timm {TIMM_SAME[name]}", lambda: timm.create_model(TIMM_SAME[name])
    return None, None


def part_build(names: list[str], repeat: int) -> None:
    import torch

    from cnnzoo import create_model

    print("| model | cnnzoo meta build | library | library meta build | ratio |\n|---|---|---|---|---|")
    total = total_lib = 0.0
    for name in names:
        with torch.device("meta"):
            create_model(name)  # first build: imports and caches out of the timing
            ours = best_time(lambda name=name: create_model(name), repeat)
            label, build = library_builder(name)
            lib = best_time(build, repeat) if build else None
        total += ours
        if lib is None:
            print(f"| {name} | {ours * 1e3:.0f} ms | — | | |")
            continue
        total_lib += lib
        print(f"| {name} | {ours * 1e3:.0f} ms | {label} | {lib * 1e3:.0f} ms | {ours / lib:.2f} |")
    print(
        f"\nall {len(names)} variants: {total:.2f} s on the meta device (libraries' twins: {total_lib:.2f} s)"
    )


# the papers' MACs at their resolution (M): v1 Table 6, v2 Table 4 (TF-slim's README for the widths the
# paper plots only), v3 Table 3, MnasNet-A1 Table 1, EfficientNet Table 2
PAPER_MACS = {
    "mobilenet_v1": (569, "Table 6"),
    "mobilenet_v1_075": (325, "Table 6"),
    "mobilenet_v1_050": (149, "Table 6"),
    "mobilenet_v1_025": (41, "Table 6"),
    "mobilenet_v2": (300, "Table 4"),
    "mobilenet_v2_140": (585, "Table 4"),
    "mobilenet_v2_035": (59, "TF-slim"),
    "mobilenet_v2_050": (97, "TF-slim"),
    "mobilenet_v2_075": (209, "TF-slim"),
    "mobilenet_v3_large": (219, "Table 3"),
    "mobilenet_v3_small": (56, "Table 3"),
    "mnasnet_a1": (312, "Table 1"),
    **{
        f"{p}efficientnet_b{i}": (m, "Table 2")
        for p in ("", "tf_")
        for i, m in enumerate((390, 700, 1000, 1800, 4200, 9900, 19000, 37000))
    },
}


def torchvision_ops(name: str) -> tuple[float, int] | None:
    """torchvision's published ``_ops`` (GMACs) for this network, and the crop it was counted at."""
    import torchvision

    tv = TV_SAME.get(name.removeprefix("tf_"))
    if tv is None:
        return None
    w = torchvision.models.get_model_weights(tv).DEFAULT
    return w.meta["_ops"], w.transforms().crop_size[0]


def part_macs(names: list[str]) -> None:
    import cnnzoo

    def macs_at(name: str, side: int) -> float:
        r = cnnzoo.analyze(name, input_size=(3, side, side))
        return sum(row.flops for row in r.layers if row.type in ("conv", "linear")) / 2

    print(
        "| model | res | params | MACs (cnnzoo) | torchvision `_ops` (at its crop) | paper | cnnzoo / paper "
        "| reported top-1 |\n|---|---|---|---|---|---|---|---|"
    )
    for name in names:
        cfg = cnnzoo.get_model_config(name)
        side = cfg.input_size[-1]
        r = cnnzoo.analyze(name)
        macs = sum(row.flops for row in r.layers if row.type in ("conv", "linear")) / 2
        tv = torchvision_ops(name)
        tv_text = "—"
        if tv is not None:
            ops, crop = tv
            ours = macs if crop == side else macs_at(name, crop)
            same = "=" if round(ours / 1e9, 3) == ops else "≠"
            tv_text = f"{ops:.3f} G {same}" + (
                f" (at {crop}; cnnzoo {ours / 1e9:.3f} G)" if crop != side else ""
            )
        paper, where = PAPER_MACS.get(name, (None, ""))
        paper_text, ratio = (f"{paper:,} M ({where})", f"{macs / 1e6 / paper:.3f}") if paper else ("—", "")
        top1 = cfg.extra.get("reported", {}).get("top1", "—")
        print(f"| {name} | {side} | {r.totals['params']:,} | {macs / 1e6:,.1f} M | {tv_text} | {paper_text} "
              f"| {ratio} | {top1} |")  # fmt: skip


def part_learn(
    names: list[str], steps: int, batch: int, n_test: int, side: int | None, lr: float = 1e-3
) -> None:
    import torch
    from torch import nn
    from torch.optim.swa_utils import update_bn

    from cnnzoo import create_model, get_model_config
    from cnnzoo.data import adapt_images, load_dataset

    side_arg = side
    cl = torch.channels_last  # the depthwise convs' backward is several times faster on a CPU
    train = load_dataset("fashion-mnist", "train").subset(steps * batch, seed=0)
    test = load_dataset("fashion-mnist", "test").subset(n_test, seed=0)
    print(f"| model | input | steps × batch | train loss (first → last 10) | test acc ({n_test}) | time |")
    print("|---|---|---|---|---|---|")
    for name in names:
        torch.manual_seed(0)
        side = side_arg or get_model_config(name).small_input_size
        model = create_model(name, in_chans=1, num_classes=10, drop_path_rate=0.0, dropout=0.0)
        model.reset_classifier(10)  # a fine-tuning head: PyTorch's Linear init (module docstring)
        model = model.to(memory_format=cl)
        opt = torch.optim.Adam(model.parameters(), lr=lr)

        def prep(images, side=side):
            return adapt_images(
                images, size=side, mode="resize", mean=train.mean, std=train.std, memory_format=cl
            )

        t0 = time.perf_counter()
        model.train()
        losses = []
        for step in range(steps):
            sl = slice(step * batch, (step + 1) * batch)
            loss = nn.functional.cross_entropy(model(prep(train.images[sl])), train.labels[sl])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        # "precise BN": the running statistics re-estimated for the final weights (module docstring)
        update_bn((prep(train.images[i : i + batch]) for i in range(0, min(20, steps) * batch, batch)), model)
        model.eval()
        with torch.no_grad():
            pred = torch.cat([model(prep(test.images[i : i + 250])).argmax(1) for i in range(0, n_test, 250)])
        acc = (pred == test.labels).float().mean().item()
        first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
        print(
            f"| {name} | {side}×{side} | {steps} × {batch} | {first:.2f} → {last:.2f} | {acc:.3f} "
            f"| {time.perf_counter() - t0:.0f} s |",
            flush=True,
        )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=("build", "macs", "learn", "all"), default="all")
    ap.add_argument("--models", default="*", help="fnmatch pattern of the variants to run")
    ap.add_argument("--repeat", type=int, default=3, help="builds per timing (the best is kept)")
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3, help="the learn part's Adam lr")
    ap.add_argument("--test", type=int, default=1000, help="test images (a multiple of 250)")
    ap.add_argument("--side", type=int, default=None, help="input side (default: each small_input_size, 64)")
    ap.add_argument("--threads", type=int, default=1, help="intra-op threads (1: no oversubscription)")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    names = [n for n in variants("*") if fnmatch.fnmatchcase(n, args.models)]
    print(f"# {len(names)} variants; load average {os.getloadavg()[0]:.1f}; torch {torch.__version__}\n")
    if args.part in ("build", "all"):
        part_build(names, args.repeat)
        print()
    if args.part in ("macs", "all"):
        part_macs(names)
        print()
    if args.part in ("learn", "all"):
        part_learn(names, args.steps, args.batch, args.test, args.side, args.lr)
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
