"""What the paraxial model predicts a correction will do, before any training.

GAIN and FLOW are closed-form at initialization (docs/paraxial.md), so re-tracing the corrected design
gives their values after the correction: the end-to-end SUM and the worst cumulative value, the
one the aberrations are flagged on (docs/aberrations.md), taken on the rows and in the convention each
aberration judges (`netlens.aberrations.gain`, `.flow`): GAIN leaves out the network's output,
FLOW sums gradient power over units and leaves out the rows fed by the input and the pooling
rows' own gains. `init: critical` is a solve; its σ_w² per row is read from the same trace.
Torch-free: it runs in `netlens diagnose` before any simulation.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from netlens.paraxial.trace import Trace, db, flow_totals, trace
from netlens.prescription import Design


@dataclass(frozen=True)
class Paraxial:
    """The paraxial numbers a correction can move, in dB (GAIN, FLOW) and σ_w² (critical)."""

    gain_sum: float            # end-to-end forward gain (the SUM row)
    flow_sum: float            # end-to-end backward gain
    gain_worst: float          # cumulative forward gain of largest magnitude over the rows
    flow_worst: float          # cumulative backward gain of largest magnitude over the rows
    flow_body: float           # backward gain summed over the top rows before the head: the
                               # part a hidden-layer correction changes (0 dB when critical)
    mean_worst: float = 0.0    # largest mean share m/q of a hidden weight row's output (MEAN)
    critical: dict[int, float] = field(default_factory=dict)   # row → solved σ_w² (init: critical)

    def value(self, code: str) -> float | None:
        """The value an aberration is flagged on (the worst cumulative), None if not paraxial."""
        return {"GAIN": self.gain_worst, "FLOW": self.flow_worst, "MEAN": self.mean_worst}.get(code)


def paraxial(design: Design) -> Paraxial:
    from netlens.data import describe
    from netlens.train.outputs import loss_outputs

    with design.blame():
        info = describe(design.data, design.base_dir)
        tr = trace(design, info, loss_outputs(design.train, info))
    return summarize(design, tr)


def summarize(design: Design, tr: Trace) -> Paraxial:
    from netlens.corrections.base import head, hidden_weights

    gain, flow = tr.total(design)
    top = design.top_rows()
    h = head(design)
    body = top[:top.index(h)] if h is not None else top
    flow_body = db(math.prod(tr.rows[r.index].flow for r in body))
    critical = {}
    for row, t in zip(design.rows, tr.rows):
        init = getattr(getattr(row.element, "opts", None), "init", None)
        if init is not None and init.name == "critical" and t.sigma_w2 is not None:
            critical[row.index] = t.sigma_w2
    shares = [tr.rows[r.index].m / tr.rows[r.index].q for r in hidden_weights(design)
              if tr.rows[r.index].q > 0]
    output = top[-1].index
    gains = [db(t.cum_gain) for t in tr.rows if t.index != output and t.cum_gain > 0]
    return Paraxial(db(gain), db(flow), _worst(gains), _worst(_flow_totals(design, tr)), flow_body,
                    max(shares, default=0.0), critical)


def _flow_totals(design: Design, tr: Trace) -> list[float]:
    """Σ flow per judged row as FLOW measures it (`netlens.paraxial.trace.flow_totals`): the rows
    after the input's own, where some gradient arrives."""
    fed_by_input = _fed_by_input(design)
    return [f for t, f in zip(tr.rows, flow_totals(design, tr))
            if t.index not in fed_by_input and t.cum_flow > 0]


def _fed_by_input(design: Design) -> set[int]:
    """Rows whose input is the network input: the first row, and the first rows of residual
    branches that open the stack (the gradient reaching the data trains nothing)."""
    out: set[int] = set()
    chain = design.top_rows()
    while chain:
        first = chain[0]
        out.add(first.index)
        chain = [design.rows[i] for i in first.children] if first.element is None else []
    return out


def _worst(values) -> float:
    finite = [v for v in values if math.isfinite(v)] or [0.0]
    return max(finite, key=abs)


@dataclass(frozen=True)
class Prediction:
    """Before → after of what the paraxial model (or the finding's own formula) can compute."""

    before: Paraxial | None
    after: Paraxial | None
    values: dict[str, tuple[float, float]] = field(default_factory=dict)   # code → (before, after)

    def lines(self) -> list[str]:
        out = []
        if self.before is not None and self.after is not None:
            b, a = self.before, self.after
            out.append(f"predicted Σ gain {_db(b.gain_sum)} → {_db(a.gain_sum)} dB, "
                       f"Σ flow {_db(b.flow_sum)} → {_db(a.flow_sum)} dB "
                       f"(hidden layers {_db(b.flow_body)} → {_db(a.flow_body)} dB); worst "
                       f"cumulative gain {_db(b.gain_worst)} → {_db(a.gain_worst)} dB, "
                       f"flow {_db(b.flow_worst)} → {_db(a.flow_worst)} dB")
            if a.critical:
                rows = sorted(a.critical)
                first, last = a.critical[rows[0]], a.critical[rows[-1]]
                shown = f"{first:.3g}" if f"{first:.3g}" == f"{last:.3g}" else \
                    f"{first:.3g} (#{rows[0]}) … {last:.3g} (#{rows[-1]})"
                out.append(f"init: critical solves to σ_w² = {shown} over {_ranges(rows)}")
        for code, (before, after) in self.values.items():
            if code not in ("GAIN", "FLOW"):
                out.append(f"predicted {code} {before:.3g} → {after:.3g}")
        return out

    def to_json(self) -> dict:
        doc: dict = {code: {"before": _round(b), "after": _round(a)}
                     for code, (b, a) in self.values.items()}
        if self.after is not None:
            doc["paraxial"] = {
                "gain_db": _round(self.after.gain_sum), "flow_db": _round(self.after.flow_sum),
                "hidden_flow_db": _round(self.after.flow_body),
                "worst_gain_db": _round(self.after.gain_worst),
                "worst_flow_db": _round(self.after.flow_worst)}
            if self.after.critical:
                doc["critical_sigma_w2"] = {str(i): round(v, 4) for i, v in self.after.critical.items()}
        return doc


def _db(x: float) -> str:
    return f"{round(x, 1) + 0.0:+.1f}".replace("-", "−")     # + 0.0 turns −0.0 into 0.0


def _round(x: float | None) -> float | None:
    return round(x, 3) + 0.0 if x is not None and math.isfinite(x) else None    # no −0.0


def _ranges(indices: list[int]) -> str:
    """[1, 3, 5] → `rows #1, #3, #5`; long runs are shortened to `30 rows #1 … #59`."""
    if len(indices) <= 4:
        return "rows " + ", ".join(f"#{i}" for i in indices)
    return f"{len(indices)} rows #{indices[0]} … #{indices[-1]}"


def predict(before: Design, after: Design, codes: tuple[str, ...] = ("GAIN", "FLOW")) -> Prediction:
    """Trace both designs; GAIN and FLOW before → after on their worst cumulative value."""
    b, a = paraxial(before), paraxial(after)
    return Prediction(b, a, {c: (b.value(c), a.value(c)) for c in codes if b.value(c) is not None})
