"""SHRP — beyond the stability limit: the top Hessian eigenvalue against what the step allows.

    SGD:           SHRP = η·λ_max / 2
    SGD, heavy-ball momentum β:   SHRP = η·λ_max / (2(1+β))
    Adam, AdamW:   SHRP = λ₁(P⁻¹H) / ((2+2β₁)/((1−β₁)η))   (38/η at β₁ = 0.9)
    RMSProp:       SHRP = λ₁(P⁻¹H) / (2(1+β)/η)            (β its momentum, 0 by default)

An adaptive optimizer steps along −η·P⁻¹·m with a diagonal preconditioner P (Adam: √v̂ + ε), so
the quadratic model's limit is on the *preconditioned* sharpness λ₁(P⁻¹H) (Cohen et al. 2022,
"Adaptive Gradient Methods at the Edge of Stability", arXiv 2207.14484): full-batch Adam drives
it up to (2+2β₁)/((1−β₁)η) — the limit of an EMA-momentum step — and hovers there, the adaptive
edge of stability. netlens measures it with P from the optimizer's own state at the probe step
(bias-corrected second moments and ε; netlens/instruments/hessian.py). Records without it (written
before it was measured) get the plain λ reported as info, not judged.

On a quadratic, gradient descent converges iff η < 2/λ (docs/theory.md §3). Cohen et al. (2021)
found that full-batch GD drives λ up to 2/η and then hovers there — the "edge of stability" —
where the loss still falls, non-monotonically. SHRP near 1 is that regime; above ~1.2 the step
overshoots in the sharpest direction and training becomes unstable. Sharpness depends on the
loss level (with cross-entropy it shrinks as the loss goes to zero), so it is always reported
beside the loss and the (η, batch) it was measured at. λ is the last estimate at or before the
judged step (probe batch, Lanczos on Hessian-vector products).
"""
from __future__ import annotations

from netlens.aberrations import register
from netlens.aberrations.base import Aberration, Context, Reading, finite, training_loss
from netlens.instruments.records import ADAPTIVE


@register
class Sharpness(Aberration):
    code = "SHRP"
    name = "beyond the stability limit"
    unit = "×"
    scope = "network"
    measures = ("top Hessian eigenvalue λ over the optimizer's limit: η·λ/2 for SGD, "
                "η·λ/(2(1+β)) with momentum β; Adam-family: the preconditioned λ₁(P⁻¹H) over "
                "(2+2β₁)/((1−β₁)η), RMSProp's over 2(1+β)/η")
    applies = "the network (the training loss on the probe batch)"
    explanation = (
        "The Hessian's top eigenvalue λ measures how sharply the loss curves along its steepest "
        "direction. A gradient step of size η along that direction overshoots the bottom of the "
        "valley once η > 2/λ, and each further step overshoots by more: the loss climbs instead of "
        "falling. The column says where the step sits against that limit: 0.5 is comfortable, "
        "around 1 is the 'edge of stability' where full-batch training typically hovers, and "
        "well above 1 is unstable.")
    analogy = ("Optically, it is the focusing step compared with the depth of focus: a step "
               "longer than the depth of focus jumps from one side of focus to the other.")
    corrections = ("set_lr", "warmup", "clip_gradients", "switch_to_adam")
    judged = "the last Hessian estimate at or before the judged step"

    def readings(self, ctx: Context) -> list[Reading]:
        rec = ctx.records
        snaps = ctx.snapshots_until()
        if rec.optimizer in ADAPTIVE:
            pre = [s for s in snaps if finite(getattr(s, "preconditioned", None))]
            if pre:
                return [self._adaptive(rec, pre[-1])]
        with_h = [s for s in snaps if finite(s.hessian)]
        if not with_h:
            return []
        s = with_h[-1]
        lr = s.lr if s.lr is not None else rec.lr
        where = (f"λ = {s.hessian:.4g} at step {s.step} (probe-batch loss {_loss(s)}, "
                 f"lr {lr:g}, batch {rec.batch}, {rec.optimizer})")
        if rec.optimizer in ADAPTIVE:
            return [Reading(s.hessian, severity="info", kind="adaptive", unit="λ",
                            detail=where + f"; {rec.optimizer}'s limit is on the preconditioned "
                                           "sharpness, which these records do not hold: not judged")]
        factor, formula = stability_factor(rec.optimizer, rec.momentum)
        value = lr * s.hessian / factor
        if lr <= 0:        # a schedule's last step: nothing left to overshoot
            return [Reading(value, detail=where + "; the schedule's lr is 0 here")]
        return [Reading(value, detail=where + f"; the limit {formula} = {factor / lr:.4g}")]

    @staticmethod
    def _adaptive(rec, s) -> Reading:
        """λ₁(P⁻¹H) against the adaptive edge of stability."""
        lr = s.lr if s.lr is not None else rec.lr
        beta = rec.momentum
        factor, formula = stability_factor(rec.optimizer, beta)
        where = (f"preconditioned λ₁(P⁻¹H) = {s.preconditioned:.4g} at step {s.step} (probe-batch "
                 f"loss {_loss(s)}, lr {lr:g}, batch {rec.batch}, {rec.optimizer}, β = {beta:g})")
        value = lr * s.preconditioned / factor
        if lr <= 0:
            return Reading(value, detail=where + "; the schedule's lr is 0 here")
        return Reading(value, detail=where + f"; the adaptive limit {formula} = {factor / lr:.4g}")

    def message(self, reading: Reading, ctx: Context) -> str:
        return reading.detail


def stability_factor(optimizer: str, momentum: float) -> tuple[float, str]:
    """(c, its formula): the quadratic model is stable while η·λ < c, λ the top eigenvalue of H
    (SGD, heavy-ball momentum β: c = 2(1+β)) or of P⁻¹H (Adam, AdamW: c = (2+2β₁)/(1−β₁), Cohen
    et al. 2022; RMSProp: 2(1+β)). The largest stable η is c/λ (corrections' set_lr)."""
    if optimizer in ("adam", "adamw"):
        return (2 + 2 * momentum) / (1 - momentum), "(2+2β₁)/((1−β₁)η)"
    return 2 * (1 + momentum), "2(1+β)/η"


def _loss(s) -> str:
    value = training_loss(s)
    return f"{value:.4g}" if finite(value) else "not measured"
