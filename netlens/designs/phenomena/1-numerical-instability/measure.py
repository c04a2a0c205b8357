"""Phenomenon 1: a 1-ulp change at init, and a step past 2/λ (Summers & Dinneen 2021; Cohen et
al. 2021).

    python designs/phenomena/1-numerical-instability/measure.py [--seeds N] [--out DIR]

Part 1 runs netlens' instability meter (`netlens tolerance --only instability`) on
`stable.yaml` and `chaotic.yaml`: the 1-ulp twin's relative parameter distance
‖θA − θB‖ / ‖θA − θ0‖ at the end, its doubling time, and how often the twin's predictions differ
from the original's, beside a re-seeded run's.
Part 2 trains `full-batch.yaml` by gradient descent at learning rates across 2/λ₀ (λ₀: the top
Hessian eigenvalue at init, measured) and prints the final loss, whether it diverged, and the
sharpness λ at the end against 2/η.
"""
from __future__ import annotations

import argparse
import math
import shutil
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
FACTORS = (0.5, 0.9, 1.5, 3.0, 6.0, 12.0, 24.0)       # η in units of 2/λ₀


def twins(seeds: int = 2, steps: int | None = None, workdir: Path | None = None) -> dict[str, dict]:
    """The instability meter on both designs (copied to `workdir`, where the study is stored)."""
    from netlens.tolerance import Settings, run_tolerance

    work = Path(workdir or tempfile.mkdtemp(prefix="netlens-ulp-"))
    work.mkdir(parents=True, exist_ok=True)
    out = {}
    for name in ("stable", "chaotic"):
        path = work / f"{name}.yaml"
        shutil.copy(HERE / f"{name}.yaml", path)
        res = run_tolerance(path, Settings(seeds=seeds, only=["instability"], steps=steps),
                            out=work / f"{name}-tolerance")
        out[name] = res.doc["instability"]
    return out


def step_sizes(factors=FACTORS, steps: int | None = None) -> tuple[float, list[dict]]:
    from netlens.prescription import load_design
    from netlens.simulate import simulate

    base = {"train.steps": steps} if steps else {}
    lam0 = simulate(load_design(HERE / "full-batch.yaml", overrides={**base, "train.steps": 1})).records.snapshots[0].hessian
    rows = []
    for f in factors:
        lr = f * 2 / lam0
        rec = simulate(load_design(HERE / "full-batch.yaml", overrides={**base, "train.lr": lr})).records
        lams = [s.hessian for s in rec.snapshots if s.hessian is not None and math.isfinite(s.hessian)]
        curve = [v for v in rec.loss_curve if math.isfinite(v)]
        rows.append({"factor": f, "lr": lr, "diverged": rec.divergence is not None,
                     "diverged_at": rec.divergence.step if rec.divergence else None,
                     "first_loss": rec.loss_curve[0] if rec.loss_curve else math.nan,
                     "max_loss": max(curve) if curve else math.nan,
                     "final_loss": rec.loss_curve[-1] if rec.loss_curve else math.nan,
                     "lambda_end": lams[-1] if lams else None, "limit": 2 / lr})
    return lam0, rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--out", type=Path, help="Folder for the tolerance studies (default: a temporary one).")
    a = ap.parse_args()
    print("part 1 — the 1-ulp twin (netlens tolerance --only instability)")
    print(f"{'design':8} {'‖θA−θB‖/‖θA−θ0‖':>16} {'doubling':>9} {'twin differs':>13} {'re-seeded differs':>18}  verdict")
    for name, r in twins(a.seeds, workdir=a.out).items():
        dbl = "—" if r["doubling_steps"] is None else f"{r['doubling_steps']:.0f} steps"
        print(f"{name:8} {r['relative_distance']:16.3g} {dbl:>9} {r['disagreement']:13.1%} "
              f"{r['seed_disagreement']:18.1%}  {'unstable' if r['unstable'] else 'stable'}")
    lam0, rows = step_sizes()
    print(f"\npart 2 — full-batch gradient descent; λ₀ = {lam0:.4g} at init, so 2/λ₀ = {2 / lam0:.4g}")
    print(f"{'η·λ₀/2':>7} {'lr':>7} {'loss step 1':>11} {'max loss':>9} {'final loss':>10} {'λ end':>8} {'2/η':>7}  outcome")
    for r in rows:
        outcome = f"diverged at step {r['diverged_at']}" if r["diverged"] else "trained"
        lam = "—" if r["lambda_end"] is None else f"{r['lambda_end']:.3g}"
        print(f"{r['factor']:7g} {r['lr']:7.3g} {r['first_loss']:11.4g} {r['max_loss']:9.4g} {r['final_loss']:10.4g} "
              f"{lam:>8} {r['limit']:7.3g}  {outcome}")


if __name__ == "__main__":
    main()
