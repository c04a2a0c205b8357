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
from typing import Any

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


def pooling_db(index: int, pools: list[tuple[int, float]]) -> float:
    """The summed backward gain of the top-level pooling rows from `index` on. An average pool
    spreads each output's gradient over its window (−10·log10(k²) dB summed over units; a global
    average pool over H×W positions −10·log10(HW)), but the convolution before it sums the
    positions back into its weight gradient (weight sharing), so this is no loss of learning
    signal and FLOW leaves it out. A max-pool's is 0 dB summed over units anyway."""
    return sum(f for j, f in pools if j >= index and f is not None and math.isfinite(f))


def flow_totals(design, tr: "Trace") -> list[float]:
    """Per row, Σ flow summed over units (dB): the gradient power reaching the row's input, all
    its units together, over the same at the network output, with the top-level pooling rows'
    own gains left out (`pooling_db`) — exactly what FLOW judges (`netlens.aberrations.flow`).
    Per unit it is `cum_flow_db`; the two differ by the width ratio 10·log10(n_in / n_out).
    `design`: a prescription or a module tree's design (anything with `rows` and `top_rows()`)."""
    top = [r.index for r in design.top_rows()]
    out = math.prod(tr.rows[top[-1]].out_shape)
    pools = [(j, db(tr.rows[j].flow * math.prod(tr.rows[j].in_shape) / math.prod(tr.rows[j].out_shape)))
             for j in top if design.rows[j].kind == "pool"]
    return [db(t.cum_flow * math.prod(t.in_shape) / out) - pooling_db(t.index, pools) for t in tr.rows]


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
    # Sequences (netlens.paraxial.sequence):
    token_rank: float | None = None   # predicted effective rank across positions / min(T, D)
    vocab: int | None = None          # the vocabulary an `embedding` row is built with
    skip_flow: float = 1.0            # a residual block's skip-path backward gain
    mix: Any = field(default=None, repr=False, compare=False)   # attention's backward rule

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
    from netlens.paraxial import sequence

    rows: list[RowTrace | None] = [None] * len(design.rows)
    beam = Beam(tuple(info.input_shape), info.input_power, 0.0)
    tokens = _Tokens(getattr(info, "vocab", None), getattr(info, "token_match", None),
                     any(r.element is not None and r.element.name == "mean_pool" for r in design.rows),
                     _input_rows(design))
    out = _chain(design, design.top_rows(), beam, rows, tokens)
    if any(r is not None and r.token_rank is not None for r in rows):
        sequence.backward(design, rows, bool(getattr(info, "per_token", False)))
    done = [r for r in rows if r is not None]
    notes = sorted({r.approx for r in done if r.approx}) + sequence.rank_note(design, done)
    result = Trace(done, tuple(info.input_shape), info.input_power, notes + [HEAD_NOTE])
    _cumulate(design, result)
    per_token = bool(getattr(info, "per_token", False))
    want = (info.input_shape[0], loss_outputs) if per_token and loss_outputs is not None else (loss_outputs,)
    if loss_outputs is not None and out.shape != want:
        last = design.top_rows()[-1]
        after = " after a `flatten`" if len(out.shape) > 1 else ""
        if getattr(info, "vocab", None):
            after = (" on the sequence (a label per position)" if per_token
                     else " after `mean_pool` or `last_token` (one label per sequence)")
        raise DesignError(
            "the last row's output does not match what the loss needs",
            file=str(design.file), line=last.line, path=last.path,
            expected=f"shape {fmt_shape(want)}", found=f"shape {fmt_shape(out.shape)}",
            suggestion=f"End the stack with `linear: {loss_outputs}`" + after + ".")
    return result


@dataclass(frozen=True)
class _Tokens:
    """What sequence rows need from the data: the vocabulary, P(same token), and whether the
    sequence is averaged by a `mean_pool` later on."""

    vocab: int | None = None
    match: float | None = None
    pooled: bool = False
    first: frozenset = frozenset()     # rows whose input is the network input


