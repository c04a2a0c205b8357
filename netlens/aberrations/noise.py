"""NOIS — gradient noise: the batch size against the gradient noise scale.

    B_simple = tr(Σ) / ‖G‖²    (McCandlish et al. 2018, "An Empirical Model of Large-Batch
                                Training", App. A: unbiased estimates from two batch sizes, here
                                the training batch and the probe batch at the same weights)
    NOIS = batch / B_simple, at the first probe where it was measured (early in the run)

B_simple is the batch at which the gradient's noise and its signal are equal: the "critical
batch". Far below it (NOIS ≪ 1) each step follows mostly noise, so the learning rate must stay
small and training takes many steps; near or above it, larger batches stop paying off. Liu et
al. (2020) read the same ratio per parameter as the gradient signal-to-noise ratio.
"""
from __future__ import annotations

from netlens.aberrations import register
from netlens.aberrations.base import Aberration, Context, Reading, finite


@register
class Noise(Aberration):
    code = "NOIS"
    name = "gradient noise"
    unit = "×"
    scope = "network"
    measures = ("batch size over the gradient noise scale B_simple = tr(Σ)/‖G‖² at the first "
                "probe that measured it; B_simple is the suggested critical batch")
    applies = "the network (needs a probe batch larger than the training batch)"
    explanation = (
        "Each mini-batch gives a noisy estimate of the true gradient. The noise scale says how "
        "large a batch would make the noise as large as the signal. A batch far smaller than that "
        "means each step mostly follows noise: the learning rate has to stay small, and training "
        "needs many more steps than a larger batch would.")
    analogy = ("Optically, it is an exposure far too short for the light available: the image "
               "is dominated by shot noise.")
    corrections = ("set_lr",)
    judged = "at the first probe that measured it, up to the judged step"

    def readings(self, ctx: Context) -> list[Reading]:
        first = next((s for s in ctx.snapshots_until() if finite(s.noise_scale) and s.noise_scale > 0),
                     None)
        if first is None:
            return []
        b = ctx.records.batch
        return [Reading(b / first.noise_scale,
                        detail=f"batch {b} against a noise scale B_simple ≈ {first.noise_scale:.3g} "
                               f"at step {first.step} (the suggested critical batch)")]

    def message(self, reading: Reading, ctx: Context) -> str:
        return reading.detail
