"""One trial: the variables Optuna suggests → a design → a simulation → its merit.

While the trial trains, each probe reports the validation loss to Optuna (so the median or
Hyperband pruner can stop it) and is checked for aberrations (a trial that diverges, or shows an
error-level FLOW finding in the first quarter of its steps, is stopped). A stopped trial records
why (`pruned_by`, `pruned_reason`) and how many steps it trained (`steps`). The prescription as
written (the enqueued `start` trial) is never pruned: it is the reference the best is measured
against.
"""
from __future__ import annotations

import math
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from netlens.errors import NetlensError
from netlens.optimize import aberrations
from netlens.optimize.merit import Constraint, Merit
from netlens.optimize.operands import Measured
from netlens.optimize.space import Space

WHY = {"median": "above the median of earlier trials at that step",
       "hyperband": "outside the best third of its Hyperband bracket at that step"}
EARLY = 0.25               # aberration pruning looks at probes in the first quarter of the steps


class Stop(Exception):
    """Raised from a probe to end a trial early: `by` (median, hyperband, DIVG, FLOW, constraint)
    and a sentence of why."""

    def __init__(self, by: str, reason: str):
        super().__init__(reason)
        self.by, self.reason = by, reason


@dataclass
class Objective:
    path: Path
    space: Space
    merits: list[Merit]
    constraints: list[Constraint]
    overrides: dict[str, Any]
    pruner: str
    prune_aberrations: bool
    worker: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    on_start: Callable[[], None] | None = None          # called once the trial exists
    ran: list[int] = field(default_factory=list)

    def __call__(self, trial) -> float | list[float]:
        import optuna

        from netlens.prescription import load_design
        from netlens.simulate import simulate

        self.ran.append(trial.number)     # before the claim is released: see workers.fail_in_flight
        if self.on_start is not None:
            self.on_start()
        trial.set_user_attr("worker", self.worker)
        start = bool(trial.user_attrs.get("start"))
        steps = [0]
        try:
            values = self.space.suggest(trial)
            design = load_design(self.path, values=values, overrides=self.overrides)
            total = design.train.steps

            def on_probe(records) -> None:
                steps[0] = records.steps_done
                self._check(trial, design, records, total, prune=not start)

            run = simulate(design, on_probe=on_probe)
        except Stop as s:
            trial.set_user_attr("steps", steps[0])
            trial.set_user_attr("pruned_by", s.by)
            trial.set_user_attr("pruned_reason", s.reason)
            raise optuna.TrialPruned(s.reason) from None
        except NetlensError as e:
            trial.set_user_attr("failed_reason", str(e))
            raise
        except Exception as e:
            trial.set_user_attr("failed_reason", f"{e.__class__.__name__}: {e}")
            raise
        except KeyboardInterrupt:
            trial.set_user_attr("failed_reason", "interrupted")
            raise
        rec = run.records
        trial.set_user_attr("steps", rec.steps_done)
        trial.set_user_attr("seconds", round(rec.seconds, 4))
        if rec.interrupted:
            trial.set_user_attr("failed_reason", "interrupted")
            raise KeyboardInterrupt
        m = Measured(design, rec, run.trace.params, run.trace)
        if not start and self.prune_aberrations:
            found = aberrations.prune_reason(rec, design, early=False)
            if found is not None:      # diverged on the last stretch, after the last probe
                self._constrain(trial, m)
                trial.set_user_attr("pruned_by", found.code)
                trial.set_user_attr("pruned_reason", found.message)
                raise optuna.TrialPruned(found.message)
        results = [merit.evaluate(m) for merit in self.merits]
        trial.set_user_attr("operands", _finite({k: v for _, _, raw in results for k, v in raw.items()}))
        trial.set_user_attr("contributions", [_finite(parts) for _, parts, _ in results])
        self._constrain(trial, m)
        merit = [value for value, _, _ in results]
        if not all(math.isfinite(v) for v in merit):
            reason = "the merit is not finite" + (" (the run diverged)" if rec.divergence else "")
            trial.set_user_attr("failed_reason", reason)
            raise ValueError(reason)
        return merit[0] if len(merit) == 1 else merit

    # -- at each probe --------------------------------------------------------------------------
    def _check(self, trial, design, records, total: int, prune: bool = True) -> None:
        """Report the validation loss; unless `prune` is off (the start), stop the trial on an
        infeasible static constraint, an aberration, or the pruner's word."""
        step = records.steps_done
        if not prune:
            if len(self.merits) == 1 and step > 0:
                self._report(trial, records, step)
            return
        if step == 0 and self.constraints:
            m = Measured(design, records, sum(r.params for r in records.rows))
            for c in self.constraints:
                if c.operand.static and c.violation(c.operand(m)) > 0:
                    self._constrain(trial, m)
                    raise Stop("constraint", f"{c.operand.name} = {c.operand(m):g} violates "
                                             f"`{c.text}`; not trained")
        if self.prune_aberrations:
            found = aberrations.prune_reason(records, design, early=step <= EARLY * total)
            if found is not None:
                self._constrain(trial, Measured(design, records, sum(r.params for r in records.rows)))
                raise Stop(found.code, found.message)
        if len(self.merits) > 1 or step == 0 or not self._report(trial, records, step):
            return              # Optuna prunes single-objective studies only
        if self.pruner != "none" and step < total and trial.should_prune():
            val = records.at("end").val_loss
            self._constrain(trial, Measured(design, records, sum(r.params for r in records.rows)))
            raise Stop(self.pruner, f"validation loss {val:.4g} at step {step} is {WHY[self.pruner]}")

    @staticmethod
    def _report(trial, records, step: int) -> bool:
        val = records.at("end").val_loss
        if val is None or not math.isfinite(val):
            return False
        trial.report(float(val), step)
        return True

    def _constrain(self, trial, m: Measured) -> None:
        """Constraint values through Optuna's constraint API (≤ 0 feasible); for a trial stopped
        early, from what it measured so far."""
        for c in self.constraints:
            v = c.violation(c.operand(m))
            trial.set_constraint(c.text, v if math.isfinite(v) else 1e300)


def _finite(d: dict[str, float]) -> dict[str, float | None]:
    return {k: (float(v) if v is not None and math.isfinite(v) else None) for k, v in d.items()}
