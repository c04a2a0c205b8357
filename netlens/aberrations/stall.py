"""STAL — no progress: the training loss at the judged step against the initial loss.

    STAL = L_train(judged step) / L_train(step 0)     (evaluation mode, on the training split)

Not judged at step 0. A loss that has not fallen by 10% means the network is not learning: the
gradient does not reach the weights (FLOW, DEAD, SATR), the step is too small (STEP), or there
is nothing learnable in the labels.
"""
from __future__ import annotations

from netlens.aberrations import register
from netlens.aberrations.base import Aberration, Context, Reading, finite


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

    def readings(self, ctx: Context) -> list[Reading]:
        first = ctx.records.snapshots[0].train_loss if ctx.records.snapshots else None
        now = ctx.snap.train_loss
        if ctx.step == 0 or not (finite(first) and finite(now) and first > 0):
            return []
        return [Reading(now / first, detail=f"training loss {first:.4g} at step 0 → {now:.4g} at "
                                            f"step {ctx.step}")]

    def message(self, reading: Reading, ctx: Context) -> str:
        return reading.detail
