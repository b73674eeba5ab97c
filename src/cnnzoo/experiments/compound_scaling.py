"""B1-B7 are B0 scaled in width, depth and resolution together (Tan & Le 2019, §3.3 and Table 2).

The compound rule scales depth by α^φ, width by β^φ and resolution by γ^φ with α = 1.2, β = 1.1,
γ = 1.15 (a grid search on B0 under α·β²·γ² ≈ 2), so that each step of φ about doubles the FLOPs
(depth costs linearly, width and resolution quadratically). The released B1-B7
(:data:`cnnzoo.models.efficientnet.COEFFICIENTS`, the official code's ``efficientnet_params``) are
hand-set near the rule; here B_k is compared with the rule at φ = k, and the zoo's networks are
measured at their resolutions against Table 2's params and MACs.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from cnnzoo.experiments._costs import cost_table
from cnnzoo.experiments.base import Context, Experiment, Outcome, new_figure, save_figure

NETS = tuple(f"b{i}" for i in range(8))
#: Tan & Le 2019, Table 2: parameters as printed (M). Its MACs are the ``tf_efficientnet_*`` configs'.
TABLE2_PARAMS = {
    "b0": 5.3e6,
    "b1": 7.8e6,
    "b2": 9.2e6,
    "b3": 12e6,
    "b4": 19e6,
    "b5": 30e6,
    "b6": 43e6,
    "b7": 66e6,
}
#: How far a released coefficient may sit from the rule, and a network from Table 2, to count as "near".
RULE_TOLERANCE = 0.15
TABLE_TOLERANCE = 0.05


def coefficients() -> tuple[dict[str, dict[str, float]], dict[str, dict[str, float]]]:
    """The released (width, depth, resolution) of each B and the compound rule's at φ = its index."""
    from cnnzoo.models.efficientnet import COEFFICIENTS, compound_rule

    released = {
        b.upper(): {k: getattr(COEFFICIENTS[b], k) for k in ("width", "depth", "resolution")} for b in NETS
    }
    rule = {}
    for i, b in enumerate(NETS):
        c = compound_rule(i)
        rule[b.upper()] = {"width": round(c.width, 4), "depth": round(c.depth, 4), "resolution": c.resolution}
    return released, rule


def fitted_phi(c: dict[str, float]) -> float:
    """The φ whose rule best matches one network's (width, depth, resolution), least squares in logs."""
    import inspect

    from cnnzoo.models.efficientnet import compound_rule

    p = inspect.signature(compound_rule).parameters
    a, b, g = (math.log(p[k].default) for k in ("alpha", "beta", "gamma"))
    logs = (math.log(c["depth"]), math.log(c["width"]), math.log(c["resolution"] / 224))
    return sum(x * y for x, y in zip(logs, (a, b, g), strict=True)) / (a * a + b * b + g * g)


def _rule_product() -> float:
    """α·β²·γ² of the rule's constants (the defaults of :func:`~cnnzoo.models.efficientnet.compound_rule`)."""
    import inspect

    from cnnzoo.models.efficientnet import compound_rule

    p = {k: v.default for k, v in inspect.signature(compound_rule).parameters.items() if k != "phi"}
    return p["alpha"] * p["beta"] ** 2 * p["gamma"] ** 2


def measured() -> dict[str, dict[str, Any]]:
    """Params and MACs of ``efficientnet_b0`` … ``b7`` at their resolutions, beside Table 2's."""
    from cnnzoo.registry import get_model_config

    out = {}
    for b in NETS:
        totals = cost_table(f"efficientnet_{b}").totals  # at the config's resolution
        macs = get_model_config(f"tf_efficientnet_{b}").extra["macs"]
        out[f"efficientnet_{b}"] = {
            "params": int(totals["params"]),
            "macs": int(totals["macs"]),
            "table2_params": TABLE2_PARAMS[b],
            "table2_macs": macs["value"],
        }
    return out


def _plot(nets: dict, released: dict, rule: dict, path: Path) -> Path:
    fig, axes = new_figure((8.0, 3.0), ncols=2)
    xs = range(len(NETS))
    axes[0].semilogy(xs, [n["macs"] / 1e9 for n in nets.values()], "o-", label="measured")
    axes[0].semilogy(xs, [n["table2_macs"] / 1e9 for n in nets.values()], "kx", label="Table 2")
    base = next(iter(nets.values()))["macs"] / 1e9
    axes[0].semilogy(xs, [base * 2**i for i in xs], ":", color="gray", label="B0 · 2^φ")
    axes[0].set_xticks(list(xs), [b.upper() for b in NETS], fontsize=8)
    axes[0].set_ylabel("G multiply-adds")
    axes[0].legend(fontsize=7)
    for key, style in (("width", "tab:blue"), ("depth", "tab:orange"), ("resolution", "tab:green")):
        scale = 224 if key == "resolution" else 1
        axes[1].plot(xs, [released[b.upper()][key] / scale for b in NETS], "o-", color=style, label=key)
        axes[1].plot(xs, [rule[b.upper()][key] / scale for b in NETS], ":", color=style)
    axes[1].set_xticks(list(xs), [b.upper() for b in NETS], fontsize=8)
    axes[1].set_ylabel("multiplier of B0 (dotted: the rule)")
    axes[1].legend(fontsize=7)
    return save_figure(fig, path)


