"""Where tolerance runs go: one Optuna study per design, one trial per training run.

This is optimize's engine, not a second one: the same storage (`netlens.optimize.storage` — a
SQLite file `NAME.optuna.db` beside the design by default, or any Optuna storage URL, so several
machines share one study), the same claim lock, heartbeats and stale-trial failing, and the same
worker processes (`netlens.optimize.workers`, `Job(kind="tolerance")`). What differs is where a
trial's parameters come from: instead of a sampler, every run a part needs is *enqueued* as a
waiting trial whose user attributes hold the run (`RunSpec`: operand values, seeds, twin), and
workers take waiting trials until none is left. A finished run stays in the study, so

  - a re-run enqueues only the runs the study does not hold (an interrupted run resumes with only
    the missing runs; a larger `--seeds` adds only the new seeds), and
  - the same run asked for twice (the noise floor's seed k, a compare of the same design) is
    trained once.

An interrupted trial is failed with the reason `interrupted` (or by the heartbeat when its process
was killed) and enqueued again next time; a run that failed for a reason of its own is not.
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from netlens.errors import NetlensError, RunError
from netlens.optimize.run import StudyWatcher
from netlens.tolerance.runs import RunSpec, execute, to_attr

RERUN = (None, "interrupted")      # failed_reason of a trial that is enqueued again


def _states():
    from optuna.trial import TrialState

    return TrialState


def open_study(plan, storage):
    import optuna

    study = optuna.create_study(storage=storage, study_name=plan.study, direction="minimize",
                                load_if_exists=True)
    if "design" not in study.user_attrs:
        study.set_user_attr("design", str(plan.path))
        study.set_user_attr("netlens", {"tolerance": 1, "merit": plan.merit.text})
    return study


def by_key(study) -> dict[str, list]:
    out: dict[str, list] = {}
    for t in study.get_trials(deepcopy=False):
        k = t.user_attrs.get("key")
        if k is not None:
            out.setdefault(k, []).append(t)
    return out


def _settled(trials: list) -> Any:
    """The trial that answers a run: a complete one, else one running or waiting, else one that
    failed for a reason of its own; None when the run must be (re)queued."""
    S = _states()
    for wanted in ((S.COMPLETE,), (S.RUNNING, S.WAITING)):
        for t in trials:
            if t.state in wanted:
                return t
    for t in trials:
        if t.state == S.FAIL and t.user_attrs.get("failed_reason") not in RERUN:
            return t
    return None


def enqueue_missing(study, specs: list[RunSpec]) -> int:
    """Enqueue the runs the study does not hold; returns how many. Call under the claim lock."""
    have = by_key(study)
    n = 0
    seen = set()
    for spec in specs:
        if spec.key in seen:
            continue
        seen.add(spec.key)
        if _settled(have.get(spec.key, [])) is None:
            study.enqueue_trial({}, user_attrs={"key": spec.key, "run": spec.to_json()},
                                skip_if_exists=False)
            n += 1
    return n


def results(study, specs: list[RunSpec]) -> dict[str, dict | None]:
    """Each run's stored result; `{"failed": reason}` for a run that failed; None if not done."""
    S = _states()
    have = by_key(study)
    out: dict[str, dict | None] = {}
    for spec in specs:
        t = _settled(have.get(spec.key, []))
        if t is None or t.state in (S.RUNNING, S.WAITING):
            out[spec.key] = None
        elif t.state == S.COMPLETE:
            out[spec.key] = t.user_attrs.get("result")
        else:
            out[spec.key] = {"failed": t.user_attrs.get("failed_reason") or "failed"}
    return out


# -- one trial ------------------------------------------------------------------------------------
@dataclass
class Objective:
    plan: Any
    ran: list[int] = field(default_factory=list)
    on_start: Callable[[], None] | None = None

    def __call__(self, trial) -> float:
        import socket

        self.ran.append(trial.number)       # before the claim is released (fail_in_flight)
        if self.on_start is not None:
            self.on_start()
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        spec = RunSpec.from_json(trial.user_attrs["run"])
        try:
            result = execute(self.plan, spec)
        except NetlensError as e:
            trial.set_user_attr("failed_reason", str(e))
            raise
        except KeyboardInterrupt:
            trial.set_user_attr("failed_reason", "interrupted")
            raise
        except Exception as e:
            trial.set_user_attr("failed_reason", f"{e.__class__.__name__}: {e}")
            raise
        trial.set_user_attr("result", to_attr(result))
        merit = result.get("merit")
        return float(merit) if merit is not None and math.isfinite(merit) else math.inf


# -- a worker ---------------------------------------------------------------------------------------
def work(job, report=None):
    """Take waiting trials of the tolerance study until none is left (optimize's worker, with
    enqueued runs instead of sampled ones)."""
    from netlens.optimize.workers import serve

    return serve(job, _tolerance_session, report, noun="runs")


