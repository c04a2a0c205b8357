"""Pruning: training steps spent with versus without pruning at equal trial count, and the best
merit each finds (docs/performance.md: ≥ 40% of the steps saved at equal best merit), side by side.

For each seed, two fresh studies of the same design and trial count, one process each:
  pruned     the defaults: median pruner on the intermediate validation loss, aberration pruning
  unpruned   --pruner none --no-aberration-pruning: every trial trains all its steps
Steps are what the trials record (a pruned trial counts the steps it trained before it stopped).
The seed changes the data split, the initialization and the sampler, so the spread over seeds is
the noise the two best merits are compared against.

    python benchmarks/optimize_pruning.py                         # the search space below
    python benchmarks/optimize_pruning.py DESIGN --trials 30 --seeds 0 1 2
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import textwrap
import time
from pathlib import Path

# A digits MLP whose learning rate, width and activation are unknown: a realistic first search,
# where many trials are poor and pruning has something to stop.
SPACE = """
netlens: 1
name: bench-pruning
seed: 0
data: {source: digits, batch: 64}
layers:
  - flatten
  - linear: {width: {choose: [32, 64, 128]}, init: he}
  - choose: [relu, tanh]
  - linear: {width: 64, init: he}
  - relu
  - linear: 10
train:
  optimizer: sgd
  momentum: 0.9
  lr: {vary: [1.0e-4, 1.0], log: true}
  steps: 200
probe: {every: 20, hessian: false}
"""


def run(design: Path, trials: int, seed: int, pruned: bool, folder: Path) -> dict:
    from netlens.optimize import Settings, optimize

    s = Settings(trials=trials, seed=seed, storage=f"sqlite:///{folder / 'bench.db'}",
                 study=f"{'pruned' if pruned else 'unpruned'}-{seed}",
                 pruner="median" if pruned else "none", prune_aberrations=pruned)
    t0 = time.perf_counter()
    doc = optimize(design, s, out=folder, write=False).doc
    return {"steps": doc["steps"]["spent"], "planned": doc["steps"]["planned"],
            "best": doc["best"]["value"], "pruned": doc["trials"]["pruned"],
            "by": doc["pruned_by"], "seconds": time.perf_counter() - t0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("design", nargs="?", default=None)
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        design = Path(args.design) if args.design else Path(tmp) / "bench-pruning.yaml"
        if args.design is None:
            design.write_text(textwrap.dedent(SPACE).lstrip())
        print(f"{design.name}: {args.trials} trials per study, seeds {args.seeds}")
        rows = []
        for seed in args.seeds:
            pair = {}
            for pruned in (True, False):
                pair[pruned] = run(design, args.trials, seed, pruned, Path(tmp))
            p, u = pair[True], pair[False]
            saved = 1 - p["steps"] / u["steps"]
            rows.append((seed, p, u, saved))
            print(f"  seed {seed}: pruned {p['steps']:6,} steps ({p['pruned']} trials pruned: {p['by']}), "
                  f"best {p['best']:.4f}, {p['seconds']:.0f} s | unpruned {u['steps']:6,} steps, "
                  f"best {u['best']:.4f}, {u['seconds']:.0f} s | saved {saved:.0%}", flush=True)
    saved = [r[3] for r in rows]
    bp, bu = [r[1]["best"] for r in rows], [r[2]["best"] for r in rows]
    diff = [a - b for a, b in zip(bp, bu)]
    total_p, total_u = sum(r[1]["steps"] for r in rows), sum(r[2]["steps"] for r in rows)
    print()
    print(f"steps: pruned {total_p:,} vs unpruned {total_u:,} over {len(rows)} seed(s): "
          f"{1 - total_p / total_u:.0%} saved (per seed {min(saved):.0%} – {max(saved):.0%}); "
          f"target ≥ 40%")
    print(f"best merit (val_loss): pruned mean {statistics.mean(bp):.4f}, unpruned mean "
          f"{statistics.mean(bu):.4f}; paired difference pruned − unpruned "
          f"{statistics.mean(diff):+.4f}" + (f" ± {statistics.stdev(diff) / len(diff) ** 0.5:.4f} (s.e.)"
                                              if len(diff) > 1 else "")
          + (f"; seed-to-seed spread of the best {statistics.stdev(bu):.4f}" if len(bu) > 1 else ""))


if __name__ == "__main__":
    main()
