"""`tolerance --workers`: training runs per minute with 1 versus 2 worker processes (target ≥ 1.7×
on 2 cores), paired and interleaved within each repeat, medians reported.

Each arm runs the real command on a fresh SQLite study, the noise floor only so every run does the
same work:  python -m netlens tolerance DESIGN --only noise --seeds N --workers W --storage …
Arms: `1 worker` (one process, all the cores' torch threads — the command's default), `1 worker,
1 thread` (what each of two workers gets on 2 cores) and `2 workers` (two processes sharing the
study, the threads divided between them). `--arms` picks some (on a machine others load, two
intra-op threads per process can be many times slower than one: measure the 1-thread arm). Rates:
  steady   runs per minute while every worker is past its start-up: over the window from the
           last worker's end of its first run (a process's first run carries its imports and
           torch's first optimizer, ~3 s here) to the first worker's last run end (the storage's
           timestamps), each run counted by the share of its duration inside the window — the
           rate a long tolerance run goes at. It needs runs enough for the workers to overlap
           past their first: at quickstart's 0.12 s a run (100 steps) use --seeds 10 or more
  wall     runs per minute over the whole command, process start-up included

    python benchmarks/tolerance_workers.py                        # designs/quickstart.yaml
    python benchmarks/tolerance_workers.py DESIGN --seeds 8 --repeats 3 --steps 150
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# (name, workers, OMP threads of the command; None: the command's default, all the cores)
ARMS = [("1 worker", 1, None), ("1 worker, 1 thread", 1, 1), ("2 workers", 2, None)]


def run_arm(design: Path, seeds: int, steps: int | None, workers: int, threads: int | None,
            folder: Path) -> dict:
    import optuna

    url = f"sqlite:///{folder / 'bench.db'}"
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    env["PYTHONPATH"] = str(ROOT)
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    cmd = [sys.executable, "-m", "netlens", "tolerance", str(design), "--only", "noise", "--seeds",
           str(seeds), "--workers", str(workers), "--storage", url, "--study", "bench",
           "--out", str(folder), "--quiet"]
    if steps:
        cmd += ["--steps", str(steps)]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"netlens tolerance failed:\n{done.stderr}")
    ts = [t for t in optuna.load_study(study_name="bench", storage=url).trials
          if t.datetime_complete is not None]
    by_worker: dict = {}
    for t in ts:
        by_worker.setdefault(t.user_attrs.get("worker"), []).append(t)
    lo = max(min(t.datetime_complete for t in w) for w in by_worker.values())
    hi = min(max(t.datetime_complete for t in w) for w in by_worker.values())
    span = (hi - lo).total_seconds()
    inside = 0.0
    for t in ts:
        run = (t.datetime_complete - t.datetime_start).total_seconds()
        part = (min(hi, t.datetime_complete) - max(lo, t.datetime_start)).total_seconds()
        inside += max(0.0, part) / run if run > 0 else 0.0
    if span <= 0:
        raise SystemExit("the workers' runs did not overlap: use more --seeds or --steps")
    return {"runs": len(ts), "wall_s": wall, "span_s": span, "wall_rate": 60 * len(ts) / wall,
            "steady_rate": 60 * inside / span, "processes": len(by_worker)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("design", nargs="?", default=str(ROOT / "designs" / "quickstart.yaml"))
    p.add_argument("--seeds", type=int, default=6, help="seeds per noise group (3·seeds − 2 runs)")
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--arms", nargs="+", type=int, choices=range(len(ARMS)), default=list(range(len(ARMS))),
                   help="arm numbers: " + ", ".join(f"{i} {n}" for i, (n, _w, _t) in enumerate(ARMS)))
    a = p.parse_args()
    chosen = [ARMS[i] for i in a.arms]
    rates: dict[str, list[dict]] = {name: [] for name, _w, _t in chosen}
    for rep in range(a.repeats):
        arms = chosen if rep % 2 == 0 else chosen[::-1]      # interleaved, alternating order
        for name, w, threads in arms:
            with tempfile.TemporaryDirectory() as tmp:
                r = run_arm(Path(a.design), a.seeds, a.steps, w, threads, Path(tmp))
            rates[name].append(r)
            print(f"repeat {rep + 1} {name}: {r['runs']} runs, steady {r['steady_rate']:.1f}/min, "
                  f"wall {r['wall_rate']:.1f}/min ({r['wall_s']:.1f} s, {r['processes']} processes)",
                  flush=True)
    med = {n: {k: statistics.median(x[k] for x in rs) for k in ("steady_rate", "wall_rate")}
           for n, rs in rates.items()}
    print(f"\n{Path(a.design).name}, {a.seeds} seeds ({3 * a.seeds - 2} runs), {a.steps} steps, "
          f"{a.repeats} repeats, {os.cpu_count()} CPUs — medians:")
    for n in med:
        print(f"  {n:18s} steady {med[n]['steady_rate']:6.1f} runs/min   wall {med[n]['wall_rate']:6.1f} runs/min")
    two = rates.get("2 workers")
    for ref in ("1 worker", "1 worker, 1 thread"):
        if two and ref in rates:       # the median of the ratios paired within each repeat
            ratio = {k: statistics.median(b[k] / a[k] for a, b in zip(rates[ref], two))
                     for k in ("steady_rate", "wall_rate")}
            print(f"  2 workers over {ref}: steady {ratio['steady_rate']:.2f}×   "
                  f"wall {ratio['wall_rate']:.2f}×   (paired median; target ≥ 1.7×)")


if __name__ == "__main__":
    main()
