"""`diagnose`: a design (simulated first) or a run folder (never retrained) → the judgement.

    from netlens.diagnose import diagnose
    result = diagnose("designs/deep-tanh.yaml", at="end")
    result.diagnosis.findings        # most severe first
    result.doc                       # the --json document; also written to RUN/diagnosis.json

The run folder gains `diagnosis.json` and `aberrations.png` (the aberration diagram).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from netlens.aberrations import Diagnosis, judge, resolve
from netlens.aberrations.judge import parse_at
from netlens.errors import DesignError, RunError
from netlens.instruments.records import RunRecords
from netlens.paraxial.trace import Trace
from netlens.prescription import Design, load_design


@dataclass
class Result:
    design: Design
    trace: Trace
    records: RunRecords
    diagnosis: Diagnosis
    doc: dict[str, Any]
    run_dir: Path | None        # None when nothing was written (the API without `out=`)
    simulated: bool             # False when an existing run folder was judged


def diagnose(target: str | Path, *, at: str | int = "end", thresholds: list[str] | None = None,
             overrides: dict[str, Any] | None = None, out: Path | None = None, force: bool = False,
             progress: bool = False, plot: bool = True, save: bool = True) -> Result:
    """Judge `target`: a prescription file (simulated into a new run folder first) or a run
    folder written by `simulate`/`diagnose` (read as it is). `thresholds` are command-line
    overrides (`FLOW=15,30`), applied over the prescription's `diagnose.thresholds`. With
    `save=False` nothing is written: no run folder, no diagnosis.json (the Python API's default,
    `netlens.diagnose(...)`, unless `out=` is given)."""
    target = Path(target)
    at = parse_at(at)
    if target.is_dir():
        if overrides or out is not None:
            raise DesignError("--steps, --seed, --device and --out apply to a design, not a run folder",
                              found=str(target),
                              suggestion="A run folder is judged as it is; pass its design file to re-run it.")
        design, tr, records = load_run(target)
        run_dir, simulated = target, False
        limits = _limits(design, thresholds)
    elif save:
        from netlens.api import run_simulation

        planned = load_design(target, overrides=overrides)
        limits = _limits(planned, thresholds)                   # fail before training
        if isinstance(at, int) and at > planned.train.steps:
            raise DesignError(f"`--at {at}` is past the end of the run, which trains "
                              f"{planned.train.steps} steps", path="--at",
                              expected=f"init, end or a step from 0 to {planned.train.steps}", found=at)
        run, _doc, run_dir = run_simulation(target, overrides, out, force, progress)
        design, tr, records, simulated = run.design, run.trace, run.records, True
    else:
        from netlens.simulate import simulate

        design = load_design(target, overrides=overrides)
        limits = _limits(design, thresholds)
        run = simulate(design)
        design, tr, records, simulated, run_dir = run.design, run.trace, run.records, True, None
    if isinstance(at, int) and at > records.steps_done:
        raise DesignError(f"`--at {at}` is past the end of the run, which trained "
                          f"{records.steps_done} steps", path="--at",
                          expected=f"init, end or a step from 0 to {records.steps_done}", found=at,
                          suggestion="Probes were taken at steps "
                          + ", ".join(str(s.step) for s in records.snapshots[:12])
                          + (" …" if len(records.snapshots) > 12 else "") + ".")
    dx = judge(records, tr, at, limits)
    if records.interrupted and not simulated:
        dx.notes.insert(0, f"this run was interrupted after {records.steps_done} of {records.steps} "
                           "steps: judged on the records it kept")
    doc = write_diagnosis(design, tr, records, run_dir, dx, plot and save, save)
    return Result(design, tr, records, dx, doc, run_dir, simulated)


def write_diagnosis(design: Design, tr: Trace, records: RunRecords, run_dir: Path | None,
                    dx: Diagnosis, plot: bool = True, save: bool = True) -> dict[str, Any]:
    from netlens.report.diagnosis import diagnose_doc
    from netlens.report.files import write_json

    doc = diagnose_doc(design, tr, records, None if run_dir is None else str(run_dir), dx)
    # Each finding's corrections as prescription patches, most direct first (netlens.corrections).
    from netlens.corrections.findings import attach

    if getattr(design, "watched", False):   # a user's own model: advice, not prescription patches
        from netlens.corrections.advice import attach_advice

        attach_advice(doc, design, tr, records, dx.limits)
    else:
        attach(doc, design, records, dx.limits)
    if not save or run_dir is None:
        return doc
    write_json(run_dir / "diagnosis.json", doc)
    if plot:
        from netlens.report.diagnosis_plot import aberration_diagram

        aberration_diagram(doc, run_dir / "aberrations.png")
    return doc


_RERUN = "Re-run `netlens simulate` to write a fresh run folder."


def load_run(run_dir: Path) -> tuple[Design, Trace, RunRecords]:
    """A run folder's design, paraxial trace and records — without data, torch or training."""
    from netlens.data import DataInfo, describe
    from netlens.paraxial.trace import trace
    from netlens.train.outputs import loss_outputs

    path = run_dir / "records.json"
    watched = (run_dir / "model.json").is_file() and not (run_dir / "design.yaml").is_file()
    if not path.is_file() or not ((run_dir / "design.yaml").is_file() or watched):
        raise DesignError(f"`{run_dir}` is not a run folder: it needs records.json and design.yaml "
                          "(or model.json, for a watched model)",
                          suggestion="Pass a design file, or a folder written by `netlens simulate` "
                                     "or `netlens.watch`.")
    try:
        records = RunRecords.load(path)
    except KeyError as e:
        raise RunError(f"`{path}` is not a netlens records file: it has no `{e.args[0]}`. {_RERUN}") from None
    except TypeError as e:
        what = str(e).split("argument", 1)[-1].strip(" '") if "unexpected keyword" in str(e) else str(e)
        raise RunError(f"`{path}` is not a netlens records file (an unknown or missing field: {what}). "
                       f"{_RERUN}") from None
    except (OSError, ValueError, AttributeError) as e:
        raise RunError(f"cannot read `{path}`: {e.__class__.__name__}: {str(e)[:200]}. {_RERUN}") from None
    if watched:      # a user's own model (netlens.watch): the module tree stands for the design
        from netlens.paraxial.modules import ModelSpec, model_design, trace_model

        spec = ModelSpec.load(run_dir / "model.json")
        return model_design(spec, run_dir / "model.json"), trace_model(spec), records
    design = load_design(run_dir / "design.yaml")
    with design.blame():
        if records.data_info:
            info = DataInfo(**{**records.data_info,
                               "input_shape": tuple(records.data_info["input_shape"])})
        else:      # records written before data_info was kept: describe the data again
            info = describe(design.data, design.base_dir)
        tr = trace(design, info, loss_outputs(design.train, info))
    return design, tr, records


def _limits(design: Design, thresholds: list[str] | None):
    with design.blame():          # the prescription's levels, located at their line
        table = resolve(design.diagnose.thresholds)
    return resolve(None, thresholds, table)


from netlens._callable import callable_module  # noqa: E402  `netlens.diagnose(...)` is the API call

callable_module(__name__, "diagnose")
