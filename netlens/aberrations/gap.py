"""GAP — generalization gap: how much better the network does on its training data.

    classification: GAP = train accuracy − validation accuracy
    regression:     GAP = R²_train − R²_val,  R² = 1 − mse / var(targets)

A network can memorize: Zhang et al. (2017) showed that the same networks that generalize on
real labels fit *random* labels perfectly, with validation accuracy at chance. A large gap says
the network learned the training samples rather than the rule — too much capacity for the data,
training too long without regularization, or labels that carry no rule (noise).
"""
from __future__ import annotations

from netlens.aberrations import register
from netlens.aberrations.base import Aberration, Context, Reading, finite


@register
class Gap(Aberration):
    code = "GAP"
    name = "generalization gap"
    unit = ""
    scope = "network"
    measures = ("train accuracy − validation accuracy at the judged step (regression: "
                "train R² − validation R²)")
    applies = "the network, when there is a validation split"
    explanation = (
        "The network scores much better on the samples it trained on than on held-out ones: it "
        "is memorizing individual samples rather than learning the rule that generalizes. More "
        "training makes the gap wider, not the model better. If the validation score is at "
        "chance, check the labels: a network can memorize labels that carry no rule at all.")
    analogy = ("Optically, it is a lens optimized for the few field points in its merit "
               "function: sharp there, poor everywhere in between.")
    corrections = ("weight_decay", "insert_dropout")
    judged = "at the judged step"

    def readings(self, ctx: Context) -> list[Reading]:
        s, rec = ctx.snap, ctx.records
        if rec.task == "classification":
            if finite(s.train_accuracy) and finite(s.val_accuracy):
                return [Reading(s.train_accuracy - s.val_accuracy,
                                detail=f"train accuracy {s.train_accuracy:.3f}, validation "
                                       f"{s.val_accuracy:.3f} at step {s.step}")]
            return []
        var = rec.target_var or {}
        vt, vv = var.get("train"), var.get("val")
        if not all(finite(x) and x > 0 for x in (vt, vv)) or not (finite(s.train_loss) and finite(s.val_loss)):
            return []
        r2t, r2v = 1 - s.train_loss / vt, 1 - s.val_loss / vv
        return [Reading(r2t - r2v, detail=f"train R² {r2t:.3f}, validation R² {r2v:.3f} at step {s.step}")]

    def message(self, reading: Reading, ctx: Context) -> str:
        return reading.detail
