"""`netlens.watch` overhead: a user's own loop under `watch` at its default cadence (every 20
steps, leaf rows) against the same loop bare, on the same model, data, batch order and steps.

Paired and interleaved: each repeat runs both variants once, in turn, from the same initial
weights, and the ratio is taken within the repeat; the median over repeats is printed. Two
ratios: "in the loop" times `watch` from entering the block (the row discovery and the step-0
probe included) to the end of the last step, as `benchmarks/overhead.py` times `simulate`;
"with the run folder" adds leaving the block: the last probe and writing records.json,
model.json, summary.json and the two plots (about a second of matplotlib, whatever the model).

Models:
  quickstart  the quickstart design's size: 64 → 128 → 128 → 10 relu MLP, batch 64, Adam
  mid         a mid-size MLP: 784 → 1024 → 1024 → 1024 → 10 relu, batch 256, Adam
              (a step of ≥ 10 ms on one CPU thread)

    OMP_NUM_THREADS=1 python benchmarks/watch_overhead.py --repeats 5 --steps 300
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

import netlens.watch


def mlp(sizes: list[int]) -> nn.Module:
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-2], sizes[1:-1]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    layers.append(nn.Linear(sizes[-2], sizes[-1]))
    return nn.Sequential(*layers)


MODELS = {
    "quickstart": ([64, 128, 128, 10], 64, 1437),
    "mid": ([784, 1024, 1024, 1024, 10], 256, 4096),
}


def run(name: str, steps: int, watched: bool, out: Path) -> tuple[float, float]:
    """(seconds to the end of the last step, seconds including leaving `watch`: the last
    probe and writing the run folder)."""
    sizes, batch, n = MODELS[name]
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, sizes[0], generator=g)
    y = torch.randint(0, sizes[-1], (n,), generator=g)
    torch.manual_seed(0)
    model = mlp(sizes)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    order = torch.randint(0, n, (steps, batch), generator=g)

    def loop() -> None:
        for step in range(steps):
            idx = order[step]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x[idx]), y[idx])
            loss.backward()
            opt.step()

    t0 = time.perf_counter()
    if watched:
        with netlens.watch(model, opt, loss_fn, probe=(x[:256], y[:256]), out=out, force=True):
            loop()
            t1 = time.perf_counter()
    else:
        loop()
        t1 = time.perf_counter()
    return t1 - t0, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--steps", type=int, default=300)
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        for name in args.models:
            run(name, 20, False, out)
            run(name, 20, True, out)       # warm-up: imports, allocator, first plots
            bare, looped, total = [], [], []
            for _ in range(args.repeats):
                b, _b = run(name, args.steps, False, out)
                w_loop, w_total = run(name, args.steps, True, out)
                bare.append(b)
                looped.append(w_loop / b)
                total.append(w_total / b)
            med = statistics.median
            print(f"{name:10s} {args.steps} steps, bare {med(bare):.3f}s "
                  f"({1000 * med(bare) / args.steps:.2f} ms/step); watch/bare, median of "
                  f"{args.repeats}: in the loop {med(looped):.3f}× (range {min(looped):.3f}–"
                  f"{max(looped):.3f}), with the final probe and the run folder {med(total):.3f}× "
                  f"(range {min(total):.3f}–{max(total):.3f})")

if __name__ == "__main__":
    main()
