"""One tolerance run: a design with operand values applied, trained with its own seeds, and the
quantities read off it. Also the instability run: the 1-ulp twin trained beside its original and
a re-seeded run, with the parameter distance between them recorded through training.

A run is described by plain data (`RunSpec`), so a worker process — on this machine or another
one sharing the storage — rebuilds exactly the same run from a trial's user attributes, and the
same run asked for by two parts (the noise floor's seed 0 and a sensitivity row's baseline) is
trained once.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class RunSpec:
    values: tuple = ()                 # ((operand, value), …) applied to the design
    seeds: tuple = (0, 0, 0)           # data, init, order
    twin: bool = False                 # the 1-ulp twin of that run
    kind: str = "train"                # train | instability

    def to_json(self) -> dict:
        return {"values": [list(v) for v in self.values], "seeds": list(self.seeds),
                "twin": self.twin, "kind": self.kind}

    @classmethod
    def from_json(cls, d: dict) -> "RunSpec":
        return cls(tuple(tuple(v) for v in d.get("values", [])), tuple(d["seeds"]),
                   bool(d.get("twin")), d.get("kind", "train"))

    @property
    def key(self) -> str:
        return hashlib.sha1(json.dumps(self.to_json(), sort_keys=True).encode()).hexdigest()[:16]


def same_seeds(s: int) -> tuple:
    return (s, s, s)


# -- the 1-ulp twin ------------------------------------------------------------------------------
_INT = {"torch.float32": "int32", "torch.float64": "int64", "torch.bfloat16": "int16",
        "torch.float16": "int16"}


def flip_lowest_bit(design, net, data) -> dict:
    """Flip the lowest mantissa bit of one weight of the first weight row, taken where the input
    feature it multiplies varies over the training set (a weight fed by a constant-zero pixel
    would never matter). Returns where."""
    import torch

    first = next(r for r in design.rows if r.kind == "layer")
    w = net.rows[first.index].weight
    flat_x = data.x_train.reshape(len(data.x_train), -1)
    if w.dim() == 2 and w.shape[1] == flat_x.shape[1]:
        varying = np.flatnonzero(flat_x.std(axis=0) > 0)
        index = (0, int(varying[0]) if len(varying) else 0)
    else:
        index = (0,) * w.dim() if w.dim() != 4 else (0, 0, w.shape[2] // 2, w.shape[3] // 2)
    with torch.no_grad():
        bits = w.data.view(getattr(torch, _INT[str(w.dtype)]))
        before = float(w.data[index])
        bits[index] ^= 1
        after = float(w.data[index])
    return {"row": first.index, "index": list(index), "before": before, "after": after}


def scale_init(design, net, factor: float) -> None:
    """σ_w² × factor on every weight row: the weights × √factor (biases kept)."""
    import torch

    with torch.no_grad():
        for r in design.rows:
            if r.kind == "layer" and getattr(net.rows[r.index], "weight", None) is not None:
                net.rows[r.index].weight.mul_(math.sqrt(factor))


# -- one run ------------------------------------------------------------------------------------
@dataclass
class Trained:
    design: Any
    run: Any                            # netlens.simulate.Run
    data: Any
    flipped: dict | None = None
    trajectory: dict = field(default_factory=dict)   # step → parameters (when recorded)
    theta0: Any = None


def train(plan, spec: RunSpec, record: list[int] | None = None, twin: bool | None = None,
          seeds: tuple | None = None) -> Trained:
    """Build the design for `spec` and train it; `record` lists the steps at which to keep a copy
    of all the parameters (the instability meter)."""
    import torch

    from netlens.simulate import Seeds, simulate
    from netlens.tolerance.operands import apply

    applied = apply(plan.design, plan.operands, dict(spec.values), spec.twin if twin is None else twin)
    design = _design(applied.text, str(plan.design.file))
    seeds = seeds or spec.seeds
    out = Trained(design, None, None)
    state: dict[str, Any] = {}

    def params() -> Any:
        return torch.cat([p.detach().flatten() for p in state["net"].parameters()]).clone()

    def on_build(net, data) -> None:
        state["net"], out.data = net, data
        if applied.init_factor != 1.0:
            scale_init(design, net, applied.init_factor)
        if applied.twin:
            out.flipped = flip_lowest_bit(design, net, data)
        if record is not None:
            out.theta0 = params()

    wanted = set(record or ())

    def on_step(step: int, _loss: float) -> None:
        if step in wanted:
            out.trajectory[step] = params()

    out.run = simulate(design, seeds=Seeds(*seeds), on_build=on_build,
                       on_step=on_step if record is not None else None)
    return out


@lru_cache(maxsize=16)
def _design(text: str, file: str):
    """A prescription text read once per process (round-trip YAML parsing is a tenth of a short
    run); simulate never changes the design it trains."""
    from netlens.prescription import design_from_text

    return design_from_text(text, Path(file))


def predictions(t: Trained) -> Any:
    """The network's outputs on the validation split (the training split when there is none)."""
    import torch

    data, net = t.data, t.run.net
    x = data.x_val if len(data.x_val) else data.x_train
    p = next(net.parameters())
    was = net.training
    net.eval()
    try:
        with torch.no_grad():
            return net(torch.as_tensor(x, device=p.device, dtype=p.dtype)).float().cpu().numpy()
    finally:
        net.train(was)


