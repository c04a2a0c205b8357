"""The study: what every process of one optimization agrees on, and Optuna's pieces for it.

`Plan.build` reads the design and the settings once and checks everything that can be checked
without training (exit 2 on a mistake): the variables, the merit's operands against the task,
the constraints, the shapes of the starting design. The first process to create the study in
the storage records the search space and the merit there and enqueues the prescription as
written as trial "start"; a later run (or another machine) finds the study and refuses to join
it with a different space or merit, since their trials would not be comparable.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from netlens.errors import DesignError
from netlens.optimize.merit import Constraint, Merit
from netlens.optimize.settings import Settings
from netlens.optimize.space import Space
from netlens.optimize.storage import Place, default_url, place

#: Trial states that count toward the requested number. Not WAITING (the enqueued start): a
#: worker runs it as its next trial, so counting it too left `--trials 1` with nothing to run.
COUNTED = ("COMPLETE", "PRUNED", "RUNNING")


@dataclass
class Plan:
    path: Path
    design: object
    task: str
    space: Space
    merits: list[Merit]
    constraints: list[Constraint]
    settings: Settings
    place: Place
    study: str

    @classmethod
    def build(cls, path: str | Path, settings: Settings) -> "Plan":
        from netlens.data import describe
        from netlens.paraxial.trace import trace
        from netlens.prescription import load_design
        from netlens.train.outputs import loss_outputs

        path = Path(path)
        design = load_design(path, overrides=settings.overrides())
        space = Space.of(design)
        with design.blame():
            info = describe(design.data, design.base_dir)
            trace(design, info, loss_outputs(design.train, info))     # shapes of the start
            merits = settings.merits(info.task)
            constraints = settings.parsed_constraints(info.task)
        if settings.multi and settings.pruner != "none" and "pruner" in settings.flagged:
            raise DesignError("Optuna prunes single-objective studies only", path="--pruner",
                              suggestion="Drop --pruner, or optimize one merit.")
        return cls(path, design, info.task, space, merits, constraints, settings,
                   place(settings.storage or default_url(design)), settings.study or design.name)

    @property
    def overrides(self) -> dict:
        """What every trial changes in the design: the flags' steps and seed, and the Hessian
        probe off unless an operand reads it (SHRP) — instruments observe only, so this changes
        no result, only the time a trial takes."""
        out = self.settings.overrides()
        used = {op.name for m in self.merits for op in m.operands} | {c.operand.name for c in self.constraints}
        if "SHRP" not in used:
            out["probe.hessian"] = False
        if self.settings.pruner != "none" and len(self.merits) == 1:
            # the pruner compares intermediate validation losses: evaluate at every probe
            out["probe.eval"] = "every"
        return out

    @property
    def directions(self) -> list[str]:
        return ["minimize"] * len(self.merits)

    def signature(self) -> dict:
        return {"space": self.space.signature(), "objectives": [m.text for m in self.merits]}

    # -- Optuna's strategies, by name ------------------------------------------------------------
    def sampler(self, seed: int):
        import optuna

        if self.settings.sampler == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        startup = max(4, min(10, self.settings.trials // 4))
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup, constant_liar=True)

    def pruner(self):
        import optuna

        if self.settings.pruner == "none" or len(self.merits) > 1:
            return optuna.pruners.NopPruner()
        every, steps = self.design.probe.every, self.design.train.steps
        if self.settings.pruner == "hyperband":
            return optuna.pruners.HyperbandPruner(min_resource=every, max_resource=steps,
                                                  reduction_factor=3)
        # Optuna's defaults, except that no trial is judged on its first tenth of training, where
        # the validation loss says more about the initialization than about the cell values
        # (benchmarks/optimize_pruning.py measured 4 – 20% warm-up: savings vs. best merit).
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=steps // 10)

    def seed(self, worker: int, existing: int) -> int:
        """The sampler's seed: fixed by the design's seed for a study in a SQLite file, so a run
        repeats; different per worker and per resume, so no two draw the same random start-up
        points; and on a database server, which other machines share, different per process."""
        import os
        import socket

        parts = [self.design.seed, worker, existing]
        if self.place.backend != "sqlite":
            parts += [os.getpid(), int.from_bytes(socket.gethostname().encode()[:8].ljust(8, b"\0"), "big")]
        return int(np.random.SeedSequence(parts).generate_state(1)[0])


def open_study(plan: Plan, storage):
    """Create the study (recording its signature) or join it."""
    import optuna
    from optuna.exceptions import DuplicatedStudyError

    try:
        study = optuna.create_study(storage=storage, study_name=plan.study,
                                    directions=plan.directions, load_if_exists=False)
    except DuplicatedStudyError:
        study = optuna.load_study(study_name=plan.study, storage=storage)
        _check_compatible(plan, study)
        return study
    study.set_user_attr("netlens", plan.signature())
    study.set_user_attr("design", str(plan.path))
    return study


def _check_compatible(plan: Plan, study) -> None:
    there = study.user_attrs.get("netlens")
    if len(study.directions) != len(plan.merits):
        there = there or {"objectives": [f"{len(study.directions)} objectives"]}
    if there is None:            # created this instant by another process: nothing to compare yet
        return
    mine = plan.signature()
    for key, what in (("space", "search space"), ("objectives", "merit")):
        if there.get(key) != mine[key]:
            raise DesignError(
                f"the study `{plan.study}` in {plan.place.shown} was made with a different {what}: "
                f"{_show(there.get(key))}; this design has {_show(mine[key])}",
                suggestion=f"Pass --study NEW_NAME to start a new study, or restore the {what}.")


def _show(x) -> str:
    if isinstance(x, dict):
        return "; ".join(f"{k} {v}" for k, v in x.items())
    return " | ".join(map(str, x)) if isinstance(x, list) else str(x)


def ensure_start(plan: Plan, study) -> None:
    """Enqueue the prescription as written unless the study already has (or awaits) it. Called
    under the claim lock, so processes starting together enqueue it once."""
    from optuna.trial import TrialState

    for t in study.get_trials(deepcopy=False):
        if not t.user_attrs.get("start"):
            continue
        # run again only a start that never ended: interrupted, or its process lost (a stale
        # heartbeat); one that failed on its own (diverged) would fail again
        if t.state != TrialState.FAIL or t.user_attrs.get("failed_reason") not in (None, "interrupted"):
            return
    study.enqueue_trial(plan.space.start(), user_attrs={"start": True}, skip_if_exists=False)


def counted(study) -> int:
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=tuple(TrialState[s] for s in COUNTED)))
