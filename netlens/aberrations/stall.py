"""STAL — no progress: the training loss at the judged step against the initial loss.

    STAL = L(judged step) / L(step 0)     (train mode, on the fixed probe batch: the loss the
                                           optimizer works on; base.training_loss)

Not judged at step 0. A loss that has not fallen by 10% means the network is not learning: the
gradient does not reach the weights (FLOW, DEAD, SATR), the step is too small (STEP), or there
is nothing learnable in the labels.
"""
from __future__ import annotations

from netlens.aberrations import register
from netlens.aberrations.base import Aberration, Context, Reading, finite, training_loss


@register
class Stall(Aberration):
    code = "STAL"
    name = "no progress"
    unit = "×"
    scope = "network"
    measures = "training loss at the judged step over the training loss at step 0"
    applies = "the network (after step 0)"
    explanation = (
        "Training barely lowered the loss. This is a symptom, not a cause: read the other "
        "findings for why — gradients that vanish before reaching the first layers, dead or "
        "saturated units, a learning rate far too small, or labels with nothing to learn.")
    analogy = ("Optically, it is an optimizer that stops at its starting point: the merit "
               "function is flat along every direction it can see.")
    corrections = ("set_lr", "he_init", "critical_init", "switch_to_adam")
    judged = "at the judged step, against step 0; not at step 0"

    def readings(self, ctx: Context) -> list[Reading]:
        first = training_loss(ctx.records.snapshots[0]) if ctx.records.snapshots else None
        now = training_loss(ctx.snap)
        if ctx.step == 0 or not (finite(first) and finite(now) and first > 0):
            return []
        return [Reading(now / first, detail=f"probe-batch loss {first:.4g} at step 0 → {now:.4g} at "
                                            f"step {ctx.step}")]

    def message(self, reading: Reading, ctx: Context) -> str:
        return reading.detail
