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
