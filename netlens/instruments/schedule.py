"""When each tier of instruments reads (torch-free: records and reports use it too).

The instruments are tiered by cost, each tier on its own schedule of steps:

  step     every probe step (`probe.every`), read off the *training step's own* forward and
           backward through hooks — no extra pass: forward and backward power (q, p) per row and
           at the input, dead and saturated fractions, mean share, per-row and global gradient
           norms, the update ratio, weight norms
  fixed    on the fixed probe batch (`probe.fixed`, log-spaced by default): effective rank,
           COND (activation-slope spread and weight spectra), the probe-batch loss, the noise
           scale (it needs the probe batch's gradient beside the training batch's), and the
           dead fraction when the training batch is too small to tell a dead unit
  eval     the evaluation passes (`probe.eval`, log-spaced): loss and accuracy on the training
           split (up to 4,096 samples) and on the validation split
  hessian  the top Hessian eigenvalue on the probe batch (`probe.hessian.every`, log-spaced from
           16 × probe.every by default); for Adam-family optimizers the preconditioned one

A quantity a tier did not read at a snapshot is absent from the row (per-row keys) or None (the
snapshot's fields): "not measured here", never a NaN, which is reserved for a measured
non-finite value. Every schedule includes step 0 and the last state, where all tiers read.

Log-spaced: step 0, then start·every, ratio·start·every, ratio²·start·every, … and the end —
dense early, where training changes fastest, sparse late. A tier then costs O(log(steps/every))
probes instead of steps/every. The evaluation passes and the Hessian start at 16·every with
ratio 2. The fixed tier starts at 2·every (the judging window weighs its readings early in the
run: docs/judging.md) with ratio 4, and reads between step 0 and the end only up to half the run,
where the judging window always ends — after that its readings could only show a late symptom,
which the end state's reading shows too. Its probes cost several training steps each (an
eigendecomposition per row), so on a short run they are most of the instruments' cost.
"""
from __future__ import annotations

from dataclasses import dataclass, field

TIERS = ("step", "fixed", "eval", "hessian")

# Which tier measures what: per-row keys and snapshot fields (recorded in records.json as `tiers`).
MEASURES: dict[str, tuple[str, ...]] = {
    "step": ("q", "p", "finite", "dead", "sat", "mean_share", "g_norm", "update_ratio", "w_norm",
             "input_q", "input_p", "grad_norm"),
    "fixed": ("erank", "cond", "s_max", "s_min", "probe_loss", "noise_scale",
              "dead (at a row where the training batch holds fewer than 256 samples·positions)"),
    "eval": ("train_loss", "train_accuracy", "val_loss", "val_accuracy"),
    "hessian": ("hessian", "hessian_products", "preconditioned", "preconditioned_products"),
}

FIXED_LOG_START = 2       # the fixed tier's first step after 0: 2 × probe.every (dense early, where
                          # the trainability aberrations are judged: docs/judging.md) ...
FIXED_LOG_RATIO = 4       # ... then 8 ×, 32 ×, … up to half the run (the judging window's limit)
EVAL_LOG_START = 16       # the evaluation passes' first step after 0: 16 × probe.every
HESSIAN_LOG_START = 16    # the Hessian's too (an estimate costs ~10–40 training steps)


def probe_grid(steps: int, every: int) -> set[int]:
    """Step 0, every `every` steps, and the last state."""
    return set(range(0, steps, every)) | {steps}


def cadence_steps(cadence: int | str, steps: int, every: int, start: int = 1, ratio: int = 2,
                  until: float = 1.0) -> set[int]:
    """The steps a cadence reads at: `every` (the probe grid), `log` (0, start·every·ratio^k up
    to `until`·steps, the end) or an int N (multiples of N, and the end)."""
    if cadence == "every":
        return probe_grid(steps, every)
    if cadence == "log":
        out, k = {0, steps}, max(1, start * every)
        while k < steps and k <= until * steps:
            out.add(k)
            k *= ratio
        return out
    n = int(cadence)
    return set(range(0, steps, n)) | {steps}


@dataclass
class Schedule:
    steps: int
    every: int
    fixed: set[int] = field(default_factory=set)
    eval: set[int] = field(default_factory=set)
    hessian: set[int] = field(default_factory=set)

    @classmethod
    def of(cls, probe, steps: int, adaptive: bool = False) -> "Schedule":
        """From a `probe:` section (netlens.prescription.sections.ProbeSpec). For an adaptive
        optimizer (`adaptive`) the Hessian tier skips step 0: the preconditioner of Adam's first
        update is one gradient's square (v̂₁ = g₁²), so coordinates whose first gradient is ~0
        get P ≈ ε and λ₁(P⁻¹H) reads ~10⁷ — a sign step, not the quadratic model's."""
        hess = probe.hessian_spec()
        h = set()
        if hess is not None:
            h = cadence_steps(hess.every or "log", steps, probe.every,
                              start=HESSIAN_LOG_START if hess.every in (None, "log") else 1)
            if adaptive and steps > 0:
                h.discard(0)
        fixed = cadence_steps(probe.fixed, steps, probe.every, FIXED_LOG_START, FIXED_LOG_RATIO, until=0.5)
        return cls(steps, probe.every, fixed,
                   cadence_steps(probe.eval, steps, probe.every, EVAL_LOG_START), h)

    @property
    def probes(self) -> set[int]:
        """Every step some tier reads at (the step tier reads at all of them)."""
        return probe_grid(self.steps, self.every) | self.fixed | self.eval | self.hessian

    def tiers(self, step: int, final: bool = False) -> set[str]:
        """The tiers that read at `step`; the last state (`final`, also after a divergence or an
        interrupt) gets all of them (the Hessian when it is on, and not at step 0 when it skips
        step 0)."""
        out = {"step"} | {name for name in ("fixed", "eval", "hessian") if step in getattr(self, name)}
        if final:
            out |= {"fixed", "eval"}
            if self.hessian and (step > 0 or 0 in self.hessian):
                out.add("hessian")
        return out

    def to_dict(self) -> dict[str, list[int]]:
        return {"step": sorted(self.probes), "fixed": sorted(self.fixed), "eval": sorted(self.eval),
                "hessian": sorted(self.hessian)}
