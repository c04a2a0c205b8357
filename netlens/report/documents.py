"""The JSON documents of the contract (docs/json.md), built from results.

Versioned with `"netlens": 1`; NaN/inf become null when written. Keys are stable: scripts rely on
them. The same dicts feed the terminal tables, so both always say the same thing.
"""
from __future__ import annotations

import math
from typing import Any

from netlens.instruments.records import RunRecords
from netlens.paraxial.trace import Trace, db, flow_totals
from netlens.prescription import Design

VERSION = 1


def _r(x: float | None, nd: int = 3) -> float | None:
    if x is None or not math.isfinite(x):
        return None if x is None or math.isnan(x) else x
    return round(x, nd)


def paraxial_doc(design: Design, tr: Trace, assumed_q: bool = True) -> dict[str, Any]:
    """`assumed_q`: the input power q₀ is the one assumed for the data (1 when standardized), not
    measured on a loaded training split (simulate and diagnose measure it)."""
    rows = []
    for row, t, total in zip(design.rows, tr.rows, flow_totals(design, tr)):
        rows.append({
            "index": row.index, "element": row.element.name if row.element else "residual",
            "label": row.label, "source": row.source, "name": row.name, "depth": row.depth,
            "parent": row.parent, "in_shape": list(t.in_shape), "out_shape": list(t.out_shape),
            "params": t.params, "q": _r(t.q, 6), "mean_share": _r(t.m / t.q if t.q > 0 else 0.0),
            "gain_db": _r(t.gain_db), "flow_db": _r(t.flow_db),
            "cum_gain_db": _r(db(t.cum_gain)), "cum_flow_db": _r(db(t.cum_flow)),
            "cum_flow_total_db": _r(total),
            "cond": _r(t.cond), "sigma_w2": _r(t.sigma_w2, 6), "sigma_b2": _r(t.sigma_b2, 6),
            "approximate": t.approx,
        })
    gain, flow = tr.total(design)
    return {
        "netlens": VERSION, "design": design.name, "about": design.about,
        "input": {"shape": list(tr.input_shape), "q": _r(tr.input_q, 6), "assumed": assumed_q},
        "rows": rows,
        "sum": {"gain_db": _r(db(gain)), "flow_db": _r(db(flow)), "params": tr.params,
                "cond": _r(sum(t.cond for t in tr.top(design)))},
        "notes": tr.notes,
    }


def measured_db(rec: RunRecords, which: str) -> list[tuple[float, float]]:
    """Per-row measured (gain dB, flow dB) at `init` or `end`."""
    return [(db(g) if g == g else math.nan, db(f) if f == f else math.nan)
            for g, f in rec.gains(rec.at(which))]


def measured_sum(rec: RunRecords, design: Design, which: str) -> tuple[float, float]:
    per = measured_db(rec, which)
    top = [r.index for r in design.top_rows()]
    return sum(per[i][0] for i in top), sum(per[i][1] for i in top)


def metrics(rec: RunRecords, which: str = "end") -> dict[str, Any]:
    s = rec.at(which)
    out = {"step": s.step, "train_loss": _r(s.train_loss, 6), "val_loss": _r(s.val_loss, 6),
           "train_accuracy": _r(s.train_accuracy, 4), "val_accuracy": _r(s.val_accuracy, 4)}
    out.update(original_units(rec, s))
    return out


def original_units(rec: RunRecords, s) -> dict[str, Any]:
    """For a regression trained on standardized targets (`data.standardize_targets`): the root
    mean square error in the targets' own units and R², the numbers a user reads. The losses
    above stay those the network trained on (mse of the standardized targets)."""
    std = (rec.data_info or {}).get("target_std")
    if rec.task != "regression" or not std or rec.loss != "mse":
        return {}
    scale = sum(v * v for v in std) / len(std)     # exact for one output; the mean for several
    out: dict[str, Any] = {}
    for split in ("train", "val"):
        mse, var = getattr(s, f"{split}_loss"), (rec.target_var or {}).get(split)
        if mse is None or not math.isfinite(mse):
            continue
        out[f"{split}_rmse"] = _r(math.sqrt(max(mse, 0.0) * scale), 6)
        if var:
            out[f"{split}_r2"] = _r(1 - mse / var, 4)
    return out


def history(rec: RunRecords) -> list[dict[str, Any]]:
    return [{**metrics(rec, s.step), "step": s.step, "probe_loss": _r(s.probe_loss, 6),
             "grad_norm": _r(s.grad_norm, 6), "hessian": _r(s.hessian, 4),
             "hessian_min": _r(getattr(s, "hessian_min", None), 4), "lr": s.lr,
             "noise_scale": _r(s.noise_scale, 2)}
            for s in rec.snapshots]


def simulate_doc(design: Design, tr: Trace, rec: RunRecords, run_dir: str | None,
                 findings: list[dict] | None = None, values: dict[int, dict] | None = None) -> dict:
    paraxial = paraxial_doc(design, tr, assumed_q=False)
    par, par_sum = paraxial["rows"], paraxial["sum"]
    init, end = measured_db(rec, "init"), measured_db(rec, "end")
    rows = []
    for p, (gi, fi), (ge, fe) in zip(par, init, end):
        rows.append({
            "index": p["index"], "element": p["element"], "label": p["label"], "source": p["source"],
            "name": p["name"], "depth": p["depth"], "params": p["params"],
            "paraxial": {"gain_db": p["gain_db"], "flow_db": p["flow_db"]},
            "measured": {"init": {"gain_db": _r(gi), "flow_db": _r(fi)},
                         "end": {"gain_db": _r(ge), "flow_db": _r(fe)}},
            "values": (values or {}).get(p["index"], {}),
        })
    (gi, fi), (ge, fe) = measured_sum(rec, design, "init"), measured_sum(rec, design, "end")
    return {
        "netlens": VERSION, "design": design.name, "run_dir": run_dir,
        "input": {"q": paraxial["input"]["q"]},
        "train": {"optimizer": rec.optimizer, "lr": rec.lr, "momentum": rec.momentum,
                  "batch": rec.batch, "loss": rec.loss, "steps": rec.steps,
                  "steps_done": rec.steps_done, "device": rec.device, "precision": rec.precision,
                  "seconds": _r(rec.seconds, 3), "interrupted": rec.interrupted},
        "rows": rows,
        "sum": {"paraxial": {"gain_db": par_sum["gain_db"], "flow_db": par_sum["flow_db"]},
                "measured": {"init": {"gain_db": _r(gi), "flow_db": _r(fi)},
                             "end": {"gain_db": _r(ge), "flow_db": _r(fe)}}},
        "metrics": metrics(rec, "end"),
        "initial": metrics(rec, "init"),
        "history": history(rec),
        "divergence": None if rec.divergence is None else {
            "step": rec.divergence.step, "row": rec.divergence.row, "quantity": rec.divergence.quantity},
        "findings": findings or [],
    }
