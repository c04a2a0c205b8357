"""Phenomenon 2: sharpness against batch size at a fixed lr, beside the gap (Keskar et al.
2017), and the reparametrization caveat shown (Dinh et al. 2017).

    python designs/phenomena/2-flat-minima/measure.py [--steps N] [--batches 16 64 256 full]

Part 1 trains `small-vs-large-batch.yaml` at each batch size (every other cell fixed, lr 0.1)
and prints the top Hessian eigenvalue λ at the end (netlens' Lanczos instrument on the probe
batch) beside the train/validation accuracy and loss gap.
Part 2 takes the smallest-batch network and multiplies the first layer's weights and biases by
α and the second layer's weights by 1/α. A relu is positively homogeneous (relu(αz) = α·relu(z)),
so the network computes exactly the same function — same outputs, same loss, same accuracy —
yet its λ changes by orders of magnitude: sharpness is not a property of the function.
"""
from __future__ import annotations

import argparse
from pathlib import Path

HERE = Path(__file__).resolve().parent
DESIGN = HERE / "small-vs-large-batch.yaml"


def sweep(batches=(16, 64, 256, "full"), steps: int | None = None, n: int | None = None):
    from netlens.prescription import load_design
    from netlens.simulate import simulate

    rows, nets = [], {}
    for b in batches:
        over = {"data.batch": b}
        if steps:
            over.update({"train.steps": steps, "probe.hessian.every": steps, "probe.every": max(1, steps // 6)})
        if n:
            over["data.n"] = n
        run = simulate(load_design(DESIGN, overrides=over))
        rec = run.records
        end = rec.snapshots[-1]
        rows.append({"batch": rec.batch, "sharpness": end.hessian, "sharpness_init": rec.snapshots[0].hessian,
                     "train_accuracy": end.train_accuracy, "val_accuracy": end.val_accuracy,
                     "gap": end.train_accuracy - end.val_accuracy,
                     "loss_gap": end.val_loss - end.train_loss, "train_loss": end.train_loss})
        nets[rec.batch] = run
    return rows, nets


def top_eigenvalue(net, x, y, loss_fn, products: int = 40) -> float:
    import torch

    from netlens.instruments.hessian import Lanczos

    params = [p for p in net.parameters() if p.requires_grad]
    lam, _ = Lanczos(products, 1e-4).estimate(loss_fn(net(x), y), params, torch.Generator().manual_seed(0))
    return lam


def rescale(run, alphas=(1.0, 10.0, 0.1)) -> list[dict]:
    """Dinh et al. 2017: the same function at another sharpness."""
    import copy

    import torch

    from netlens import data as datasets
    from netlens.train.setup import make_loss

    design = run.design
    data = datasets.load(design.data, design.seed, design.base_dir)
    x = torch.as_tensor(data.x_train[:512], dtype=torch.float32)
    y = torch.as_tensor(data.y_train[:512])
    loss_fn = make_loss(design.train, data.info)
    linear = [i for i, m in enumerate(run.net.rows) if isinstance(m, torch.nn.Linear)]
    first, second = linear[0], linear[1]
    base = run.net.eval()
    with torch.no_grad():
        ref = base(x)
    out = []
    for a in alphas:
        net = copy.deepcopy(base)
        with torch.no_grad():
            net.rows[first].weight.mul_(a)
            net.rows[first].bias.mul_(a)
            net.rows[second].weight.div_(a)
            same = float((net(x) - ref).abs().max())
            loss = float(loss_fn(net(x), y))
        out.append({"alpha": a, "max_output_change": same, "loss": loss,
                    "sharpness": top_eigenvalue(net, x, y, loss_fn)})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int)
    ap.add_argument("--batches", nargs="+", default=["16", "64", "256", "full"])
    a = ap.parse_args()
    batches = [b if b == "full" else int(b) for b in a.batches]
    rows, runs = sweep(batches, a.steps)
    print("part 1 — the same design, lr 0.1, at several batch sizes")
    print(f"{'batch':>6} {'λ start':>8} {'λ end':>8} {'η·λ/2':>6} {'train acc':>9} {'val acc':>8} {'gap':>6} {'val−train loss':>15}")
    for r in rows:
        print(f"{r['batch']:>6} {r['sharpness_init']:8.3g} {r['sharpness']:8.3g} {0.1 * r['sharpness'] / 2:6.2f} "
              f"{r['train_accuracy']:9.3f} {r['val_accuracy']:8.3f} {r['gap']:6.3f} {r['loss_gap']:15.4f}")
    small = min(runs)
    print(f"\npart 2 — batch {small}'s network, first layer ×α, second layer ÷α (the same function)")
    print(f"{'α':>6} {'max |Δ output|':>15} {'loss':>8} {'λ':>10}")
    for r in rescale(runs[small]):
        print(f"{r['alpha']:6g} {r['max_output_change']:15.2e} {r['loss']:8.4f} {r['sharpness']:10.4g}")


if __name__ == "__main__":
    main()
