"""SATR — saturation: tanh/sigmoid outputs sitting on the flat tails.

    sat = fraction of outputs with |tanh| > 0.97, or sigmoid < 0.03 or > 0.97

On the tails the slope φ' is near zero (tanh' < 0.06 past 0.97), so the unit passes almost no
gradient: a saturated layer is a wall for backpropagation. Glorot & Bengio (2010) watched the
top sigmoid layer of deep nets saturate early in training and stall it; Karpathy's rule of thumb
checks the fraction of |tanh| > 0.97.
"""
from __future__ import annotations

from netlens.aberrations import register
from netlens.aberrations.base import Aberration, Context, Reading, finite


@register
class Saturation(Aberration):
    code = "SATR"
    name = "saturation"
    unit = "fraction"
    measures = ("fraction of the row's outputs on the flat tails over the probe batch "
                "(|tanh| > 0.97; sigmoid < 0.03 or > 0.97)")
    applies = "tanh and sigmoid rows"
    explanation = (
        "tanh and sigmoid flatten out for large inputs: past |tanh| = 0.97 the slope is below "
        "0.06, so almost no gradient passes back through that unit, and its output no longer "
        "depends on small changes of its input. A saturated layer both blocks learning below it "
        "and turns into a binary switch above it. It comes from pre-activations that are too "
        "large: weights initialized too big (chaotic phase), unscaled inputs, or a learning rate "
        "that has grown the weights.")
    analogy = ("Optically, saturation is a detector driven past its linear range: every bright "
               "region reads the same full-scale value and the detail is gone.")
    corrections = ("critical_init", "xavier_init", "insert_layernorm", "insert_batchnorm",
                   "swap_activation", "set_lr")

    def readings(self, ctx: Context) -> list[Reading]:
        return [Reading(ctx.row(m.index)["sat"], m.index) for m in ctx.rows
                if finite(ctx.row(m.index).get("sat"))]

    def message(self, reading: Reading, ctx: Context) -> str:
        return f"{reading.value:.0%} of this row's outputs sit on the flat tails"
