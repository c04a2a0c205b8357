"""Instrument overhead: `simulate`'s training loop with default instruments against a bare PyTorch
loop on the same model, data, batch order, steps and seed (docs/performance.md: target ≤ 1.10×).

Paired and interleaved: each repeat runs every variant once, in turn, and the ratio is taken within
the repeat; the median over repeats is printed. Variants:
  bare        a plain loop written here: forward, loss, backward, step
  netlens     netlens's own loop, no instruments (the loop's own cost)
  probes      instruments without the Hessian probe
  default     default instruments (Hessian every 5 probes)

    python benchmarks/overhead.py designs/quickstart.yaml designs/deep-tanh.yaml --repeats 5
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from netlens import data as datasets
from netlens.model import build_network
from netlens.prescription import load_design
from netlens.simulate import prepare, simulate
from netlens.train.setup import DTYPES, lr_factor, make_loss, make_optimizer, pick_device


def bare_loop(design) -> float:
    """Seconds for a plain PyTorch loop over exactly the batches netlens would draw."""
    data, tr = prepare(design)
    device, dtype = pick_device(design.train.device), DTYPES[design.train.precision]
    net = build_network(design, tr).to(device=device, dtype=dtype)
    x = torch.as_tensor(data.x_train, device=device, dtype=dtype)
    y = torch.as_tensor(data.y_train, device=device)
    loss_fn = make_loss(design.train, data.info)
    batches = datasets.batches(len(x), design.data.batch, design.seed)
    torch.manual_seed(design.seed)
    opt = make_optimizer(design.train, net.parameters())
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor(design.train))
    t0 = time.perf_counter()
    for _ in range(design.train.steps):
        idx = torch.tensor(next(batches), device=device)
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(net(x[idx]), y[idx])
        float(loss.detach())               # the same per-step sync netlens does for its progress
        loss.backward()
        opt.step()
        sched.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def netlens_loop(design, instruments: bool) -> float:
    return simulate(design, instruments=instruments).records.seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("designs", nargs="+")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--device", default=None, help="override train.device (cpu | cuda)")
    ap.add_argument("--every", type=int, default=None, help="override probe.every")
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"cuda: {torch.cuda.is_available()}")
    for path in args.designs:
        over = {"train.device": args.device} if args.device else {}
        if args.every:
            over["probe.every"] = args.every
        d_default = load_design(path, overrides=over)
        d_nohess = load_design(path, overrides={**over, "probe.hessian": False})
        variants = {
            "bare": lambda: bare_loop(d_default),
            "netlens": lambda: netlens_loop(d_default, False),
            "probes": lambda: netlens_loop(d_nohess, True),
            "default": lambda: netlens_loop(d_default, True),
        }
        for fn in variants.values():      # warm-up: imports, allocator, first-call costs
            fn()
        times: dict[str, list[float]] = {k: [] for k in variants}
        for _ in range(args.repeats):
            for k, fn in variants.items():
                times[k].append(fn())
        med = {k: statistics.median(v) for k, v in times.items()}
        ratios = {k: statistics.median(t / b for t, b in zip(times[k], times["bare"]))
                  for k in variants if k != "bare"}
        print(f"\n{d_default.name}: {d_default.train.steps} steps, probe every {d_default.probe.every}, "
              f"device {d_default.train.device}, {args.repeats} paired repeats (median)")
        print(f"  bare PyTorch loop          {med['bare']:.3f} s")
        for k, label in (("netlens", "netlens loop, no probes"), ("probes", "instruments, no Hessian"),
                         ("default", "default instruments")):
            print(f"  {label:<26} {med[k]:.3f} s   ratio {ratios[k]:.2f}×")


if __name__ == "__main__":
    main()
