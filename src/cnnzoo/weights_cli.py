"""``cnnzoo weights inspect|convert`` and ``cnnzoo export``: weights in and out.

* ``weights inspect FILE``: which library and layout a checkpoint is, the cnnzoo models it fits,
  and, for the closest model when none fits, the missing and unexpected keys with their nearest
  names (:func:`cnnzoo.weights.identify`).
* ``weights convert FILE --model NAME --out F.safetensors``: the file in cnnzoo's keys, with the
  preprocessing in its metadata (:class:`cnnzoo.weights.Preprocessing`); ``create_model(NAME,
  weights=F)`` reads it back into ``model.default_cfg``.
* ``export MODEL | RUN_DIR [--weights FILE] --out F.onnx``: ONNX with a dynamic batch
  (:func:`cnnzoo.export.export_onnx`).

Files are read with safetensors or ``torch.load(weights_only=True)``; a pickle that needs code is
refused with one line saying why. An existing ``--out`` is kept unless ``--force`` is given.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(p) for p in text.split(",") if p.strip())
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from e


def register(sub: argparse._SubParsersAction) -> None:
    from cnnzoo.train.network_args import add_network_arguments

    w = sub.add_parser("weights", help="inspect or convert checkpoints (torchvision, timm, cnnzoo)")
    wsub = w.add_subparsers(dest="weights_command", metavar="COMMAND", required=True)
    p = wsub.add_parser("inspect", help="which library, layout and cnnzoo models a checkpoint fits")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--top", type=int, default=5, help="how many candidate models to list (default 5)")
    p.set_defaults(func=cmd_inspect)

    p = wsub.add_parser("convert", help="write a checkpoint as cnnzoo safetensors with its preprocessing")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--model", required=True, help="the cnnzoo model the file is for")
    p.add_argument("--out", required=True, metavar="F.safetensors")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    p.add_argument(
        "--layout",
        default=None,
        metavar="LIBRARY[-LAYOUT]",
        help="the layout to read the file as (timm, torchvision, timm-resnet50...), where the file alone "
        "cannot tell two layouts that map it differently apart",
    )
    p.add_argument("--mean", type=_floats, default=None, metavar="A,B,C", help="override the recorded mean")
    p.add_argument("--std", type=_floats, default=None, metavar="A,B,C", help="override the recorded std")
    p.add_argument("--input-size", type=int, default=None, metavar="SIDE", help="override the input side")
    p.add_argument("--interpolation", default=None, help="resize filter: bilinear, bicubic, nearest")
    p.add_argument(
        "--class-names",
        default=None,
        metavar="A,B,...|FILE",
        help="class names, comma-separated or a text file with one per line",
    )
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("export", help="export a model or a run to ONNX (dynamic batch)")
    add_network_arguments(p)
    p.add_argument("--out", required=True, metavar="F.onnx")
    p.add_argument(
        "--input-size", type=int, default=None, metavar="SIDE", help="square side (default: the model's)"
    )
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    p.add_argument(
        "--check", action="store_true", help="run the file in onnxruntime and compare with PyTorch"
    )
    p.set_defaults(func=cmd_export)


def _refuse_overwrite(out: Path, force: bool) -> None:
    from cnnzoo.errors import ConfigError

    if out.exists() and not force:
        raise ConfigError(f"{out} exists; give another --out, or --force to overwrite it")


def cmd_inspect(args: argparse.Namespace) -> int:
    from cnnzoo.weights import (
        KEY_MAPS,
        file_format,
        identify,
        identify_layout,
        read_preprocessing,
        read_state_dict,
    )

    state = read_state_dict(args.file)
    n = sum(v.numel() for v in state.values())
    print(f"{args.file}: {file_format(args.file)}, {len(state)} tensors, {n:,} values")
    matches = identify(args.file, top=None)
    fitting = [m for m in matches if m.fits]
    if fitting:
        best = fitting[0]
        verdict = identify_layout(args.file, best.model)
        if verdict.library is None and verdict.twins:  # the keys cannot tell the libraries apart
            kind = "the same mapping" if verdict.same_mapping else "they load it differently"
            print(f"layout: {' or '.join(verdict.twins)} (indistinguishable; {kind})")
        else:
            note = next((km.note for km in KEY_MAPS if km.name == verdict.layout), best.note)
            library = verdict.library or best.library
            print(f"layout: {verdict.layout or best.name} ({library})" + (f"; {note}" if note else ""))
        print(f"identified: {verdict.reason}")
        print(f"evidence: {'; '.join(verdict.evidence)}")
        print("fits:")
        for m in fitting[: args.top]:
            build = ", ".join(f"{k}={v}" for k, v in m.diff.build_args.items())
            print(f"  {m.model}  (as {m.name}{'; build with ' + build if build else ''})")
    else:
        print("fits no cnnzoo model; the closest:")
        for m in matches[: args.top]:
            print(f"  {m.model}  ({m.name}, {m.score:.0%} of keys agree): {m.diff.summary()}")
    pre = read_preprocessing(args.file)
    if pre is not None:
        names = f"{len(pre.class_names)} class names" if pre.class_names else "no class names"
        print(
            f"preprocessing: mean {pre.mean}, std {pre.std}, input {'x'.join(map(str, pre.input_size))}, "
            f"{pre.interpolation}, {names}"
        )
    return 0


def _class_names(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    path = Path(text)
    if path.is_file():
        return tuple(line.strip() for line in path.read_text().splitlines() if line.strip())
    return tuple(t.strip() for t in text.split(",") if t.strip())


def cmd_convert(args: argparse.Namespace) -> int:
    import torch

    from cnnzoo.errors import ConfigError
    from cnnzoo.registry import create_model
    from cnnzoo.weights import (
        convert_state_dict,
        default_preprocessing,
        identify,
        identify_layout,
        save_cnnzoo_weights,
    )

    out = Path(args.out)
    if out.suffix != ".safetensors":
        raise ConfigError(f"--out {out} must end in .safetensors (cnnzoo writes safetensors only)")
    _refuse_overwrite(out, args.force)
    # refuses a file that does not fit (naming what it fits), or one whose layout only --layout decides
    state = convert_state_dict(args.file, args.model, layout=args.layout)
    verdict = identify_layout(args.file, args.model, layout=args.layout)
    match = next((m for m in identify(args.file, top=None) if m.model == args.model), None)
    with torch.device("meta"):
        model = create_model(args.model, **(match.diff.build_args if match else {}))
    pre = default_preprocessing(model, args.file, match.library if match else "")
    names = _class_names(args.class_names)
    if names is not None and len(names) != model.num_classes:
        raise ConfigError(
            f"--class-names gives {len(names)} names and the file's head has {model.num_classes} classes"
        )
    side = args.input_size
    pre = pre._replace(
        mean=args.mean or pre.mean,
        std=args.std or pre.std,
        input_size=(pre.input_size[0], side, side) if side else pre.input_size,
        interpolation=args.interpolation or pre.interpolation,
        class_names=names if names is not None else pre.class_names,
    )
    for what, values in (("--mean", pre.mean), ("--std", pre.std)):
        if len(values) != pre.input_size[0]:
            raise ConfigError(
                f"{what} has {len(values)} values and the model takes {pre.input_size[0]} channels"
            )
    layout = " or ".join(verdict.twins) if verdict.library is None and verdict.twins else verdict.layout
    save_cnnzoo_weights(
        state, out, model=args.model, preprocessing=pre, source=Path(args.file).name, source_layout=layout
    )
    print(
        f"wrote {out}: {len(state)} tensors in {args.model}'s keys; input {'x'.join(map(str, pre.input_size))} "
        f"{pre.interpolation}, mean {pre.mean}, std {pre.std}, {len(pre.class_names)} class names"
    )
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from cnnzoo.export import default_input_size, export_onnx
    from cnnzoo.train.runs import open_network

    out = Path(args.out)
    _refuse_overwrite(out, args.force)
    net = open_network(args.network, weights=args.weights, weights_from=args.weights_from)
    c, h, w = default_input_size(net.model)
    if args.input_size:
        h = w = args.input_size
    elif net.config.get("input_size"):
        h = w = int(net.config["input_size"])
    export_onnx(net.model, out, (c, h, w))
    print(
        f"wrote {out}: {net.name}, input x (batch, {c}, {h}, {w}), output logits (batch, {net.model.num_classes})"
    )
    if args.check:
        diff = check_onnx(net.model, out, (c, h, w))
        print(f"onnxruntime matches PyTorch at batch 1 and 3: largest relative difference {diff:.2e}")
    return 0


def check_onnx(model, path: str | Path, input_size: tuple[int, int, int], batches=(1, 3)) -> float:
    """The largest relative difference between onnxruntime's and PyTorch's outputs on random inputs."""
    import numpy as np
    import onnxruntime as ort
    import torch

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    worst = 0.0
    model.eval()
    for b in batches:
        x = torch.randn(b, *input_size, generator=torch.Generator().manual_seed(b))
        with torch.no_grad():
            ref = model(x).numpy()
        got = sess.run(None, {"x": x.numpy()})[0]
        worst = max(worst, float(np.abs(got - ref).max() / max(np.abs(ref).max(), 1e-12)))
    return worst