def _input_rows(design: Design) -> frozenset:
    out, chain = set(), design.top_rows()
    while chain:
        out.add(chain[0].index)
        chain = [design.rows[i] for i in chain[0].children] if chain[0].element is None else []
    return frozenset(out)


def _chain(design: Design, chain: list[Row], beam: Beam, rows: list, tokens: _Tokens) -> Beam:
    for i, row in enumerate(chain):
        beam = _row(design, row, chain[i + 1:], beam, rows, tokens)
    return beam


def _row(design: Design, row: Row, after: list[Row], beam: Beam, rows: list, tokens: _Tokens) -> Beam:
    from netlens.paraxial import sequence

    if row.element is None:
        return _residual(design, row, beam, rows, tokens)
    el = row.element
    try:
        sequence.check_tokens(el, tokens.vocab is not None and row.index in tokens.first)
        out_shape = el.out_shape(beam.shape)
    except DesignError as e:
        raise e.located(file=str(design.file), line=row.line, path=row.path) from None
    ctx = Context(vocab=tokens.vocab, token_match=tokens.match, pooled=tokens.pooled)
    if isinstance(el, Weighted) or el.name == "attention":
        fan_in, fan_out, fan_eff = el.fans(beam.shape)
        ctx.next_activation = _next_activation(after)
        ctx.sigma_w2, ctx.sigma_b2 = weight_stats(
            el.opts.init, fan_in, fan_out,
            critical=lambda: _critical(ctx.next_activation, beam.q, fan_in, fan_eff,
                                       el.opts.init.sigma_b2 or 0.0))
    optics = sequence.carry(el, beam, el.paraxial(beam, ctx), ctx)
    takes_tokens = getattr(el, "takes_tokens", False)
    params = el.params(tokens.vocab or 0) if takes_tokens else el.n_params(beam.shape)
    rows[row.index] = RowTrace(
        row.index, beam.shape, out_shape, params, optics.beam.q, optics.beam.m,
        optics.gain, optics.flow, optics.cond, optics.approx, ctx.sigma_w2, ctx.sigma_b2,
        token_rank=sequence.token_rank(optics.beam), vocab=tokens.vocab if takes_tokens else None,
        mix=getattr(el, "rule", None))
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


def _residual(design: Design, row: Row, beam: Beam, rows: list, tokens: _Tokens) -> Beam:
    from netlens.paraxial import sequence

    children = [design.rows[i] for i in row.children]
    branch = _chain(design, children, beam, rows, tokens)
    a2 = row.scale ** 2
    skip_q, skip_m, skip_flow, approx = beam.q, beam.m, 1.0, None
    if branch.shape != beam.shape:
        # A 1×1 projection (LeCun init) on the skip path keeps q and scales the gradient by fans.
        fan_in, fan_out = beam.shape[-1], branch.shape[-1]
        skip_flow = fan_out / fan_in
        if len(beam.shape) == 3 and beam.shape[1:] != branch.shape[1:]:
            skip_flow /= (beam.shape[1] * beam.shape[2]) / (branch.shape[1] * branch.shape[2])
        approx = "residual: projected skip path taken as variance-preserving"
    q = skip_q + a2 * branch.q
    m = skip_m + a2 * branch.m
    branch_flow = math.prod(rows[i].flow for i in row.children)
    projection = beam.shape[-1] * branch.shape[-1] if branch.shape != beam.shape else 0
    gram = sequence.join(beam, branch, a2)
    out = Beam(branch.shape, q, m, gram=gram)
    rows[row.index] = RowTrace(row.index, beam.shape, branch.shape, projection, q, m,
                               q / beam.q if beam.q > 0 else 1.0, skip_flow + a2 * branch_flow,
                               0.0, approx, token_rank=sequence.token_rank(out), skip_flow=skip_flow)
    return out


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
