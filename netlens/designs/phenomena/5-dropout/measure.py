"""Phenomenon 5: dropout against Gaussian noise of equal variance and against no regularization,
over seeds, with the noise floor — and how many seeds each difference would need.

    python designs/phenomena/5-dropout/measure.py [--seeds N]

Runs `netlens compare` (the Python API) on none.yaml, dropout.yaml and gaussian.yaml — the
runs are kept in each design's Optuna storage, so a second call trains nothing — and prints, for
each pair and each validation metric, the difference of means, the resolution at n seeds
(2·√(sd_a²/n + sd_b²/n), the rule `compare` uses) and the seeds per design that would make the
observed difference resolvable at the observed spread.
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path

HERE = Path(__file__).resolve().parent
NAMES = ("none", "dropout", "gaussian")
METRICS = ("val_loss", "val_error", "train_loss")


def seeds_needed(delta: float, sd_a: float, sd_b: float) -> float:
    """n with |Δ| = 2·√((sd_a² + sd_b²)/n): the seeds per design that resolve Δ."""
    if abs(delta) < 1e-6:            # the same mean (to float rounding): no number of seeds resolves it
        return math.inf
    return max(2, math.ceil(4 * (sd_a ** 2 + sd_b ** 2) / delta ** 2))


def pairs(seeds: int = 5, steps: int | None = None, folder: Path = HERE) -> list[dict]:
    from netlens.tolerance import Settings, compare

    doc = compare([folder / f"{n}.yaml" for n in NAMES], Settings(seeds=seeds, steps=steps)).doc
    m = {d["name"].removeprefix("reg-"): d["metrics"] for d in doc["designs"]}
    out = []
    for a, b in (("none", "dropout"), ("none", "gaussian"), ("gaussian", "dropout")):
        for k in METRICS:
            sa, sb = m[a][k], m[b][k]
            delta = sb["mean"] - sa["mean"]
            res = 2 * math.sqrt(sa["sd"] ** 2 / sa["n"] + sb["sd"] ** 2 / sb["n"])
            out.append({"a": a, "b": b, "metric": k, "delta": delta, "resolution": res,
                        "resolved": abs(delta) > res, "n": sa["n"],
                        "seeds_needed": seeds_needed(delta, sa["sd"], sb["sd"])})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    a = ap.parse_args()
    rows = pairs(a.seeds)
    print(f"{'b − a':22} {'metric':10} {'Δ':>10} {'resolution':>10}  {'at n':>4}  {'resolved':8} {'seeds to resolve':>16}")
    for r in rows:
        need = "never (Δ = 0)" if math.isinf(r["seeds_needed"]) else f"{r['seeds_needed']:,}"
        print(f"{r['b'] + ' − ' + r['a']:22} {r['metric']:10} {r['delta']:+10.4f} {r['resolution']:10.4f}  "
              f"{r['n']:>4}  {'yes' if r['resolved'] else 'no':8} {need:>16}")


if __name__ == "__main__":
    main()
