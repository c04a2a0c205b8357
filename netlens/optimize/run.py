"""`optimize()`: the whole command as one function a notebook can call.

    from netlens.optimize import optimize, Settings
    result = optimize("designs/quickstart.yaml", Settings(trials=30, workers=2))
    result.doc["best"]

Steps: plan (validate, exit 2 on a mistake) → open the storage and the study → enqueue the
prescription as written → run the workers → summarize the study from the storage → write the
best prescription, the trials table and the plots.
"""
from __future__ import annotations

import os
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from netlens.errors import RunError
from netlens.optimize.settings import Settings

RUNS = Path("runs")


@dataclass
class Result:
    doc: dict
    interrupted: bool = False
    errors: list[str] = field(default_factory=list)      # workers that stopped on an error


def optimize(path: str | Path, settings: Settings, out: Path | None = None,
             on_progress: Callable[[dict], None] | None = None, write: bool = True,
             force: bool = False) -> Result:
    """Run the study to `settings.trials` trials and summarize it. `on_progress(counts)` is called
    about once a second from a watcher thread with the study's counts (for a live display).
    `out`, if given, must be empty or hold only this study's own files, unless `force`."""
    from sqlalchemy.exc import SQLAlchemyError

    try:
        return _optimize(path, settings, out, on_progress, write, force)
    except SQLAlchemyError as e:
        raise RunError(f"the study's storage failed: {e.__class__.__name__}: "
                       f"{str(e).splitlines()[0]}") from None


PLOTS = ("history.png", "slices.png", "pareto.png", "importances.png")


def _targets(plan, out: Path | None) -> tuple[Path, Path]:
    """(folder of NAME.best.yaml, folder of the plots and trials.csv)."""
    if out is not None:
        return Path(out), Path(out)
    return plan.path.parent, RUNS / f"{plan.study}-optimize"


def _own_files(plan) -> set[str]:
    """Names this study's command writes or keeps in its folders (a re-run resumes into them)."""
    names = {f"{plan.design.name}.best.yaml", "trials.csv", "study.json", "report.html", *PLOTS, plan.path.name}
    if plan.place.file is not None:
        db = plan.place.file.name
        names |= {db + side for side in _SIDE}
    return names


_SIDE = ("", "-wal", "-shm", "-journal", "-claim")


def _ours(name: str, own: set[str]) -> bool:
    """A file netlens optimize writes or reads in a folder: this study's, a study database
    (`--storage sqlite:///…`) or best prescription, or a hidden temporary file."""
    return (name in own or name.startswith(".") or name.endswith(".best.yaml")
            or any(name.endswith(ext + side) for ext in (".optuna.db", ".db") for side in _SIDE))


def check_targets(plan, out: Path | None, force: bool) -> None:
    """Before any trial: `--out` is a folder holding nothing but this study's files (else
    --force), and every folder the command writes into is writable."""
    from netlens.errors import DesignError
    from netlens.runs import check_writable

    best_dir, plots_dir = _targets(plan, out)
    if out is not None:
        out = Path(out)
        if out.exists() and not out.is_dir():
            raise DesignError(f"--out `{out}` is a file, not a folder", path="--out",
                              suggestion="Choose a folder name for the study's files.")
        if out.is_dir() and not force:
            own = _own_files(plan)
            other = sorted(p.name for p in out.iterdir() if not _ours(p.name, own))
            if other:
                raise DesignError(
                    f"the folder `{out}` already holds other files ({', '.join(other[:5])}"
                    + (" …" if len(other) > 5 else "") + ")", path="--out",
                    suggestion="Pass --force to write into it anyway (only this study's files are "
                               "replaced), or choose another --out.")
    for folder, what in ((best_dir, "the folder of the best prescription"),
                         (plots_dir, "the folder of the plots")):
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise DesignError(f"cannot create {what} `{folder}`: {e.strerror or e}", path="--out",
                              suggestion="Choose a writable folder with --out.") from None
        check_writable(folder, what)


