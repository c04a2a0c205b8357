"""Instrument overhead: `simulate`'s training loop with default instruments against a bare PyTorch
loop on the same model, data, batch order, steps and seed (docs/performance.md: target ≤ 1.10×).

Paired and interleaved: each repeat runs every variant once, in turn, and the ratio is taken within
the repeat; the median over repeats is reported, with the middle half of the paired ratios (their
quartiles: how much a shared machine moved them in this run). Times are the process's CPU time over the
training loop alone (one torch thread: on a shared machine CPU time is what other processes do not
inflate; `--wall` uses wall-clock time instead). Variants:
  bare             a plain loop written here: forward, loss, backward, step
  netlens          netlens's own loop, no instruments (the loop's own cost)
  no_hessian       default instruments with the Hessian probe off
  default          default instruments (the Hessian at its default, log-spaced cadence)
  cockpit_economy  Cockpit's "economy" configuration tracked every 16th step, on the same model
                   and batches (Schneider et al. 2021), when `cockpit-for-pytorch` imports

    python benchmarks/overhead.py designs/quickstart.yaml designs/bench/mlp-4x512.yaml --repeats 5
    python benchmarks/overhead.py designs/quickstart.yaml --json   # {NAME: {"default": r, ...}}
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

from netlens import data as datasets  # noqa: E402
from netlens.model import build_network  # noqa: E402
from netlens.prescription import load_design  # noqa: E402
from netlens.simulate import prepare, simulate  # noqa: E402

simulate_module = sys.modules["netlens.simulate"]
from netlens.train.setup import DTYPES, lr_factor, make_loss, make_optimizer, pick_device  # noqa: E402

CLOCK = time.process_time


def _setup(design):
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
    return net, x, y, loss_fn, batches, opt, sched, device


def bare_loop(design) -> float:
    """Seconds for a plain PyTorch loop over exactly the batches netlens would draw."""
    net, x, y, loss_fn, batches, opt, sched, device = _setup(design)
    t0 = CLOCK()
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
    return CLOCK() - t0


def netlens_loop(design, instruments: bool) -> float:
    """Seconds of netlens's training loop (instruments included), setup excluded."""
    spent = []
    inner = simulate_module.train_loop

    def timed(*a, **k):
        t0 = CLOCK()
        out = inner(*a, **k)
        spent.append(CLOCK() - t0)
        return out

    simulate_module.train_loop = timed
    try:
        simulate(design, instruments=instruments)
    finally:
        simulate_module.train_loop = inner
    return spent[0]


def cockpit_loop(design):
    """Seconds for the bare loop with Cockpit's economy quantities tracked every 16th step, or
    None when Cockpit does not import here."""
    try:
        from backpack import extend
        from cockpit import Cockpit, CockpitPlotter  # noqa: F401
        from cockpit.utils.configuration import configuration
        from cockpit.utils.schedules import linear
    except Exception as e:                       # not installed, or not importable with this torch
        return None, f"{type(e).__name__}: {e}"
    net, x, y, loss_fn, batches, opt, sched, device = _setup(design)
    net = extend(net)
    if design.train.loss not in (None, "cross_entropy"):
        return None, "Cockpit's loss here is cross-entropy only"
    lossf = extend(torch.nn.CrossEntropyLoss(reduction="mean"))
    indiv = extend(torch.nn.CrossEntropyLoss(reduction="none"))
    cockpit = Cockpit(net.parameters(), quantities=configuration("economy", track_schedule=linear(16)))
    t0 = CLOCK()
    for step in range(design.train.steps):
        idx = torch.tensor(next(batches), device=device)
        opt.zero_grad(set_to_none=True)
        out = net(x[idx])
        loss = lossf(out, y[idx])
        losses = indiv(out, y[idx])
        with cockpit(step, info={"batch_size": len(idx), "individual_losses": losses,
                                 "loss": loss, "optimizer": opt}):
            loss.backward(create_graph=cockpit.create_graph(step))
        opt.step()
        sched.step()
    return CLOCK() - t0, ""


def measure(path: str, repeats: int, over: dict, cockpit: bool) -> dict:
    d_default = load_design(path, overrides=over)
    d_nohess = load_design(path, overrides={**over, "probe.hessian": False})
    variants = {
        "bare": lambda: bare_loop(d_default),
        "netlens": lambda: netlens_loop(d_default, False),
        "no_hessian": lambda: netlens_loop(d_nohess, True),
        "default": lambda: netlens_loop(d_default, True),
    }
    note = ""
    if cockpit:
        seconds, note = cockpit_loop(d_default)
        if seconds is not None:
            variants["cockpit_economy"] = lambda: cockpit_loop(d_default)[0]
    for fn in variants.values():      # warm-up: imports, allocator, first-call costs
        fn()
    times: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(repeats):
        for k, fn in variants.items():
            times[k].append(fn())
    med = {k: statistics.median(v) for k, v in times.items()}
    paired = {k: [t / b for t, b in zip(times[k], times["bare"])] for k in variants if k != "bare"}
    ratios = {k: statistics.median(v) for k, v in paired.items()}
    # the middle half of the paired ratios: how much the machine moved them in this run
    quartiles = {k: statistics.quantiles(v, n=4) if len(v) > 1 else [v[0]] * 3 for k, v in paired.items()}
    spread = {k: (q[0], q[2]) for k, q in quartiles.items()}
    return {"design": d_default, "median": med, "ratios": ratios, "spread": spread, "cockpit_note": note}


def main() -> None:
    global CLOCK
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("designs", nargs="+")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--device", default=None, help="override train.device (cpu | cuda)")
    ap.add_argument("--every", type=int, default=None, help="override probe.every")
    ap.add_argument("--wall", action="store_true", help="wall-clock time instead of CPU time")
    ap.add_argument("--no-cockpit", action="store_true", help="skip Cockpit even if it imports")
    ap.add_argument("--json", action="store_true",
                    help='print {DESIGN_NAME: {"default": ratio, "no_hessian": ratio, ...}} only')
    args = ap.parse_args()
    if args.wall:
        CLOCK = time.perf_counter
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    over = {"train.device": args.device} if args.device else {}
    if args.every:
        over["probe.every"] = args.every
    if not args.json:
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
              f"cuda: {torch.cuda.is_available()}, {'wall' if args.wall else 'CPU'} time")
    doc = {}
    for path in args.designs:
        r = measure(path, args.repeats, over, cockpit=not args.no_cockpit)
        d, med, ratios = r["design"], r["median"], r["ratios"]
        doc[d.name] = {k: round(v, 3) for k, v in ratios.items() if k != "netlens"}
        if args.json:
            continue
        print(f"\n{d.name}: {d.train.steps} steps, probe every {d.probe.every}, "
              f"device {d.train.device}, {args.repeats} paired repeats (median)")
        print(f"  bare PyTorch loop          {med['bare']:.3f} s")
        for k, label in (("netlens", "netlens loop, no probes"), ("no_hessian", "instruments, no Hessian"),
                         ("default", "default instruments"), ("cockpit_economy", "Cockpit economy /16")):
            if k in ratios:
                lo, hi = r["spread"][k]
                print(f"  {label:<26} {med[k]:.3f} s   ratio {ratios[k]:.2f}×  (middle half {lo:.2f}–{hi:.2f})")
        if r["cockpit_note"]:
            print(f"  Cockpit not measured: {r['cockpit_note']}")
    if args.json:
        sys.stdout.write(json.dumps(doc) + "\n")


if __name__ == "__main__":
    main()
