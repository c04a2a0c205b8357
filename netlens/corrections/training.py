"""Corrections to the `train:` section: step size, its schedule, clipping, optimizer, decay.

Their parameters come from the run (docs/corrections.md): `set_lr` from the measured top Hessian eigenvalue
or update ratio, `clip_gradients` from the measured gradient norm. A variable cell (`lr: {vary:
…}`) keeps its range; the correction moves its start (see `Edit.set`).
"""
from __future__ import annotations

import math

from netlens.aberrations.sharpness import stability_factor
from netlens.corrections import register
from netlens.corrections.base import Case, Correction, NotApplicable, sig, train_section
from netlens.corrections.edit import Edit
from netlens.instruments.records import ADAPTIVE
from netlens.prescription import Design

ADAM_LR = 1e-3          # Kingma & Ba 2015's default step
TARGET_FRACTION = 0.5   # set_lr: η at half the stability limit leaves room for sharpening
TARGET_RATIO = -3.0     # log10 ‖ΔW‖/‖W‖ per step ≈ 1e-3 (CS231n)
MAX_RAISE = 10.0        # raise η at most a decade per correction: re-verify before going further
# Aberrations a larger step can cure (too little movement); for the rest set_lr only lowers η.
MAY_RAISE = ("STEP", "STAL", "PREC")


def stability_limit(design: Design, sharpness: float) -> float:
    """The largest stable η for top Hessian eigenvalue λ: 2/λ, heavy-ball 2(1+β)/λ. For Adam and
    AdamW λ is the preconditioned sharpness λ₁(P⁻¹H): 2(1+β₁)/((1−β₁)λ) (Cohen et al. 2022); for
    RMSProp 2(1+β)/λ on λ₁(P⁻¹H) (docs/theory.md §3)."""
    factor, _formula = stability_factor(design.train.optimizer, design.train.momentum)
    return factor / sharpness


@register
class SetLr(Correction):
    name = "set_lr"
    summary = ("set the learning rate from the run: half the stability limit 2(1+β)/λ for SHRP, "
               "toward an update ratio of 1e-3 per step for STEP (at most ×10), a tenth after a "
               "divergence without a measured λ")
    citation = ("Cohen et al. 2021 (edge of stability), 2022 (its adaptive form, λ₁(P⁻¹H)); the "
                "quadratic limit η < 2/λ; CS231n for STEP")
    needs = ("SHRP: the measured λ — λ₁(P⁻¹H) for Adam-family optimizers — or the finding's "
             "value η·λ/limit; STEP: the measured log10 update ratio; PREC: the measured update "
             "ratio and the precision; DIVG: λ if measured")
    uses_case = True

    def plan(self, design: Design, case: Case) -> float:
        lr = design.train.lr
        adaptive = design.train.optimizer in ADAPTIVE
        lam = case.measured.get("preconditioned" if adaptive else "hessian")
        if case.code == "SHRP" and case.kind == "adaptive":
            raise NotApplicable(f"{design.train.optimizer}'s limit is on the preconditioned "
                                "sharpness, which this run did not measure")
        if case.code == "STEP":
            ratio = case.value if case.value is not None else case.measured.get("update_ratio")
            if ratio is None:
                raise NotApplicable("no measured update ratio")
            new = lr * min(MAX_RAISE, 10 ** (TARGET_RATIO - ratio))
        elif case.code == "PREC":
            from netlens.aberrations.precision import HALF_ULP

            ratio = case.measured.get("update_ratio")
            if ratio is None:
                raise NotApplicable("no measured update ratio")
            # updates at twice half an ulp of the weight survive round-to-nearest
            need = 2 * HALF_ULP.get(design.train.precision, 0.0) / 10 ** ratio
            if need <= 1:
                raise NotApplicable("the updates are already above half an ulp")
            new = lr * min(MAX_RAISE, need)
        elif case.code == "SHRP" and case.value and case.value > 0:
            new = lr * TARGET_FRACTION / case.value      # the finding's η·λ/limit, any optimizer
        elif lam is not None and lam > 0 and math.isfinite(lam):
            new = TARGET_FRACTION * stability_limit(design, lam)
            if case.code not in MAY_RAISE and new >= lr:
                raise NotApplicable(f"lr {lr:g} is already below half the stability limit "
                                    f"({new:.2g} at λ = {lam:.3g}); a larger step would not cure {case.code}")
            new = min(new, lr * MAX_RAISE)
        elif case.code in ("DIVG", "SHRP"):
            new = lr / 10                              # no curvature measured: a decade down
        else:
            raise NotApplicable("no measurement to set the learning rate from")
        new = sig(new)
        if math.isclose(new, lr, rel_tol=0.05):
            raise NotApplicable(f"lr {lr:g} is already where the measurement puts it")
        return new

    def apply(self, edit: Edit, design: Design, case: Case) -> str:
        new = self.plan(design, case)
        edit.set(train_section(edit), "lr", new, after=("optimizer",))
        return f"lr {design.train.lr:g} → {new:g}"

    def predict(self, design: Design, case: Case) -> dict[str, tuple[float, float]]:
        """SHRP scales with η at fixed curvature: the new η·λ/limit is the old one × η'/η."""
        if case.code != "SHRP" or not case.value:
            return {}
        return {"SHRP": (case.value, case.value * self.plan(design, case) / design.train.lr)}


