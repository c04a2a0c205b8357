"""Phenomenon 6: fit time and generalization gap on true vs random labels (Zhang et al. 2017).

    python designs/phenomena/6-memorization/measure.py [--steps N] [--seed S]

Trains `true-labels.yaml` and `random-labels.yaml` (identical but for `data.label_noise`) with
netlens' instruments and prints, for each: the first probe step at which the training accuracy
reaches 0.99 (the fit time), the final train and validation accuracy, and the gap between them.
"""
from __future__ import annotations

import argparse
from pathlib import Path

HERE = Path(__file__).resolve().parent
FIT = 0.99


def fit_step(records, level: float = FIT) -> int | None:
    """The first probe step whose training accuracy (eval mode, whole training split) ≥ level."""
    return next((s.step for s in records.snapshots
                 if s.train_accuracy is not None and s.train_accuracy >= level), None)


def measure(steps: int | None = None, seed: int | None = None, n: int | None = None) -> list[dict]:
    from netlens.prescription import load_design
    from netlens.simulate import simulate

    out = []
    for name in ("true-labels", "random-labels"):
        over = {k: v for k, v in (("train.steps", steps), ("seed", seed), ("data.n", n)) if v is not None}
        design = load_design(HERE / f"{name}.yaml", overrides=over)
        rec = simulate(design).records
        end = rec.snapshots[-1]
        out.append({"labels": name.split("-")[0], "fit_step": fit_step(rec), "steps": rec.steps_done,
                    "train_accuracy": end.train_accuracy, "val_accuracy": end.val_accuracy,
                    "gap": end.train_accuracy - end.val_accuracy,
                    "train_loss": end.train_loss, "val_loss": end.val_loss})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int)
    ap.add_argument("--seed", type=int)
    a = ap.parse_args()
    rows = measure(a.steps, a.seed)
    print(f"{'labels':8} {'fit step (train acc ≥ 0.99)':>28} {'train acc':>10} {'val acc':>8} {'gap':>7}")
    for r in rows:
        fit = "not reached" if r["fit_step"] is None else str(r["fit_step"])
        print(f"{r['labels']:8} {fit:>28} {r['train_accuracy']:10.3f} {r['val_accuracy']:8.3f} {r['gap']:7.3f}")
    t, r = rows
    if t["fit_step"] and r["fit_step"]:
        print(f"random labels take {r['fit_step'] / t['fit_step']:.1f}× the steps to fit; "
              f"gap {r['gap']:.3f} against {t['gap']:.3f}")


if __name__ == "__main__":
    main()
