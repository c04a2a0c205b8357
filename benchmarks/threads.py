"""The thread policy (`train.threads: auto`) against torch's default thread count, paired.

Each repeat trains every design once under each variant, in turn (interleaved, so a change in
the machine's load hits both alike), and the ratio default/policy is taken within the repeat;
the medians over repeats are printed. Variants:
  policy     `train.threads: auto` — one thread unless the model is large (netlens.train.threads)
  default    torch's own default: one thread per core (or OMP_NUM_THREADS), as before netlens
             chose

`--burn K` runs K background processes that spin on the CPU while measuring (a machine busy
with other work: CI runners, a colleague's job, `optimize --workers`). Run it without
OMP_NUM_THREADS set, or torch's default is whatever it says.

    python benchmarks/threads.py designs/quickstart.yaml designs/deep-tanh.yaml --repeats 3
    python benchmarks/threads.py designs/quickstart.yaml --repeats 3 --burn 2
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import textwrap
from pathlib import Path

import torch

from netlens.prescription import load_design
from netlens.simulate import simulate

DEFAULT = torch.get_num_threads()        # torch's default in this process, before netlens sets it

# A model large enough for `auto` to use several threads (≈ 3·10⁸ multiply–adds per batch).
LARGE = """
netlens: 1
name: wide-mlp
seed: 0
data: {source: digits, batch: 256}
layers:
  - flatten
  - linear: {width: 1024, init: he}
  - relu
  - linear: {width: 1024, init: he}
  - relu
  - linear: 10
train: {optimizer: adam, lr: 0.001, steps: 60}
probe: {every: 20, hessian: false}
"""


def seconds(path: Path, threads: int | str, steps: int | None) -> tuple[float, int]:
    over = {"train.threads": threads, **({"train.steps": steps} if steps else {})}
    records = simulate(load_design(path, overrides=over)).records
    return records.seconds, records.threads


def burners(k: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(k)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("designs", nargs="*", type=Path)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--steps", type=int, default=None, help="override train.steps")
    ap.add_argument("--burn", type=int, default=0, help="background CPU-spinning processes")
    ap.add_argument("--large", action="store_true", help="add a wide MLP where `auto` uses threads")
    args = ap.parse_args()
    paths = list(args.designs)
    if args.large:
        tmp = Path(os.environ.get("TMPDIR", "/tmp")) / "netlens-threads-wide-mlp.yaml"
        tmp.write_text(textwrap.dedent(LARGE).lstrip())
        paths.append(tmp)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"torch {torch.__version__}, {cores} cores, torch default {DEFAULT} threads, "
          f"{args.burn} background burner(s), load average {os.getloadavg()[0]:.2f}")
    procs = burners(args.burn)
    try:
        for path in paths:
            pol, dfl, ratio = [], [], []
            used = None
            for _ in range(args.repeats):
                p, used = seconds(path, "auto", args.steps)
                d, _ = seconds(path, DEFAULT, args.steps)
                pol.append(p)
                dfl.append(d)
                ratio.append(d / p)
            print(f"{path.stem:22s} policy ({used} thread{'s' if used != 1 else ''}) "
                  f"{statistics.median(pol):7.2f} s   default ({DEFAULT}) {statistics.median(dfl):7.2f} s   "
                  f"default/policy {statistics.median(ratio):5.2f}×  (median of {args.repeats})")
    finally:
        for p in procs:
            p.kill()
            p.wait()


if __name__ == "__main__":
    main()
