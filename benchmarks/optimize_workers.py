"""`optimize --workers`: trials per minute with 1 versus 2 worker processes (docs/performance.md: ≥ 1.7× on
2 cores), side by side in one run.

Each arm runs the real command on a fresh SQLite study, with pruning off so every trial does the
same work:  python -m netlens optimize DESIGN --trials N --workers W --pruner none
Arms, interleaved within each repeat:
  1 worker            the command's default: one process with all the cores' torch threads
  1 worker, 1 thread  one process, one thread (what each of two workers gets on 2 cores)
  2 workers           two processes sharing the study, the threads divided between them
Two rates per arm:
  steady   trials finished per minute between the first trial's start and the last trial's end
           (the storage's timestamps): the rate a long study runs at — "trials per hour"
  wall     trials per minute over the whole command, process start-up (importing torch, about
           5–10 s per process) included: what a short study sees

    python benchmarks/optimize_workers.py                       # designs/quickstart.yaml
    python benchmarks/optimize_workers.py DESIGN --trials 40 --repeats 3
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ARMS = [("1 worker", 1, None), ("1 worker, 1 thread", 1, 1), ("2 workers", 2, None)]


def run_arm(design: Path, trials: int, workers: int, threads: int | None, folder: Path) -> dict:
    import optuna

    url = f"sqlite:///{folder / 'bench.db'}"
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "netlens", "optimize", str(design), "--trials", str(trials),
                           "--workers", str(workers), "--pruner", "none", "--no-aberration-pruning",
                           "--storage", url, "--study", "bench", "--out", str(folder), "--json"],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"netlens optimize failed:\n{done.stderr}")
    doc = json.loads(done.stdout)
    study = optuna.load_study(study_name="bench", storage=url)
    ts = [t for t in study.trials if t.datetime_complete is not None]
    span = (max(t.datetime_complete for t in ts) - min(t.datetime_start for t in ts)).total_seconds()
    return {"trials": len(ts), "wall_s": wall, "span_s": span,
            "wall_rate": 60 * len(ts) / wall, "steady_rate": 60 * len(ts) / span,
            "threads": doc["this_run"]["threads_per_worker"],
            "by_worker": {k: len(v) for k, v in doc["this_run"]["by_worker"].items()},
            "best": doc["best"]["value"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("design", nargs="?", default=str(ROOT / "designs" / "quickstart.yaml"))
    ap.add_argument("--trials", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    cores = len(os.sched_getaffinity(0))
    print(f"{Path(args.design).name}: {args.trials} trials per arm, {args.repeats} repeat(s), "
          f"{cores} cores available")
    results: dict[str, list[dict]] = {name: [] for name, _, _ in ARMS}
    for rep in range(args.repeats):
        for name, workers, threads in ARMS:
            with tempfile.TemporaryDirectory() as tmp:
                r = run_arm(Path(args.design), args.trials, workers, threads, Path(tmp))
            results[name].append(r)
            print(f"  repeat {rep + 1} {name:<20} steady {r['steady_rate']:6.1f}/min  wall "
                  f"{r['wall_rate']:6.1f}/min  ({r['wall_s']:.1f} s, {r['threads']} thread(s) "
                  f"per worker, trials by worker {r['by_worker']}, best {r['best']:.4f})", flush=True)
    print()
    base = {k: statistics.median(r[k] for r in results["1 worker"]) for k in ("steady_rate", "wall_rate")}
    print(f"{'arm':<20} {'steady/min':>11} {'× 1 worker':>11} {'wall/min':>9} {'× 1 worker':>11}")
    for name, _, _ in ARMS:
        steady = statistics.median(r["steady_rate"] for r in results[name])
        wall = statistics.median(r["wall_rate"] for r in results[name])
        print(f"{name:<20} {steady:11.1f} {steady / base['steady_rate']:10.2f}× {wall:9.1f} "
              f"{wall / base['wall_rate']:10.2f}×")
    print("target (docs/performance.md): 2 workers ≥ 1.7× the trials per hour of one worker")


if __name__ == "__main__":
    main()
