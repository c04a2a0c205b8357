"""The `tolerance` and `compare` commands (registered in netlens/cli.py): thin shells over
`run_tolerance` and `compare`."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from netlens.cli import Design, JsonOpt, QuietOpt, DebugOpt, _emit_json, err, handled, stdout_console

SeedsOpt = Annotated[Optional[int], typer.Option(
    "--seeds", help="Runs per group that differ only in the seed (default 5; at least 2).",
    show_default=False)]
WorkersOpt = Annotated[int, typer.Option(help="Worker processes on this machine, sharing the storage "
                                         "and the CPU threads (as optimize's).", min=1)]
StorageOpt = Annotated[Optional[str], typer.Option(help="An Optuna storage URL shared by several "
                                                   "machines, e.g. postgresql://user:pw@host/db "
                                                   "(default: a SQLite file NAME.optuna.db beside "
                                                   "the design).")]
StepsOpt = Annotated[Optional[int], typer.Option(help="Override train.steps in every run.", min=1)]


def _live(label: str, quiet: bool, json_out: bool):
    if quiet or json_out or not sys.stderr.isatty():
        return None
    from netlens.tolerance.terminal import LiveProgress

    return LiveProgress(err.get(), label)


def tolerance_command(
    design: Design,
    seeds: SeedsOpt = None,
    only: Annotated[Optional[str], typer.Option(
        help="Run only these parts, comma-separated: noise, sensitivity, instability, yield.",
        show_default=False)] = None,
    spec: Annotated[Optional[str], typer.Option(
        help="What the design must meet, e.g. \"val_accuracy >= 0.95\": sensitivity rows that "
             "miss it break, inverse sensitivity bisects against it, the yield counts it.",
        show_default=False)] = None,
    monte_carlo: Annotated[Optional[int], typer.Option(
        "--monte-carlo", help="Monte Carlo runs for the yield: every numeric operand drawn at once "
                              "(needs --spec).", min=1, show_default=False)] = None,
    inverse: Annotated[Optional[list[str]], typer.Option(
        help="An operand to bisect against --spec (repeatable; default train.lr).",
        show_default=False)] = None,
    merit: Annotated[Optional[str], typer.Option(
        help="The merit, in optimize's syntax (default: the design's optimize merit, else val_loss).",
        show_default=False)] = None,
    workers: WorkersOpt = 1,
    storage: StorageOpt = None,
    study: Annotated[Optional[str], typer.Option(help="Study name (default NAME-tolerance-HASH).",
                                                 show_default=False)] = None,
    steps: StepsOpt = None,
    fail_on: Annotated[Optional[str], typer.Option(
        "--fail-on", help="Exit 1 when a sensitivity row reaches this verdict: sensitive | breaks | "
                          "never (default never); an unstable design counts as breaks.",
        show_default=False)] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Folder for tolerance.json and the "
                                                "plots (default runs/NAME-tolerance).")] = None,
    json_out: JsonOpt = False, quiet: QuietOpt = False, debug: DebugOpt = False,
):
    """Tolerance a design: the noise floor over seeds (and over init and data order
    separately) with the resolution beyond which a difference is a result, a sensitivity table
    (lr, batch, σ_w², width, steps, precision, the 1-ulp twin, and the prescription's own
    `tolerance:` operands), inverse sensitivity and a Monte Carlo yield against a spec, and the
    instability meter. Every run is a trial in an Optuna study (optimize's storage and workers):
    a re-run trains only what is missing.

    Examples: `netlens tolerance designs/quickstart.yaml --seeds 5 --workers 2`;
    `netlens tolerance designs/quickstart.yaml --spec "val_accuracy >= 0.95" --monte-carlo 20`;
    `netlens tolerance designs/tolerance/unstable.yaml --only instability`
    """
    with handled(debug):
        from netlens.errors import DesignError
        from netlens.tolerance import Settings, run_tolerance

        if fail_on is not None and fail_on not in ("sensitive", "breaks", "never"):
            raise DesignError("invalid `--fail-on`", path="--fail-on",
                              expected="sensitive, breaks or never", found=fail_on)
        settings = _settings(seeds=seeds, only=[p.strip() for p in only.split(",") if p.strip()] if only else None,
                             spec=spec, monte_carlo=monte_carlo, inverse=inverse, merit=merit,
                             workers=workers, storage=storage, study=study, steps=steps)
        live = _live(Path(design).stem, quiet, json_out)
        if live is not None:
            with live:
                result = run_tolerance(design, settings, out, on_progress=live.update)
        else:
            result = run_tolerance(design, settings, out)
        doc = result.doc
        if json_out:
            _emit_json(doc)
        elif not quiet:
            from netlens.tolerance.terminal import print_tolerance

            print_tolerance(stdout_console(), doc)
        verdicts = {r["verdict"] for r in doc.get("sensitivity", [])}
        if (doc.get("instability") or {}).get("unstable"):
            verdicts.add("breaks")
        if fail_on == "breaks" and "breaks" in verdicts or \
                fail_on == "sensitive" and verdicts & {"breaks", "sensitive"}:
            raise typer.Exit(1)


def compare_command(
    designs: Annotated[list[Path], typer.Argument(help="Two or more prescription files; the first "
                                                  "is the reference.", show_default=False)],
    seeds: SeedsOpt = None,
    workers: WorkersOpt = 1,
    storage: StorageOpt = None,
    steps: StepsOpt = None,
    fail_on: Annotated[Optional[str], typer.Option(
        "--fail-on", help="Exit 1 when a design is `worse` than the first on this metric "
                          "(e.g. val_loss), or on any metric with `any`.", show_default=False)] = None,
    json_out: JsonOpt = False, quiet: QuietOpt = False, debug: DebugOpt = False,
):
    """Compare designs over the same seeds: each metric's mean ± sd side by side, aberration
    counts, and for each metric whether a design is better, worse or indistinguishable from the
    first at n seeds, with the effect size over the noise floor. The runs are each design's
    tolerance noise floor, kept in its study: a later compare or tolerance reuses them.

    Example: `netlens compare designs/quickstart.yaml designs/tolerance/stable.yaml --seeds 5`
    """
    with handled(debug):
        from netlens.tolerance import compare

        settings = _settings(seeds=seeds, workers=workers, storage=storage, steps=steps)
        live = _live("compare", quiet, json_out)
        if live is not None:
            with live:
                result = compare(designs, settings, on_progress=live.update)
        else:
            result = compare(designs, settings)
        doc = result.doc
        if json_out:
            _emit_json(doc)
        elif not quiet:
            from netlens.tolerance.terminal import print_compare

            print_compare(stdout_console(), doc)
        if fail_on and any(v["verdict"] == "worse" and fail_on in ("any", v["metric"]) for v in doc["verdicts"]):
            raise typer.Exit(1)


def _settings(**flags):
    from netlens.tolerance import Settings

    s = Settings()
    for k, v in flags.items():
        if v is None:
            continue
        setattr(s, k, list(v) if isinstance(v, (list, tuple)) else v)
        if k not in ("workers",):
            s.flagged.append(k)
    return s