@register
class Warmup(Correction):
    name = "warmup"
    summary = "a linear warm-up over the first 10% of the steps: early steps small while curvature settles"
    citation = "Goyal et al. 2017, Accurate, large minibatch SGD"
    FRACTION = 0.1

    def plan(self, design: Design, case: Case) -> int:
        if design.train.warmup > 0:
            raise NotApplicable(f"warm-up is already {design.train.warmup} steps")
        return max(1, round(self.FRACTION * design.train.steps))

    def apply(self, edit: Edit, design: Design, case: Case) -> str:
        steps = self.plan(design, case)
        edit.set(train_section(edit), "warmup", steps, after=("schedule", "steps", "lr"))
        return f"warm-up over {steps} steps"


@register
class ClipGradients(Correction):
    name = "clip_gradients"
    summary = "clip the global gradient norm at its measured median: outlier steps are cut, typical ones kept"
    citation = "Pascanu et al. 2013, On the difficulty of training recurrent neural networks"
    needs = "the measured median gradient norm (1.0 when not measured)"
    uses_case = True

    def plan(self, design: Design, case: Case) -> float:
        if design.train.clip is not None:
            raise NotApplicable(f"gradients are already clipped at {design.train.clip:g}")
        if case.code == "FLOW" and case.value is not None and case.value < 0:
            raise NotApplicable("clipping cannot help a vanishing gradient")
        norm = case.measured.get("grad_norm")
        return sig(norm) if norm and math.isfinite(norm) and norm > 0 else 1.0

    def apply(self, edit: Edit, design: Design, case: Case) -> str:
        clip = self.plan(design, case)
        edit.set(train_section(edit), "clip", clip, after=("lr",))
        return f"clip the gradient norm at {clip:g}"


@register
class SwitchToAdam(Correction):
    name = "switch_to_adam"
    summary = "optimizer: adam at lr 1e-3: each weight's step is divided by its gradient's own scale"
    citation = "Kingma & Ba 2015, Adam"

    def plan(self, design: Design, case: Case) -> str:
        if design.train.optimizer != "sgd":
            raise NotApplicable(f"the optimizer is already {design.train.optimizer}")
        return "adam"

    def apply(self, edit: Edit, design: Design, case: Case) -> str:
        self.plan(design, case)
        train = train_section(edit)
        edit.set(train, "optimizer", "adam", after=("loss",))
        edit.set(train, "lr", ADAM_LR, after=("optimizer",))
        # SGD's momentum would become Adam's β₁; Adam's own default (0.9) is the one to keep.
        if "momentum" in train and design.train.momentum != 0.9:
            del train["momentum"]
        return f"sgd (lr {design.train.lr:g}) → adam (lr {ADAM_LR:g})"


@register
class WeightDecay(Correction):
    name = "weight_decay"
    summary = "weight decay 5e-4 (SGD) or AdamW at 0.01: small weights generalize better"
    citation = "Krogh & Hertz 1992; AdamW: Loshchilov & Hutter 2019"

    def plan(self, design: Design, case: Case) -> tuple[str, float]:
        t = design.train
        optimizer = "adamw" if t.optimizer == "adam" else t.optimizer   # Adam's L2 is not decay
        target = 1e-2 if optimizer == "adamw" else 5e-4
        if t.weight_decay >= target and optimizer == t.optimizer:
            raise NotApplicable(f"weight decay is already {t.weight_decay:g}")
        return optimizer, max(target, t.weight_decay)

    def apply(self, edit: Edit, design: Design, case: Case) -> str:
        optimizer, wd = self.plan(design, case)
        train = train_section(edit)
        if optimizer != design.train.optimizer:
            edit.set(train, "optimizer", optimizer)
        edit.set(train, "weight_decay", wd, after=("momentum", "lr"))
        return f"weight_decay {design.train.weight_decay:g} → {wd:g}" + (
            f" with {optimizer}" if optimizer != design.train.optimizer else "")


@register
class SetPrecision(Correction):
    name = "set_precision"
    summary = ("keep the weights in float32 — the master copy of mixed-precision training: an "
               "update of 1e-3 of a weight is ~10⁴ ulps there instead of a fraction of one")
    citation = ("Micikevicius et al. 2018, Mixed precision training (FP32 master weights); "
                "Kalamkar et al. 2019, A study of BFLOAT16 for deep learning training")

    def plan(self, design: Design, case: Case) -> str:
        if design.train.precision in ("float32", "float64"):
            raise NotApplicable(f"the weights are already {design.train.precision}")
        return "float32"

    def apply(self, edit: Edit, design: Design, case: Case) -> str:
        self.plan(design, case)
        edit.set(train_section(edit), "precision", "float32", after=("schedule", "steps"))
        return f"precision {design.train.precision} → float32"
