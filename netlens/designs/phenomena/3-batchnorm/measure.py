"""Phenomenon 3: batch norm widens the stable learning-rate range and reaches a target loss in
fewer steps (Ioffe & Szegedy 2015; Santurkar et al. 2018).

    python designs/phenomena/3-batchnorm/measure.py [--steps N] [--target L]

Trains `plain.yaml` and `batchnorm.yaml` at each learning rate of a log grid (every other cell
fixed) and prints, per lr: whether the run stayed stable (finite loss, ending below the chance
level ln 10), and the first step whose batch loss — averaged over a window of 10 steps — falls
below the target.
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path

HERE = Path(__file__).resolve().parent
LRS = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)
TARGET = 0.3
WINDOW = 10


def steps_to(curve: list[float], target: float, window: int = WINDOW) -> int | None:
    for i in range(window, len(curve) + 1):
        part = curve[i - window:i]
        if all(math.isfinite(v) for v in part) and sum(part) / window < target:
            return i
    return None


def sweep(lrs=LRS, steps: int | None = None, target: float = TARGET) -> dict[str, list[dict]]:
    from netlens.prescription import load_design
    from netlens.simulate import simulate

    out = {}
    for name in ("plain", "batchnorm"):
        rows = []
        for lr in lrs:
            over = {"train.lr": lr, **({"train.steps": steps} if steps else {})}
            rec = simulate(load_design(HERE / f"{name}.yaml", overrides=over), instruments=False).records
            curve = rec.loss_curve
            tail = curve[-WINDOW:]
            stable = (rec.divergence is None and len(curve) == rec.steps
                      and all(math.isfinite(v) for v in tail) and sum(tail) / len(tail) < math.log(10))
            rows.append({"lr": lr, "stable": stable, "steps_to_target": steps_to(curve, target),
                         "final_loss": sum(tail) / len(tail) if tail else math.nan,
                         "diverged_at": rec.divergence.step if rec.divergence else None})
        out[name] = rows
    return out


def summary(result: dict[str, list[dict]]) -> dict[str, dict]:
    s = {}
    for name, rows in result.items():
        stable = [r["lr"] for r in rows if r["stable"]]
        reached = [r["steps_to_target"] for r in rows if r["stable"] and r["steps_to_target"]]
        s[name] = {"stable_lrs": stable, "max_stable_lr": max(stable) if stable else None,
                   "fewest_steps": min(reached) if reached else None}
    return s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int)
    ap.add_argument("--target", type=float, default=TARGET)
    a = ap.parse_args()
    result = sweep(steps=a.steps, target=a.target)
    print(f"steps to a batch loss below {a.target} (mean of {WINDOW} steps); ✗ = unstable")
    print(f"{'lr':>6} {'plain':>16} {'batchnorm':>16}")
    for p, b in zip(result["plain"], result["batchnorm"]):
        def cell(r):
            if not r["stable"]:
                return "✗ diverged" if r["diverged_at"] is not None else f"✗ loss {r['final_loss']:.3g}"
            return str(r["steps_to_target"]) if r["steps_to_target"] else f"— (loss {r['final_loss']:.3g})"
        print(f"{p['lr']:6g} {cell(p):>16} {cell(b):>16}")
    for name, s in summary(result).items():
        print(f"{name}: stable for lr in {s['stable_lrs']}; fewest steps to target {s['fewest_steps']}")


if __name__ == "__main__":
    main()
