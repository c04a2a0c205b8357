"""PREC — updates lost to rounding: a row's weights whose step rounds away in the parameter dtype.

    PREC = median over the probe steps in the second half of the run (up to the judged step) of
           #{w : g ≠ 0 and w unchanged by the step} / #{w : g ≠ 0}

A floating-point number keeps a fixed count of significant bits, so the gap between a weight and
the next representable value (one ulp) grows with the weight: 2⁻²³·|w| in float32, 2⁻⁷·|w| in
bfloat16 (binary32 has 24 significant bits, bfloat16 8). Round-to-nearest then returns the weight
itself for any step smaller than half an ulp (IEEE 754; Goldberg 1991): in bfloat16 an update
below about 2e-3 of the weight (2⁻⁹ to 2⁻⁸ relative, depending on where |w| sits in its binade)
is lost entirely, while float32 keeps updates down to ~6e-8 relative. A healthy step is ~1e-3 of
the weight (STEP), so bfloat16 weights stop learning at the very update size that is right.
Micikevicius et al. 2018 ("Mixed Precision Training") keep an FP32 master copy of the weights for
exactly this reason (FP16 loses updates below 2⁻¹¹ of a weight); Kalamkar et al. 2019 ("A Study of
BFLOAT16 for Deep Learning Training") do the same for bfloat16.
Measured by the instruments after each probe step's update (netlens/instruments/precision.py).
"""
from __future__ import annotations

import statistics

from netlens.aberrations import register
from netlens.aberrations.base import Aberration, Context, Reading, finite

#: Half an ulp relative to the weight, at most (|w| at the bottom of its binade): the smallest
#: relative update round-to-nearest is sure to keep. bfloat16: 8 significant bits → 2⁻⁸.
HALF_ULP = {"bfloat16": 2.0 ** -8, "float32": 2.0 ** -24, "float64": 2.0 ** -53}


@register
class Precision(Aberration):
    code = "PREC"
    name = "updates lost to rounding"
    unit = "fraction"
    measures = ("fraction of the row's weights with a non-zero gradient that the step left "
                "unchanged (the update below half an ulp), median over the second half of the run")
    applies = "weight rows (linear, conv)"
    explanation = (
        "The optimizer asked these weights to move, and the parameter's number format could not "
        "represent the move: a step smaller than half the gap to the next representable value "
        "rounds back to the same weight, so the update is lost. In bfloat16 that gap is about "
        "1/128 of the weight, so any update below ~2e-3 of it vanishes — and a healthy update is "
        "about 1e-3. The layer then learns only from its rare large steps, or not at all.")
    analogy = ("Optically, it is a focus knob with detents too coarse for the adjustment: the fine "
               "turn the optimizer asks for falls between two clicks and nothing moves.")
    corrections = ("set_precision", "set_lr")

    def readings(self, ctx: Context) -> list[Reading]:
        rec = ctx.records
        end = ctx.step
        snaps = [s for s in rec.snapshots if end / 2 <= s.step <= end]
        out = []
        for m in rec.rows:
            if m.kind != "layer":
                continue
            shares = [s.rows[m.index].get("rounded") for s in snaps]
            shares = [x for x in shares if finite(x)]
            if shares:
                out.append(Reading(statistics.median(shares), m.index,
                                   detail=f"median over {len(shares)} probe step(s), {rec.precision} weights"))
        return out

    def message(self, reading: Reading, ctx: Context) -> str:
        prec = ctx.records.precision
        half = HALF_ULP.get(prec)
        tail = f" (half an ulp is up to {half:.1e} of a weight in {prec})" if half else ""
        return (f"{reading.value:.0%} of the weights with a gradient did not move in a step: their "
                f"updates round away{tail}; {reading.detail}")
