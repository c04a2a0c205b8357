"""Phenomenon 4: the Hessian's most negative eigenvalue through training, beside the loss.

    python designs/phenomena/4-saddle-points/measure.py [--steps N]

Trains `small-init-tanh.yaml` (probe.hessian.bottom on) and prints at each probe the training
loss, the top eigenvalue λ_max and the bottom one λ_min (Lanczos Ritz values on the probe batch)
and |λ_min|/λ_max: about 1 at a saddle, small near a minimum.
"""
from __future__ import annotations

import argparse
from pathlib import Path

HERE = Path(__file__).resolve().parent


def trajectory(steps: int | None = None, every: int | None = None) -> list[dict]:
    from netlens.prescription import load_design
    from netlens.simulate import simulate

    over = {}
    if steps:
        over["train.steps"] = steps
    if every:
        over.update({"probe.every": every, "probe.hessian.every": every})
    rec = simulate(load_design(HERE / "small-init-tanh.yaml", overrides=over)).records
    return [{"step": s.step, "train_loss": s.train_loss, "train_accuracy": s.train_accuracy,
             "lambda_max": s.hessian, "lambda_min": s.hessian_min,
             "ratio": abs(s.hessian_min) / s.hessian if s.hessian and s.hessian_min is not None else None}
            for s in rec.snapshots if s.hessian is not None]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int)
    a = ap.parse_args()
    rows = trajectory(a.steps)
    print(f"{'step':>5} {'train loss':>10} {'train acc':>9} {'λ_max':>8} {'λ_min':>9} {'|λ_min|/λ_max':>13}")
    for r in rows:
        print(f"{r['step']:5d} {r['train_loss']:10.4g} {r['train_accuracy']:9.3f} {r['lambda_max']:8.4g} "
              f"{r['lambda_min']:9.4g} {r['ratio']:13.3f}")


if __name__ == "__main__":
    main()
