"""DIVG — divergence: a non-finite value, or a loss far above where it started.

    non-finite: the first step and row (in forward order) whose output, loss or gradient is
                NaN or ±inf, as the training loop located it
    blow-up:    DIVG = max(batch loss over the run up to the judged step) / initial loss

A run that diverges has no result to judge past that point: the other aberrations are then read
at the last finite probe. Usual causes: a learning rate past the stability limit (see SHRP), an
exploding gradient (FLOW), or an overflow in low precision.
"""
from __future__ import annotations

import math

from netlens.aberrations import register
from netlens.aberrations.base import Aberration, Context, Reading, finite


@register
class Divergence(Aberration):
    code = "DIVG"
    name = "divergence"
    unit = "×"
    scope = "network"
    measures = ("the first step and row with a non-finite value; else the largest batch loss "
                "over the initial loss")
    applies = "the network"
    explanation = (
        "Training diverged: numbers grew until they overflowed to infinity or became NaN "
        "('not a number'), or the loss rose far above where it started instead of falling. "
        "Nothing learned after that point is usable. Most often the learning rate is too large "
        "for the curvature of the loss (each step overshoots by more than the last), or gradients "
        "explode through a deep stack.")
    analogy = ("Optically, it is an unstable resonator: each round trip amplifies the error "
               "instead of damping it.")
    corrections = ("set_lr", "warmup", "clip_gradients", "switch_to_adam")
    judged = "over the whole run up to the judged step: the first non-finite value, or the largest batch loss"

    def readings(self, ctx: Context) -> list[Reading]:
        rec = ctx.records
        d = rec.divergence
        if d is not None and d.step <= ctx.until:
            where = f"row #{d.row} {rec.rows[d.row].label} ({rec.rows[d.row].source})" \
                if d.row is not None else f"the {d.quantity}"
            return [Reading(math.inf, row=d.row, severity="error", kind="non-finite",
                            detail=f"first non-finite value at step {d.step} in {where} "
                                   f"(lr {rec.lr:g}, batch {rec.batch})")]
        losses = [v for v in rec.loss_curve[: ctx.until + 1] if finite(v)]
        if not losses or losses[0] <= 0:
            return []
        worst = max(losses)
        step = losses.index(worst)
        return [Reading(worst / losses[0], detail=f"batch loss {worst:.4g} at step {step} against "
                                                  f"{losses[0]:.4g} at step 0")]

    def message(self, reading: Reading, ctx: Context) -> str:
        return reading.detail
