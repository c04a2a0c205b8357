"""INIT — hot initial loss: the loss at step 0 against what guessing would score.

    INIT = L(step 0) / L_chance          L: train mode, on the probe batch (base.training_loss)
    L_chance = ln C for cross-entropy over C classes (uniform predictions), ln 2 for binary
               cross-entropy, the targets' variance for mse (the best constant prediction)

A freshly initialized network should be unsure: uniform class probabilities, outputs near the
targets' mean. A much higher initial loss means confidently wrong outputs — a read-out layer
initialized too large, or a signal that has grown through the stack — and the first hundreds of
steps are spent undoing that ("A Recipe for Training Neural Networks", Karpathy 2019: "verify
loss @ init").
"""
from __future__ import annotations

import math

from netlens.aberrations import register
from netlens.aberrations.base import Aberration, Context, Reading, finite, training_loss


def chance_loss(rec) -> float | None:
    if rec.loss == "cross_entropy":
        return math.log(rec.n_classes) if rec.n_classes > 1 else None
    if rec.loss == "bce":
        return math.log(2)
    var = (rec.target_var or {}).get("train")
    if finite(var):
        return var
    if rec.task == "classification":       # older records: balanced one-hot targets
        c = rec.n_classes
        return (1 / c) * (1 - 1 / c)
    return None


@register
class InitialLoss(Aberration):
    code = "INIT"
    name = "hot initial loss"
    unit = "×"
    scope = "network"
    measures = ("training loss at step 0 over its chance level (ln C for cross-entropy, the "
                "targets' variance for mse, ln 2 for bce)")
    applies = "the network"
    explanation = (
        "Before training, a network knows nothing, and its loss should be about what guessing "
        "scores: ln C for C balanced classes, the targets' variance for a regression. A much "
        "higher loss means the untrained network is confidently wrong — its outputs are too "
        "large. The first part of training is then spent shrinking them instead of learning, and "
        "the large early gradients can destabilize the rest of the network.")
    analogy = ("Optically, it is a system out of focus before any adjustment: the first turns "
               "of the focus knob only undo the error you started with.")
    corrections = ("xavier_init", "critical_init", "insert_layernorm", "warmup")
    judged = "at step 0, whatever step is judged"

    def readings(self, ctx: Context) -> list[Reading]:
        rec = ctx.records
        chance = chance_loss(rec)
        first = training_loss(rec.snapshots[0]) if rec.snapshots else None
        if not (chance and finite(first)):
            return []
        what = {"cross_entropy": f"ln {rec.n_classes}", "bce": "ln 2"}.get(rec.loss, "the targets' variance")
        return [Reading(first / chance,
                        detail=f"probe-batch loss {first:.4g} at step 0 against {what} = {chance:.4g}")]

    def message(self, reading: Reading, ctx: Context) -> str:
        return reading.detail
