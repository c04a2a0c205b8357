"""The paraxial ray trace: shapes, parameter counts and mean-field gains through the stack.

Like a first-order optical trace, it needs no data pass and no training: it carries the beam
(shape, mean square q, mean share m) from the input through each row's closed-form rule
(docs/theory.md §1, docs/paraxial.md). Per-row gains telescope, so the SUM row is the end-to-end gain.
Residual blocks: children are traced on the block input as their own chain; the block row holds
the join, q_out = q_in + α²·q_branch, backward gain 1 + α²·(branch backward gain).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from netlens.data import DataInfo
from netlens.elements import Beam, Context, fmt_shape
from netlens.elements.activations import Activation
from netlens.elements.inits import weight_stats
from netlens.elements.layers import Weighted
from netlens.errors import DesignError
from netlens.prescription import Design, Row

HEAD_NOTE = ("Paraxial verdicts assume plain SGD and wide layers; adaptive optimizers (Adam, "
             "RMSProp) rescue badly scaled inits (docs/theory.md §5).")


def db(ratio: float) -> float:
    """A power ratio in decibels (−inf for 0)."""
    if ratio <= 0:
        return -math.inf
    return 10.0 * math.log10(ratio)


@dataclass
class RowTrace:
    index: int
    in_shape: tuple
    out_shape: tuple
    params: int
    q: float                  # predicted mean square of the row's output
    m: float                  # … of which per-unit means (the mean share is m/q)
    gain: float               # forward power ratio, this row
    flow: float               # backward gradient-power ratio, this row
    cond: float               # contribution to the Jacobian spectrum's normalized variance
    approx: str | None = None
    sigma_w2: float | None = None
    sigma_b2: float | None = None
    cum_gain: float = 1.0     # q_out / q_input
    cum_flow: float = 1.0     # gradient power at the row's input / at the network output

    @property
    def gain_db(self) -> float:
        return db(self.gain)

    @property
    def flow_db(self) -> float:
        return db(self.flow)


@dataclass
class Trace:
    rows: list[RowTrace]
    input_shape: tuple
    input_q: float
    notes: list[str] = field(default_factory=list)

    def top(self, design: Design) -> list[RowTrace]:
        return [self.rows[r.index] for r in design.top_rows()]

    def total(self, design: Design) -> tuple[float, float]:
        """End-to-end (gain, flow) ratios: the SUM row."""
        top = self.top(design)
        return math.prod(t.gain for t in top), math.prod(t.flow for t in top)

    @property
    def params(self) -> int:
        return sum(t.params for t in self.rows)


def trace(design: Design, info: DataInfo, loss_outputs: int | None = None) -> Trace:
    """Trace the design from the data's input shape and power. `loss_outputs` is the width the
    loss needs at the end (checked against the last row)."""
    rows: list[RowTrace | None] = [None] * len(design.rows)
    beam = Beam(tuple(info.input_shape), info.input_power, 0.0)
    out = _chain(design, design.top_rows(), beam, rows)
    done = [r for r in rows if r is not None]
    notes = sorted({r.approx for r in done if r.approx})
    result = Trace(done, tuple(info.input_shape), info.input_power, notes + [HEAD_NOTE])
    _cumulate(design, result)
    if loss_outputs is not None and out.shape != (loss_outputs,):
        last = design.top_rows()[-1]
        raise DesignError(
            "the last row's output does not match what the loss needs",
            file=str(design.file), line=last.line, path=last.path,
            expected=f"shape {loss_outputs}", found=f"shape {fmt_shape(out.shape)}",
            suggestion=f"End the stack with `linear: {loss_outputs}`"
            + (" after a `flatten`" if len(out.shape) > 1 else "") + ".")
    return result


def _chain(design: Design, chain: list[Row], beam: Beam, rows: list) -> Beam:
    for i, row in enumerate(chain):
        beam = _row(design, row, chain[i + 1:], beam, rows)
    return beam


def _row(design: Design, row: Row, after: list[Row], beam: Beam, rows: list) -> Beam:
    if row.element is None:
        return _residual(design, row, beam, rows)
    el = row.element
    try:
        out_shape = el.out_shape(beam.shape)
    except DesignError as e:
        raise e.located(file=str(design.file), line=row.line, path=row.path) from None
    ctx = Context()
    if isinstance(el, Weighted):
        fan_in, fan_out, fan_eff = el.fans(beam.shape)
        ctx.next_activation = _next_activation(after)
        ctx.sigma_w2, ctx.sigma_b2 = weight_stats(
            el.opts.init, fan_in, fan_out,
            critical=lambda: _critical(ctx.next_activation, beam.q, fan_in, fan_eff,
                                       el.opts.init.sigma_b2 or 0.0))
    optics = el.paraxial(beam, ctx)
    rows[row.index] = RowTrace(
        row.index, beam.shape, out_shape, el.n_params(beam.shape), optics.beam.q, optics.beam.m,
        optics.gain, optics.flow, optics.cond, optics.approx, ctx.sigma_w2, ctx.sigma_b2)
    return optics.beam


def _next_activation(after: list[Row]) -> Activation | None:
    """The activation this weight row feeds, if one follows before the next weight row."""
    for row in after:
        if isinstance(row.element, Activation):
            return row.element
        if row.element is None or isinstance(row.element, Weighted):
            return None
    return None


def _critical(act: Activation | None, q_in: float, fan_in: int, fan_eff: float,
              sigma_b2: float) -> float:
    from netlens.paraxial.meanfield import critical_layer_sigma_w2

    if act is None:
        return fan_in / fan_eff      # a linear head: σ_w²·fan_out/fan_in = 1
    return critical_layer_sigma_w2(act.name, q_in, fan_in, fan_eff, sigma_b2, **act.phi_params())


def _residual(design: Design, row: Row, beam: Beam, rows: list) -> Beam:
    children = [design.rows[i] for i in row.children]
    branch = _chain(design, children, beam, rows)
    a2 = row.scale ** 2
    skip_q, skip_m, skip_flow, approx = beam.q, beam.m, 1.0, None
    if branch.shape != beam.shape:
        # A 1×1 projection (LeCun init) on the skip path keeps q and scales the gradient by fans.
        fan_in, fan_out = beam.shape[0], branch.shape[0]
        skip_flow = fan_out / fan_in
        if len(beam.shape) == 3 and beam.shape[1:] != branch.shape[1:]:
            skip_flow /= (beam.shape[1] * beam.shape[2]) / (branch.shape[1] * branch.shape[2])
        approx = "residual: projected skip path taken as variance-preserving"
    q = skip_q + a2 * branch.q
    m = skip_m + a2 * branch.m
    branch_flow = math.prod(rows[i].flow for i in row.children)
    projection = beam.shape[0] * branch.shape[0] if branch.shape != beam.shape else 0
    rows[row.index] = RowTrace(row.index, beam.shape, branch.shape, projection, q, m,
                               q / beam.q if beam.q > 0 else 1.0, skip_flow + a2 * branch_flow,
                               0.0, approx)
    return Beam(branch.shape, q, m)


def _cumulate(design: Design, tr: Trace) -> None:
    """Cumulative gains: forward from the input, backward from the loss (docs/aberrations.md flags on these)."""
    by_index = {t.index: t for t in tr.rows}

    def forward(chain: list[Row], start: float) -> None:
        g = start
        for row in chain:
            t = by_index[row.index]
            if row.element is None:
                forward([design.rows[i] for i in row.children], g)
            g *= t.gain
            t.cum_gain = g

    def backward(chain: list[Row], end: float) -> None:
        f = end
        for row in reversed(chain):
            t = by_index[row.index]
            if row.element is None:
                backward([design.rows[i] for i in row.children], f * row.scale ** 2)
            f *= t.flow
            t.cum_flow = f

    forward(design.top_rows(), 1.0)
    backward(design.top_rows(), 1.0)
