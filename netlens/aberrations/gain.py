"""GAIN — signal drift: the forward power of each row, and where it has drifted to.

    gain_i = q_i / q_prev(i)          (dB: 10·log10), q = mean square of a row's output
    Σ gain_i = q_i / q_input          the power at row i relative to the network input

Per-row gains telescope, so the SUM row is the end-to-end gain. The paraxial rule of a wide
layer is q_out = σ_w²·E[φ(h)²] + σ_b² (Poole et al. 2016, eq. 3): at He init a linear+relu pair
keeps q (0 dB); PyTorch's default init loses 7.8 dB per pair (docs/theory.md). Flagged on the
cumulative power: beyond ±20 dB a signal has shrunk to the biases' floor or grown into the
activations' flat tails. The network's output row is shown but not judged: no row reads it, and a
classifier's logits grow on purpose as training sharpens them (INIT judges a hot output at step 0).
"""
from __future__ import annotations

from netlens.aberrations import register
from netlens.aberrations.base import Aberration, Context, Reading, fmt, telescoping
from netlens.paraxial.trace import db


@register
class Gain(Aberration):
    code = "GAIN"
    name = "signal drift"
    unit = "dB"
    measures = ("forward power gain of the row, q_out/q_in in dB; judged on the cumulative power "
                "relative to the network input (Σ)")
    applies = "every row but the network's output"
    explanation = (
        "Each row multiplies the power (mean square) of the signal passing forward. The table shows "
        "each row's gain in dB and, in the Σ column, how far the signal has drifted from the input's "
        "power by that row. Far below the input, every sample's signal is dominated by the biases and "
        "looks alike to the next rows; far above it, activations sit on their flat tails and numbers "
        "grow toward overflow. Either way the layers downstream learn from a distorted picture of "
        "the input.")
    analogy = ("Optically, this is the marginal ray height drifting through the system: the beam "
               "either collapses to a point or spills past the aperture of the next element.")
    corrections = ("he_init", "critical_init", "insert_batchnorm", "insert_layernorm")
    kinds = {
        "shrinking": ("signal drift: shrinking", ("he_init", "critical_init", "insert_batchnorm",
                                                  "insert_layernorm"),
                      "Here the signal shrinks: the weights are too small for the activation that "
                      "follows (σ_w²·E[φ'²] < 1), e.g. PyTorch's default init under relu."),
        "growing": ("signal drift: growing", ("critical_init", "xavier_init", "insert_batchnorm",
                                              "insert_layernorm"),
                    "Here the signal grows: the weights are too large for the activation "
                    "(σ_w²·E[φ'²] > 1)."),
        "fragile": ("fragile design: opposing gains", ("remove_rows", "critical_init",
                                                        "insert_batchnorm"),
                    "Two rows with large opposite gains cancel: the sum looks healthy, but it rests "
                    "on two large numbers, and a small change to either — an init, a width, a few "
                    "steps of training — moves it a lot."),
    }

    def readings(self, ctx: Context) -> list[Reading]:
        # the output feeds no further row (INIT judges a hot one): shown, not judged
        per_row = [g for g, _f in ctx.gains_db]
        return telescoping(ctx, self.code, per_row, ctx.cum_gain_db, ("shrinking", "growing"),
                           {ctx.top[-1]}, per_row)

    def message(self, reading: Reading, ctx: Context) -> str:
        if reading.kind == "fragile":
            return reading.detail
        if ctx.trace is not None and ctx.step == 0:
            return f"paraxial predicts Σ {fmt(db(ctx.trace.rows[reading.row].cum_gain), 'dB')} here"
        return ""

