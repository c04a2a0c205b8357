"""Run folders: where a simulation's files go, written atomically, never overwritten unless asked.

A run folder holds `design.yaml` (the resolved prescription), `records.json` (every time series),
`summary.json` (the simulate document), and PNG plots.
"""
from __future__ import annotations

from pathlib import Path

from netlens.errors import DesignError
from netlens.prescription.yamlio import dump
from netlens.report import documents, plots
from netlens.report.files import write_json, write_text

RUNS = Path("runs")


def pick_dir(name: str, out: Path | None, force: bool) -> Path:
    """`--out DIR` as given (refusing a non-empty one without --force), else runs/NAME, then
    runs/NAME-2, -3 … so earlier runs are kept."""
    if out is not None:
        if out.exists() and any(out.iterdir()) and not force:
            raise DesignError(f"the run folder `{out}` already exists and is not empty",
                              suggestion="Pass --force to overwrite it, or choose another --out.")
        return out
    path, n = RUNS / name, 1
    while path.exists() and any(path.iterdir()):
        n += 1
        path = RUNS / f"{name}-{n}"
    return path


def write_run(run, doc: dict, run_dir: Path) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    write_text(run_dir / "design.yaml", dump(run.design.resolved))
    run.records.save(run_dir / "records.json")
    write_json(run_dir / "summary.json", doc)
    plots.loss_curves(run.records, run_dir / "loss.png")
    plots.gain_profile(run.records, run.trace, [r.index for r in run.design.top_rows()],
                       run_dir / "gains.png")


def simulate_document(run, run_dir: Path | None, findings: list | None = None) -> dict:
    return documents.simulate_doc(run.design, run.trace, run.records,
                                  str(run_dir) if run_dir else None, findings)
