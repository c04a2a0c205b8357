"""STEP — update ratio: how far one optimizer step moves a layer's weights, relative to them.

    r = ‖ΔW‖ / ‖W‖ after a step (measured at the probe steps), divided by lr(t)/lr so a decaying
        schedule is not mistaken for a too-small learning rate
    STEP = log10(median r over the probes of the judging window after step 0 (at least
           MIN_TREND of them), and, late in the run, over the second half up to the judged step)

In the judging window only the "small" case is judged: a layer that hardly moves while the
network should be learning is frozen. Large relative steps early are how learning starts — the
initial loss's gradient is large and a default-initialized head is small (random-labels' head
moves 10^−1.35 per step over its first 125 SGD steps, then 10^−2.2) — so "large" is judged on
the second half of the run, where a layer that still rewrites itself every step cannot settle.

CS231n's rule of thumb: r ≈ 1e-3 (log10 −3) is healthy. Much smaller and the layer does not
learn within the run; much larger and each step rewrites the layer, so it cannot settle. For
Adam, r ≈ η/rms(W) regardless of the gradient's size, so it reflects the init scale as well as
η (docs/theory.md). In bfloat16 weights an update below ~2e-3 relative rounds away.
Judged from step 1 on: at step 0 the window is the first update alone, which the initial
loss's large gradient dominates (small-cnn's head moves 8.5% in its first SGD step, then ~0.2%).
"""
from __future__ import annotations

import math
import statistics

from netlens.aberrations import register
from netlens.aberrations.base import Aberration, Context, Reading, finite

FLOOR = 1e-12    # log10 of a zero update: the layer did not move at all
MIN_TREND = 3    # probes a median over the judging window needs to be judged


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
    per_probe = False              # already a median over a window of probes
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
        start = end / 2 if ctx.since is None else ctx.since
        snaps = [s for s in rec.snapshots if start <= s.step <= end]
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
                kind = "small" if value < -3 else "large"
                # one first step is not a trend, nor are one or two early ones; and large early
                # steps are how learning starts: within the judging window only "small" is judged
                early = ctx.since is not None and (len(ratios) < MIN_TREND or kind == "large")
                out.append(Reading(value, m.index, kind=kind,
                                   detail=f"median over {len(ratios)} probe step(s)",
                                   severity="ok" if end == 0 or early else None))
        return out

    def message(self, reading: Reading, ctx: Context) -> str:
        factor = 10 ** (-3 - reading.value)
        way = "raise" if factor > 1 else "lower"
        return (f"‖ΔW‖/‖W‖ ≈ {10 ** reading.value:.1e} per step ({reading.detail}); to reach 1e-3, "
                f"{way} the learning rate about {max(factor, 1 / factor):.3g}×")