def _tolerance_session(job, report, state):
    import optuna

    from netlens.optimize.storage import open_storage
    from netlens.optimize.workers import Session
    from netlens.tolerance.plan import Plan
    from netlens.tolerance.settings import Settings

    S = _states()
    plan = Plan.build(job.design, Settings.from_json(job.settings))
    storage = state["storage"] = open_storage(plan.place)
    study = optuna.load_study(study_name=plan.study, storage=storage)
    return Session(study, plan, Objective(plan, ran=report.trials),
                   full=lambda s: not s.get_trials(deepcopy=False, states=(S.WAITING,)))


# -- the runs of one part, on N workers ----------------------------------------------------------
@dataclass
class Batch:
    """What one `ensure` did."""

    trained: list[int] = field(default_factory=list)     # trial numbers this process's workers ran
    seconds: float = 0.0
    workers: int = 0
    errors: list[str] = field(default_factory=list)


class Engine:
    def __init__(self, plan, on_progress: Callable[[dict], None] | None = None):
        import optuna

        from netlens.optimize.storage import open_storage

        optuna.logging.set_verbosity(optuna.logging.ERROR)
        self.plan = plan
        self.storage = open_storage(plan.place)
        self.study = open_study(plan, self.storage)
        self.on_progress = on_progress
        self.log: list[Batch] = []
        self.seen: dict[str, dict | None] = {}       # every run asked for, by key

    def ensure(self, specs: list[RunSpec], label: str = "runs") -> dict[str, dict | None]:
        """Every run in `specs` trained (here, by workers, or already in the study); returns
        their results by key. Raises KeyboardInterrupt after the workers have recorded theirs."""
        from netlens.optimize.storage import claim, fail_stale

        S = _states()
        plan = self.plan
        batch = Batch()
        t0 = time.time()
        self.log.append(batch)
        while True:
            with claim(plan.place, plan.study):
                fail_stale(self.study)
                enqueue_missing(self.study, specs)
                waiting = len(self.study.get_trials(deepcopy=False, states=(S.WAITING,)))
            if waiting:
                self._run_workers(min(plan.settings.workers, waiting), batch, specs, label)
            done = results(self.study, specs)
            if all(v is not None for v in done.values()):
                break
            if batch.errors:
                raise RunError("a worker stopped: " + batch.errors[0])
            time.sleep(2.0)          # runs still running on another machine
        batch.seconds = round(time.time() - t0, 3)
        self.seen.update(done)
        return done

    def _run_workers(self, n: int, batch: Batch, specs: list[RunSpec], label: str) -> None:
        from netlens.optimize.workers import (Job, Report, collect, cpu_threads, interrupt, spawn)

        settings = self.plan.settings
        threads = max(1, cpu_threads() // max(1, settings.workers))
        jobs = [Job(str(self.plan.path), settings.to_json(), i, threads, None, kind="tolerance")
                for i in range(n)]
        watcher = (StudyWatcher(self.plan, _done_of(specs, label), self.on_progress,
                                name="netlens-tolerance-watcher") if self.on_progress else None)
        if watcher:
            watcher.start()
        children, reports = [], []
        try:
            children = [spawn(Job(**{**asdict(j), "parent": os.getpid()})) for j in jobs[1:]]
            own = Report(0)
            try:
                work(jobs[0], own)
            finally:
                reports.append(own)
            reports += [collect(c, j.worker) for c, j in zip(children, jobs[1:])]
        except KeyboardInterrupt:
            interrupt(children)
            for c, j in zip(children, jobs[1:]):
                collect(c, j.worker)
            raise
        except BaseException:
            interrupt(children)
            raise
        finally:
            if watcher:
                watcher.stop()
        batch.workers = max(batch.workers, n)
        batch.trained += sorted(x for r in reports for x in r.trials)
        batch.errors += [r.error for r in reports if r.error]
        if any(r.interrupted for r in reports):
            raise KeyboardInterrupt


def _done_of(specs: list[RunSpec], label: str) -> Callable[[Any], dict]:
    """The tolerance display's counts for one part: how many of its runs are done (by key)."""
    keys = {s.key for s in specs}

    def progress(study) -> dict:
        S = _states()
        have = by_key(study)
        ts = [_settled(have.get(k, [])) for k in keys]
        return {"label": label, "requested": len(keys),
                "done": sum(t is not None and t.state in (S.COMPLETE, S.FAIL) for t in ts),
                "failed": sum(t is not None and t.state == S.FAIL for t in ts),
                "running": sum(t is not None and t.state == S.RUNNING for t in ts)}
    return progress
