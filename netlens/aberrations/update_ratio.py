"""STEP — update ratio: how far one optimizer step moves a layer's weights, relative to them.

    r = ‖ΔW‖ / ‖W‖ after a step (measured at the probe steps), divided by lr(t)/lr so a decaying
        schedule is not mistaken for a too-small learning rate
    STEP = log10(median r over the second half of the run up to the judged step)

CS231n's rule of thumb: r ≈ 1e-3 (log10 −3) is healthy. Much smaller and the layer does not
learn within the run; much larger and each step rewrites the layer, so it cannot settle. For
Adam, r ≈ η/rms(W) regardless of the gradient's size, so it reflects the init scale as well as
η (docs/theory.md §3). In bfloat16 weights an update below ~2e-3 relative rounds away.
Judged from step 1 on: at step 0 the window is the first update alone, which the initial
loss's large gradient dominates (small-cnn's head moves 8.5% in its first SGD step, then ~0.2%).
"""
from __future__ import annotations

import math
import statistics

from netlens.aberrations import register
from netlens.aberrations.base import Aberration, Context, Reading, finite

FLOOR = 1e-12    # log10 of a zero update: the layer did not move at all


@register
class UpdateRatio(Aberration):
    code = "STEP"
    name = "update ratio"
    unit = "log10"
    measures = ("log10 of ‖ΔW‖/‖W‖ per step (scaled by the schedule's lr(t)/lr), median over the "
                "second half of the run up to the judged step")
    applies = "weight rows (linear, conv)"
    explanation = (
        "The update ratio compares the size of one step's change to a layer's weights with the "
        "size of the weights themselves. Around 1e-3 (−3 in the column) each step nudges the layer; "
        "at 1e-5 the layer would need a hundred thousand steps to change appreciably, so it is "
        "effectively frozen; at 1e-1 every step rewrites a tenth of it, so it jumps around "
        "instead of converging.")
    analogy = ("Optically, it is the step size of a focusing mechanism: too fine and the image "
               "never comes into focus in the time available, too coarse and it jumps past focus "
               "at every step.")
    corrections = ("set_lr",)
    kinds = {
        "small": ("update ratio: too small", ("set_lr", "he_init", "switch_to_adam"),
                  "Here the steps are too small: raise the learning rate (by about the factor to "
                  "reach 1e-3), or fix the vanishing gradient that starves this layer."),
        "large": ("update ratio: too large", ("set_lr", "warmup", "clip_gradients"),
                  "Here the steps are too large: lower the learning rate by about the factor "
                  "above 1e-3, or warm it up."),
    }

    def readings(self, ctx: Context) -> list[Reading]:
        rec = ctx.records
        end = ctx.step
        snaps = [s for s in rec.snapshots if end / 2 <= s.step <= end]
        out = []
        for m in rec.rows:
            if m.kind != "layer":
                continue
            ratios = []
            for s in snaps:
                r = s.rows[m.index].get("update_ratio")
                factor = (s.lr / rec.lr) if s.lr is not None and rec.lr > 0 else 1.0
                if finite(r) and factor > 0:
                    ratios.append(r / factor)
            if ratios:
                value = math.log10(max(statistics.median(ratios), FLOOR))
                out.append(Reading(value, m.index, kind="small" if value < -3 else "large",
                                   detail=f"median over {len(ratios)} probe step(s)",
                                   # one first step is not a trend: shown, not judged
                                   severity="ok" if end == 0 else None))
        return out

    def message(self, reading: Reading, ctx: Context) -> str:
        factor = 10 ** (-3 - reading.value)
        way = "raise" if factor > 1 else "lower"
        return (f"‖ΔW‖/‖W‖ ≈ {10 ** reading.value:.1e} per step ({reading.detail}); to reach 1e-3, "
                f"{way} the learning rate about {max(factor, 1 / factor):.3g}×")