def _optimize(path, settings: Settings, out, on_progress, write: bool, force: bool = False) -> Result:
    import optuna

    from netlens.optimize import summary
    from netlens.optimize.storage import claim, fail_stale, open_storage
    from netlens.optimize.study import Plan, counted, ensure_start, open_study
    from netlens.optimize.workers import Job, Report, collect, cpu_threads, interrupt, spawn, work
    from netlens.report.files import write_text

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    plan = Plan.build(path, settings)
    if write:
        check_targets(plan, out, force)
    storage = open_storage(plan.place)
    study = open_study(plan, storage)
    with claim(plan.place, plan.study):
        fail_stale(study)          # a killed worker's trial must not count toward --trials
        ensure_start(plan, study)
        room = max(0, settings.trials - counted(study))
    n = min(settings.workers, room)
    threads = max(1, cpu_threads() // max(1, settings.workers))
    deadline = time.time() + settings.timeout if settings.timeout else None
    jobs = [Job(str(plan.path), settings.to_json(), i, threads, deadline) for i in range(n)]

    t0 = time.time()
    watcher = (StudyWatcher(plan, lambda study: _counts(plan, study), on_progress)
               if on_progress is not None else None)
    children, reports, interrupted = [], [], False
    if watcher:
        watcher.start()
    try:
        children = [spawn(Job(**{**asdict(j), "parent": os.getpid()})) for j in jobs[1:]]
        own = Report(0)
        if jobs:
            try:
                work(jobs[0], own)
            finally:
                reports.append(own)
        reports += [collect(c, j.worker) for c, j in zip(children, jobs[1:])]
    except KeyboardInterrupt:
        interrupted = True
        interrupt(children)
        done = {r.worker for r in reports}
        reports += [collect(c, j.worker) for c, j in zip(children, jobs[1:]) if j.worker not in done]
    except BaseException:
        interrupt(children)
        raise
    finally:
        if watcher:
            watcher.stop()
    interrupted = interrupted or any(r.interrupted for r in reports)
    errors = [r.error for r in reports if r.error]

    this_run = {"workers": n, "threads_per_worker": threads, "seconds": round(time.time() - t0, 3),
                "trials": sorted(x for r in reports for x in r.trials),
                "by_worker": {str(r.worker): r.trials for r in reports},
                "interrupted": interrupted, "errors": errors}
    doc = summary.summarize(plan, study, this_run)
    if write:
        out_dir, plots_dir = _targets(plan, out)
        text = summary.best_design_text(plan, study, doc, out_dir)
        if text is not None:
            best = out_dir / f"{plan.design.name}.best.yaml"
            write_text(best, text)
            doc["best_design"] = str(best)
        from netlens.optimize import plots

        doc["plots"] = [str(p) for p in plots.draw(plan, study, doc, plots_dir)]
        if doc["trials"]["complete"] + doc["trials"]["pruned"] + doc["trials"]["failed"]:
            write_text(plots_dir / "trials.csv", summary.trials_csv(plan, study))
            doc["trials_csv"] = str(plots_dir / "trials.csv")
        from netlens.report.files import write_json

        write_json(plots_dir / "study.json", doc)        # what `netlens report STUDY` reads
    return Result(doc, interrupted, errors)


class StudyWatcher:
    """Polls a study once a second from its own storage connection, on a daemon thread, and hands
    `progress(study)` (a dict) to `callback`: the live display of `optimize` and `tolerance`. A
    display only: a storage error here is skipped, the workers report real ones."""

    def __init__(self, plan, progress: Callable[[Any], dict], callback: Callable[[dict], None],
                 name: str = "netlens-watcher"):
        self.plan, self.progress, self.callback = plan, progress, callback
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=name)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        import optuna

        from netlens.optimize.storage import open_storage

        try:
            study = optuna.load_study(study_name=self.plan.study, storage=open_storage(self.plan.place))
        except Exception:
            return
        while not self._stop.is_set():
            try:
                shown = self.progress(study)
            except Exception:
                shown = None
            if shown is not None:
                self.callback(shown)
            self._stop.wait(1.0)


def _counts(plan, study) -> dict:
    """The optimize display's counts: done, pruned, failed, running and the best so far."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    single = len(plan.merits) == 1
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    feasible = [t for t in done if all(v <= 0 for v in t.constraints.values())]
    best = min(feasible, key=lambda t: t.value) if single and feasible else None
    return {
        "done": sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials),
        "requested": plan.settings.trials,
        "pruned": sum(t.state == TrialState.PRUNED for t in trials),
        "failed": sum(t.state == TrialState.FAIL for t in trials),
        "running": sum(t.state == TrialState.RUNNING for t in trials),
        "best": None if best is None else best.value,
        "best_trial": None if best is None else best.number,
        "front": len(study.best_trials) if not single else None,
    }
