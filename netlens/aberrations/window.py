"""When each aberration is judged: the judging window, and a late symptom weighed against the outcome.

The trainability aberrations — GAIN FLOW DEAD SATR RANK COND MEAN STEP — ask whether a network
*can* learn. A defect there costs training time from the first step, so they are judged at
initialization and over the early and middle part of the run:

    judging window   the probes from step 0 up to S = min(T/2, the step before the first probe
                     where the training loss has fallen to `FIT_LOSS` of its initial value),
                     T the judged step (`--at`, default the end)

Once the loss has fallen that far the network has shown that it can learn, which is what these
aberrations are about; half the run is the limit for a network that never shows it.

What they show after S is weighed against the run's outcome at T. A network that has fitted
its training set — training loss at most `FIT_LOSS` of its initial value and, for a
classifier, training accuracy at least `FIT_ACCURACY` — has shown that the symptom did not stop
it: a late symptom is reported as info ("present, did not stop training"), never as a warning.
A healthy network that converges grows its weights, sharpens its logits, saturates its tanh
units into switches and lets its update ratio fall in the schedule's tail; none of that calls
for a correction. In a network that did not fit, a late symptom keeps its severity: it may be
why (a relu stack that dies at step 350 and falls back to chance).

The outcome aberrations (DIVG INIT STAL GAP) and the curvature and noise readings (SHRP NOIS)
keep their own rules, stated in their modules. Each quantity is judged at the probes that
recorded it: a value missing at a probe is simply not judged there.
"""
from __future__ import annotations

from dataclasses import dataclass

from netlens.aberrations.base import finite, training_loss
from netlens.aberrations.thresholds import FIT_ACCURACY, FIT_LOSS
from netlens.instruments.records import RunRecords, Snapshot

TRAINABILITY = ("GAIN", "FLOW", "DEAD", "SATR", "RANK", "COND", "MEAN", "STEP")
RULE = ("judged at initialization and over the early and middle part of the run (steps 0 to "
        f"min(T/2, the step where the training loss first fell to {FIT_LOSS:g}× its initial "
        "value), T the judged step); a symptom that appears later is info when the network fitted its training set (train loss ≤ "
        f"{FIT_LOSS:g}× its initial value, training accuracy ≥ {FIT_ACCURACY:g} for a classifier), "
        "and keeps its severity when it did not")


@dataclass
class Window:
    """The judging window of a run judged at step `until`."""

    end: int                         # S: the last step of the judging window
    until: int                       # T: the judged step
    fitted: bool                     # the outcome at T
    learned_at: int | None           # the first probe where the loss had fallen to FIT_LOSS
    outcome: str                     # "train loss 2.35 → 0.0154, train accuracy 1.000"

    def covers(self, step: int) -> bool:
        return step <= self.end

    @property
    def span(self) -> str:
        return f"steps 0–{self.end}" if self.end > 0 else "step 0"

    def note(self) -> str:
        head = (f"GAIN FLOW DEAD SATR RANK COND MEAN STEP are judged over {self.span} (initialization, "
                f"early and middle training)")
        if self.end >= self.until:
            return head + "."
        if self.fitted:
            return (head + f"; the network fitted its training set ({self.outcome}), so what "
                    f"appears after step {self.end} is info: present, did not stop training.")
        return (head + f"; the network did not fit its training set ({self.outcome}), so what "
                f"appears after step {self.end} keeps its severity.")


def loss_near(rec: RunRecords, snap: Snapshot) -> float | None:
    """The training loss at a probe: measured on the probe batch when the probe's tiers read it,
    otherwise the mean of the training batches' own losses over the `probe_every` steps up to
    it (recorded every step at no cost). The evaluation tiers are log-spaced, so between them the
    batch losses are what places the judging window's end to within one probe interval."""
    measured = training_loss(snap)
    if finite(measured):
        return measured
    lo = max(0, snap.step - max(1, rec.probe_every) + 1)
    curve = [v for v in rec.loss_curve[lo: snap.step + 1] if finite(v)]
    return sum(curve) / len(curve) if curve else None


def learned(rec: RunRecords, snap: Snapshot, first: float | None) -> bool | None:
    """Whether the training loss had fallen to `FIT_LOSS` of its initial value at this probe."""
    now = loss_near(rec, snap)
    if not (finite(first) and first > 0 and finite(now)):
        return None
    return now <= FIT_LOSS * first


def fitted(rec: RunRecords, snap: Snapshot, first: float | None) -> bool | None:
    """Whether the network had fitted its training set at this probe: the loss far below its
    initial value and, for a classifier, nearly every training sample right; None when the
    probe did not record what it takes to say."""
    low = learned(rec, snap, first)
    if not low:
        return low
    if rec.task != "classification":
        return True
    if not finite(snap.train_accuracy):
        return None
    return snap.train_accuracy >= FIT_ACCURACY


def window(rec: RunRecords, snaps: list[Snapshot], until: int, diverged: bool = False) -> Window:
    """The window of a judgement at step `until` over the probes `snaps` (in step order, up to
    the last finite one). A run that diverged before `until` has not fitted, whatever it reached
    before."""
    first = training_loss(rec.snapshots[0]) if rec.snapshots else None
    learned_at = next((s.step for s in snaps if 0 < s.step <= until and learned(rec, s, first)), None)
    end = until // 2
    if learned_at is not None:
        end = min(end, learned_at - 1)
    known = [s for s in snaps if fitted(rec, s, first) is not None]
    last = known[-1] if known else (snaps[-1] if snaps else None)
    ok = bool(last is not None and fitted(rec, last, first)) and not diverged
    return Window(end, until, ok, learned_at, _outcome(rec, first, last))


def _outcome(rec: RunRecords, first: float | None, last: Snapshot | None) -> str:
    if last is None:
        return "no probe"
    now = training_loss(last)
    text = f"train loss {first:.4g} → {now:.4g} at step {last.step}" if finite(first) and finite(now) \
        else f"step {last.step}"
    if rec.task == "classification" and finite(last.train_accuracy):
        text += f", train accuracy {last.train_accuracy:.3f}"
    return text
