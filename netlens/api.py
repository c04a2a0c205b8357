"""The Python API the CLI is a shell over; a notebook can call the same functions.

    from netlens.api import run_simulation
    run, doc, run_dir = run_simulation("designs/quickstart.yaml")
"""
from __future__ import annotations

import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from netlens.prescription import load_design
from netlens.runs import pick_dir, release, simulate_document, write_run


def progress_bar(total: int, label: str):
    """A rich progress bar on a terminal's stderr (steps, loss, ETA); None in a pipe."""
    if not sys.stderr.isatty():
        return None
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeRemainingColumn)

    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("loss {task.fields[loss]}"), TimeRemainingColumn(),
                    console=Console(stderr=True), transient=True)


def run_simulation(path: str | Path, overrides: dict[str, Any] | None = None,
                   out: Path | None = None, force: bool = False, progress: bool = False,
                   values: dict[str, Any] | None = None):
    """Load, simulate and write a run folder. Returns (run, simulate document, run folder)."""
    design = load_design(path, values=values, overrides=overrides)
    run_dir = pick_dir(design.name, out, force, design.file)
    try:
        run = _simulate(design, progress)
    except BaseException:
        release(run_dir)           # claimed but empty: leave no trace of a run that never ran
        raise
    doc = simulate_document(run, run_dir)
    write_run(run, doc, run_dir)
    return run, doc, run_dir


def _simulate(design, progress: bool):
    from netlens.simulate import simulate

    bar = progress_bar(design.train.steps, design.name) if progress else None
    with bar if bar is not None else nullcontext():
        on_step = None
        if bar is not None:
            task = bar.add_task(design.name, total=design.train.steps, loss="—")

            def on_step(step: int, loss: float) -> None:
                if step % 5 == 0 or step == design.train.steps:
                    bar.update(task, completed=step, loss=f"{loss:.4g}")

        return simulate(design, on_step=on_step)


# --- the public API: `netlens.paraxial(...)`, `netlens.simulate(...)`, `netlens.diagnose(...)`,
# `netlens.optimize(...)`. Nothing is written unless `out=` is given.

from dataclasses import dataclass, field as _field


@dataclass
class ParaxialResult:
    """`netlens.paraxial(design)`: the closed-form trace at initialization.

    `doc` is the `netlens paraxial --json` document; `rows` its per-row entries (`q`, `gain_db`,
    `flow_db` per unit, `cum_gain_db`, `cum_flow_total_db` summed over units, …), `sum` the SUM
    row, `notes` the approximations used. `design` and `trace` are the objects behind them."""
    design: Any
    trace: Any
    doc: dict

    @property
    def rows(self) -> list[dict]:
        return self.doc["rows"]

    @property
    def sum(self) -> dict:
        return self.doc["sum"]

    @property
    def notes(self) -> list[str]:
        return self.doc["notes"]


@dataclass
class SimulateResult:
    """`netlens.simulate(design)`: an instrumented training run.

    `doc` is the `netlens simulate --json` document (`rows`, `sum`, `metrics`, `history`, …);
    `metrics` the final train/validation loss and accuracy; `records` every instrument at every
    probe step; `net` the trained torch module; `run_dir` the folder written (None without
    `out=`)."""
    design: Any
    trace: Any
    records: Any
    net: Any
    doc: dict
    run_dir: Path | None = None

    @property
    def metrics(self) -> dict:
        return self.doc["metrics"]


def _overrides(steps, seed, device) -> dict[str, Any]:
    return {k: v for k, v in (("train.steps", steps), ("seed", seed), ("train.device", device))
            if v is not None}


def paraxial(design, input_shape=None, **kw) -> ParaxialResult:
    """Trace `design` (a prescription file) in closed form: no data pass, no training, no torch.
    `design` may also be your own `torch.nn.Module` with its `input_shape` (e.g. `(1, 8, 8)`):
    its recognizable modules become rows (netlens.watch.paraxial_model)."""
    if hasattr(design, "named_modules"):
        from netlens.watch.paraxial import paraxial_model

        return paraxial_model(design, input_shape, **kw)
    from netlens.data import describe
    from netlens.paraxial.trace import trace
    from netlens.report.documents import paraxial_doc
    from netlens.train.outputs import loss_outputs

    d = load_design(design)
    with d.blame():
        info = describe(d.data, d.base_dir)
        tr = trace(d, info, loss_outputs(d.train, info))
        return ParaxialResult(d, tr, paraxial_doc(d, tr))


def simulate(design: str | Path, *, steps: int | None = None, seed: int | None = None,
             device: str | None = None, out: str | Path | None = None, force: bool = False,
             progress: bool = False) -> SimulateResult:
    """Train `design` with instruments on every row. Writes a run folder only when `out=` is
    given (as `netlens simulate --out`)."""
    from netlens.simulate import simulate as run

    d = load_design(design, overrides=_overrides(steps, seed, device))
    run_dir = pick_dir(d.name, Path(out), force, d.file) if out is not None else None
    try:
        r = run(d)
    except BaseException:
        if run_dir is not None:
            release(run_dir)     # claimed but empty: leave no trace of a run that never ran
        raise
    doc = simulate_document(r, run_dir)
    if run_dir is not None:
        write_run(r, doc, run_dir)
    return SimulateResult(r.design, r.trace, r.records, r.net, doc, run_dir)


def diagnose(target: str | Path, *, at: str | int = "end", thresholds: list[str] | None = None,
             steps: int | None = None, seed: int | None = None, device: str | None = None,
             out: str | Path | None = None, force: bool = False):
    """Judge `target`: a prescription (simulated first) or a run folder (read as it is, never
    retrained). Returns `netlens.diagnose.Result`: `.doc` (the `diagnose --json` document),
    `.diagnosis` (findings most severe first, `.reaches(level)`, `.score(code)`), `.records`,
    `.run_dir`. `thresholds` as on the command line (`["FLOW=15,30"]`). Files (diagnosis.json,
    aberrations.png and the run folder) are written only when `out=` is given."""
    from netlens.diagnose import diagnose as run

    return run(target, at=at, thresholds=thresholds, overrides=_overrides(steps, seed, device),
               out=Path(out) if out is not None else None, force=force, save=out is not None)


def optimize(design: str | Path, *, trials: int | None = None, out: str | Path | None = None,
             storage: str | None = None, **settings: Any):
    """Tune `design`'s variable cells with Optuna. Returns `netlens.optimize.Result`: `.doc` is
    the `optimize --json` document (`best` {`value`, `params`, `trial`}, `start`, `trials`,
    `importances`, `top`, …). Other settings as keywords: `workers`, `merit`, `objectives`,
    `constraints`, `pruner`, `prune_aberrations`, `sampler`, `timeout`, `steps`, `seed`, `study`.
    Without `out=` (and without `storage=`) the study lives in a temporary folder and nothing
    is written; with `out=` it is the command's `--out`: NAME.best.yaml, plots and trials.csv
    there, the study in the SQLite file beside the design."""
    import tempfile

    from netlens.optimize import optimize as run
    from netlens.optimize import settings_for

    d = load_design(design)
    if out is not None:
        return run(design, settings_for(d, trials=trials, storage=storage, **settings), Path(out))
    with tempfile.TemporaryDirectory(prefix="netlens-study-") as tmp:
        url = storage or f"sqlite:///{Path(tmp) / 'study.db'}"
        return run(design, settings_for(d, trials=trials, storage=url, **settings), write=False)