def _notes(rule_off: dict, phis: dict, mean_growth: float, worst_table: float) -> str:
    worst = max(rule_off, key=lambda b: max(abs(v) for v in rule_off[b].values()))
    key = max(rule_off[worst], key=lambda k: abs(rule_off[worst][k]))
    over = [b for b in rule_off if any(abs(v) > RULE_TOLERANCE for v in rule_off[b].values())]
    return (
        f"read with φ = k for B_k, the released coefficients lag the rule: {', '.join(over) or 'none'} "
        f"{'are' if len(over) != 1 else 'is'} more than {RULE_TOLERANCE:.0%} off (worst {worst}, "
        f"{rule_off[worst][key]:+.0%} in {key}). The φ that fits each released net best is "
        + ", ".join(f"{b} {v:.2f}" for b, v in phis.items())
        + f". The rest of the claim shows: the MACs grow {mean_growth:.2f}× per step on average "
        f"(α·β²·γ² = {_rule_product():.2f}), and every net is within {worst_table:.1%} of Table 2's "
        "params and MACs (B4 and B5 are the farthest, in MACs; the paper does not say how it counted them)."
    )


def run(ctx: Context) -> Outcome:
    released, rule = coefficients()
    nets = measured()
    macs = [n["macs"] for n in nets.values()]
    growth = [b / a for a, b in zip(macs, macs[1:], strict=False)]
    mean_growth = math.exp(sum(map(math.log, growth)) / len(growth))
    rule_off = {
        b: {k: released[b][k] / rule[b][k] - 1 for k in ("width", "depth", "resolution")} for b in released
    }
    table_off = {
        m: {"params": n["params"] / n["table2_params"] - 1, "macs": n["macs"] / n["table2_macs"] - 1}
        for m, n in nets.items()
    }
    phis = {b: fitted_phi(c) for b, c in released.items()}
    worst_rule = max(abs(v) for d in rule_off.values() for v in d.values())
    worst_table = max(abs(v) for d in table_off.values() for v in d.values())
    holds = abs(mean_growth - 2) <= 0.2 and worst_rule <= RULE_TOLERANCE and worst_table <= TABLE_TOLERANCE
    metrics = {
        "released": released,
        "rule": rule,
        "alpha_beta2_gamma2": _rule_product(),
        "params": {m: n["params"] for m, n in nets.items()},
        "macs": {m: n["macs"] for m, n in nets.items()},
        "table2": {m: {"params": n["table2_params"], "macs": n["table2_macs"]} for m, n in nets.items()},
        "table2_relative_error": table_off,
        "released_vs_rule": rule_off,
        "flops_growth": {
            f"{a.upper()}->{b.upper()}": g for a, b, g in zip(NETS[:-1], NETS[1:], growth, strict=True)
        },
        "flops_growth_geometric_mean": mean_growth,
        "fitted_phi": phis,
        "macs_vs_rule_at_fitted_phi": {
            m: n["macs"] / (macs[0] * _rule_product() ** phis[m[-2:].upper()]) - 1 for m, n in nets.items()
        },
    }
    return Outcome(
        holds=holds,
        metrics=metrics,
        criterion=(
            f"the MACs grow by 2 ± 0.2 per step on average (geometric mean over B0→B7), every released "
            f"coefficient is within {RULE_TOLERANCE:.0%} of the rule at φ = its index, and every network's "
            f"params and MACs are within {TABLE_TOLERANCE:.0%} of Table 2"
        ),
        setup=(
            "the zoo's efficientnet_b0 … b7 (torchvision's layout; the official coefficients) measured by the "
            "meta-device analyzer at 224, 240, 260, 300, 380, 456, 528 and 600 px; φ = k for B_k, since the "
            "paper does not publish the φ it used. Nothing is trained."
        ),
        plots=[_plot(nets, released, rule, ctx.out / "compound_scaling.png")],
        notes=_notes(rule_off, phis, mean_growth, worst_table),
    )


EXPERIMENT = Experiment(
    name="compound_scaling",
    claim="B1–B7 are B0 scaled in width, depth and resolution together, near the rule d = α^φ, w = β^φ, "
    "r = γ^φ with α·β²·γ² ≈ 2, so that FLOPs grow about 2^φ",
    source="Tan & Le 2019, §3.3 and Table 2",
    costs={"quick": "~5 s", "cpu": "~5 s", "paper": "~5 s"},
    run=run,
)
