"""FLOW — vanishing / exploding gradient: the backward gain of gradient power through each row.

    flow_i = p_prev(i) / p_i          p = mean square of the loss gradient at a row's output
                                      (per unit: the paraxial column, docs/theory.md §1)
    Σ flow_i = (n_in(i)·p_prev(i)) / (n_out·p_out)
                                      the gradient power reaching row i's input, summed over its
                                      n_in(i) units, relative to the same at the network output

At initialization a linear+activation pair multiplies the gradient power by χ = σ_w²·E[φ'(h)²]
(Schoenholz et al. 2017, eq. 9); over L pairs that is χ^L: 10·L·log10 χ dB. χ < 1 vanishes
(ordered phase), χ > 1 explodes (chaotic phase, or batchnorm's π/(π−1) per relu block, Yang et
al. 2019). Glorot & Bengio (2010) showed the first layers of deep sigmoid/tanh nets barely train
for this reason. The rows fed by the network input are not judged: the gradient that reaches the
data trains nothing.

Why Σ is summed over units (a calibration, see thresholds.py): per unit, a row that narrows the
signal lowers the gradient by its width ratio by construction — a 512→10 read-out by 17 dB, a
2×2 max-pool by 6 dB — which says nothing about depth. Summed over units a linear row's gain is
σ_w² whatever its widths, so Σ keeps exactly the depth-wise compounding of χ the threshold is
about; in an equal-width stack the two differ by one constant, the read-out's width ratio.
The top-level pooling rows' own gains are left out too: an average pool divides each position's
gradient by its window, but the convolution before it sums the positions back into its weight
gradient (weight sharing), so that is no loss of learning signal (`paraxial.trace.pooling_db`).
"""
from __future__ import annotations

from netlens.aberrations import register
from netlens.aberrations.base import Aberration, Context, Reading, fmt, telescoping
from netlens.paraxial.trace import pooling_db
from netlens.paraxial.trace import db


@register
class Flow(Aberration):
    code = "FLOW"
    name = "vanishing / exploding gradient"
    unit = "dB"
    measures = ("backward gain of gradient power through the row in dB (per unit); judged on the "
                "cumulative gain from the loss to the row's input, summed over units (Σ)")
    applies = "every row not fed directly by the network input"
    explanation = (
        "Training sends the loss's gradient backward through every row, and each row multiplies its "
        "power. The Σ column says how strong the gradient is by the time it reaches a row, relative "
        "to the gradient at the output. A layer's weights learn in proportion to the gradient that "
        "reaches them, so at −40 dB (10,000× weaker in power) the first layers hardly move while "
        "the last ones do all the learning; at +40 dB the first layers take huge steps and a "
        "learning rate that suits the last ones throws the first ones off. One learning rate "
        "cannot suit both ends.")
    analogy = ("In optics this is vignetting along the system: light that should reach the first "
               "surfaces is cut off (or, when exploding, the system has a gain no real element "
               "could sustain).")
    corrections = ("critical_init", "he_init", "wrap_residual", "insert_batchnorm")
    kinds = {
        "vanishing": ("vanishing gradient", ("he_init", "critical_init", "wrap_residual",
                                             "pre_norm", "insert_batchnorm", "swap_activation", "remove_rows",
                                             "switch_to_adam"),
                      "Here the gradient vanishes toward the input: each row's χ = σ_w²·E[φ'²] is "
                      "below 1 (too small an init for the activation, or saturating units)."),
        "exploding": ("exploding gradient", ("critical_init", "wrap_residual", "remove_rows",
                                             "warmup", "clip_gradients", "switch_to_adam",
                                             "zero_init_residual"),
                      "Here the gradient grows toward the input: χ > 1 per row — too large an "
                      "init, or batchnorm, whose backward pass in a deep relu stack gains "
                      "π/(π−1) ≈ 1.47 (+1.66 dB) per block (Yang et al. 2019)."),
        "fragile": ("fragile design: opposing gradient gains", ("remove_rows", "critical_init",
                                                                  "wrap_residual"),
                    "Two rows with large opposite backward gains cancel: the end-to-end flow "
                    "looks healthy but rests on two large numbers that training can unbalance."),
    }

    def readings(self, ctx: Context) -> list[Reading]:
        # the gradient reaching the data itself trains nothing: rows fed by the input are not judged
        first = {m.index for m in ctx.rows if m.prev < 0}
        return telescoping(ctx, self.code, [f for _g, f in ctx.gains_db], ctx.cum_flow_total_db,
                           ("vanishing", "exploding"), first, ctx.flow_total_db)

    def message(self, reading: Reading, ctx: Context) -> str:
        if reading.kind == "fragile":
            return reading.detail
        parts = []
        if ctx.trace is not None and ctx.step == 0:
            tr, out = ctx.trace.rows, ctx.rows[ctx.top[-1]].width
            pools = [(j, db(tr[j].flow * ctx.width_in(j) / ctx.rows[j].width))
                     for j in ctx.top if ctx.rows[j].kind == "pool"]
            total = db(tr[reading.row].cum_flow * ctx.width_in(reading.row) / out)
            parts.append(f"paraxial predicts Σ {fmt(total - pooling_db(reading.row, pools), 'dB')} here")
        parts.append("the paraxial verdict assumes plain SGD; Adam-family optimizers rescale each "
                     "layer's step and partly hide this" if ctx.records.optimizer != "sgd" else "")
        return "; ".join(p for p in parts if p)