def disagreement(a: np.ndarray, b: np.ndarray, task: str) -> float:
    """Classification: the fraction of validation samples whose predicted class differs.
    Regression: the RMS difference of the predictions over the RMS spread of the first's."""
    if task == "classification":
        pa = (a[:, 0] > 0) if a.shape[1] == 1 else a.argmax(1)
        pb = (b[:, 0] > 0) if b.shape[1] == 1 else b.argmax(1)
        return float(np.mean(pa != pb))
    spread = float(np.sqrt(np.mean((a - a.mean(0)) ** 2)))
    return float(np.sqrt(np.mean((a - b) ** 2)) / spread) if spread > 0 else math.nan


def measure(plan, t: Trained) -> dict[str, Any]:
    """What a trial stores: every measure, the merit, whether it diverged, how long it took."""
    from netlens.optimize.operands import Measured
    from netlens.tolerance.operands import read

    rec = t.run.records
    m = Measured(t.design, rec, t.run.trace.params, t.run.trace)
    values = read(m, plan.measures)
    merit = plan.merit.evaluate(m)[0]
    return {"values": values, "merit": merit if math.isfinite(merit) else None,
            "diverged": rec.divergence is not None, "steps": rec.steps_done,
            "seconds": round(rec.seconds, 4), "flipped": t.flipped}


def execute(plan, spec: RunSpec) -> dict[str, Any]:
    """Run `spec`; raises KeyboardInterrupt if training was interrupted."""
    if spec.kind == "instability":
        return instability(plan, spec)
    t = train(plan, spec)
    if t.run.records.interrupted:
        raise KeyboardInterrupt
    return measure(plan, t)


# -- the instability meter (Summers & Dinneen 2021) ------------------------------------------------
POINTS = 60          # linear points through training (plus powers of two early on)
UNSTABLE_SHARE = 0.5  # the twin disagrees at least half as much as a re-seeded run


def record_steps(steps: int, points: int = POINTS) -> list[int]:
    stride = max(1, steps // points)
    out = {2 ** k for k in range(int(math.log2(max(1, steps))) + 1)} | set(range(stride, steps + 1, stride))
    return sorted(s for s in out | {steps} if 1 <= s <= steps)


def instability(plan, spec: RunSpec) -> dict[str, Any]:
    """Train run A, its 1-ulp twin B (the same seeds) and a re-seeded run C; A and B record
    their parameters at the same steps. Returns the distance curve and the disagreements."""
    at = record_steps(plan.design.train.steps)
    a = train(plan, spec, record=at, twin=False)
    b = train(plan, spec, record=at, twin=True)
    d, i, o = spec.seeds
    other = (d, i + 1, o + 1)       # the same data (so the same validation set), re-seeded
    c = train(plan, spec, twin=False, seeds=other)
    for t in (a, b, c):
        if t.run.records.interrupted:
            raise KeyboardInterrupt
    curve = []
    for s in at:
        if s in a.trajectory and s in b.trajectory:
            ta, tb = a.trajectory[s].double(), b.trajectory[s].double()
            moved = float((ta - a.theta0.double()).norm())
            apart = float((ta - tb).norm())
            curve.append([s, apart / moved if moved > 0 else None, apart])
    task = a.run.records.task
    pa, pb, pc = predictions(a), predictions(b), predictions(c)
    twin_dis, seed_dis = disagreement(pa, pb, task), disagreement(pa, pc, task)
    rel = next((r for _s, r, _d in reversed(curve) if r is not None), None)
    out = measure(plan, a)
    out.update({
        "curve": curve,
        "relative_distance": rel,
        "initial_distance": float((a.theta0.double() - b.theta0.double()).norm()),
        "doubling_steps": doubling(curve),
        "disagreement": twin_dis,
        "seed_disagreement": seed_dis,
        "unstable": bool(seed_dis > 0 and twin_dis >= UNSTABLE_SHARE * seed_dis),
        "twin_diverged": b.run.records.divergence is not None,
        "seed_seeds": list(other),
        "flipped": b.flipped,
    })
    return out


def doubling(curve: list) -> float | None:
    """Steps for the twin's relative distance to double: ln 2 over the least-squares slope of
    ln(‖θ_A − θ_B‖ / ‖θ_A − θ_0‖) against the step. The first tenth of training is left out (the
    distance travelled is still tiny there, so the ratio says little) and the fit stops once the
    twin is as far as 0.1 (saturation). None when the distance does not grow."""
    last = max((s for s, _r, _d in curve), default=0)
    pts = []
    for s, rel, _d in curve:
        if rel is None or rel <= 0 or s < 0.1 * last:
            continue
        pts.append((s, math.log(rel)))
        if rel >= 0.1:
            break
    if len(pts) < 3:
        return None
    x = np.array([p[0] for p in pts], dtype=float)
    y = np.array([p[1] for p in pts])
    slope = float(np.polyfit(x, y, 1)[0])
    return math.log(2) / slope if slope > 0 else None


def to_attr(x: Any) -> Any:
    """JSON-safe for Optuna's user attributes (NaN → None)."""
    from netlens.report.files import jsonable

    return jsonable(x)


__all__ = ["RunSpec", "execute", "same_seeds", "asdict"]
