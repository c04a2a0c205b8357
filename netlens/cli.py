"""The `netlens` command: a thin shell over the Python API.

Kept light at start-up — `netlens --help`, `paraxial`, `catalog` and `diagnose RUN_DIR` never
import torch; commands that train import it inside their function. Rich is imported only when
something is printed through it, and the help is plain text (click's formatter: rich's help
renderer alone costs more than the 0.25 s of CPU `netlens --help` is allowed;
benchmarks/startup.py).
"""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from netlens.errors import NetlensError

if TYPE_CHECKING:
    from rich.console import Console

app = typer.Typer(
    name="netlens",
    help="The optical lens-design loop for neural networks: write a prescription, predict "
         "(paraxial), simulate, read the aberrations, correct, optimize.",
    invoke_without_command=True,      # bare `netlens` prints this help and exits 0 (main_callback)
    add_completion=False,
    rich_markup_mode=None,           # plain help: fast to render, and `1e-5*params` keeps its *
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)



class _LazyConsole:
    """The stderr console, created on first use: importing rich costs start-up time that
    `--help` and a clean run never need."""

    _console = None

    def get(self) -> "Console":
        if self._console is None:
            from rich.console import Console

            type(self)._console = Console(stderr=True, highlight=False)
        return self._console

    def __getattr__(self, name):
        return getattr(self.get(), name)


err = _LazyConsole()

Design = Annotated[Path, typer.Argument(help="A prescription YAML file, e.g. designs/quickstart.yaml.",
                                        show_default=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document to stdout and nothing else.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No tables or progress; errors only.")]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show the Python traceback of an error.")]
ThreadsOpt = Annotated[Optional[str], typer.Option(
    "--threads", help="torch CPU threads: auto (one unless the model is large) or a number "
                      "(overrides train.threads).", show_default=False)]
OutOpt = Annotated[Optional[Path], typer.Option("--out", help="Folder for the run's files "
                                                "(default: runs/NAME, numbered if taken).")]


def _version(value: bool) -> None:
    if value:
        import netlens

        typer.echo(f"netlens {netlens.__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    ctx: typer.Context,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
):
    """The optical lens-design loop for neural networks: write a prescription, predict
    (paraxial), simulate, read the aberrations, correct, optimize.

    Start with `netlens designs`, `netlens init quickstart`, `netlens paraxial quickstart.yaml`.
    """
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())
        raise typer.Exit(0)


@contextmanager
def handled(debug: bool):
    """Turn errors into one paragraph and an exit code (2 design, 3 run, 130 interrupt)."""
    try:
        yield
    except NetlensError as e:
        if debug:
            raise
        err.print("[bold red]error:[/] " + _escape(str(e)), soft_wrap=True)
        raise typer.Exit(e.exit_code) from None
    except KeyboardInterrupt:
        err.print("interrupted")
        raise typer.Exit(130) from None
    except MemoryError:
        if debug:
            raise
        err.print("[bold red]error:[/] out of memory; try a smaller batch, width or `data.n`.")
        raise typer.Exit(3) from None
    except RuntimeError as e:        # torch's allocator raises RuntimeError, not MemoryError
        if debug or not _allocator_failure(e):
            raise
        err.print("[bold red]error:[/] out of memory: " + _escape(str(e).splitlines()[0][:200])
                  + "; try a smaller batch, width or `data.n`.", soft_wrap=True)
        raise typer.Exit(3) from None
    except OSError as e:             # the disk is full, a folder vanished mid-run
        if debug:
            raise
        where = f" `{e.filename}`" if getattr(e, "filename", None) else ""
        err.print(f"[bold red]error:[/] cannot read or write{_escape(where)}: "
                  + _escape(e.strerror or e.__class__.__name__), soft_wrap=True)
        raise typer.Exit(3) from None
    except RecursionError:
        if debug:
            raise
        err.print("[bold red]error:[/] the input is nested too deeply to read.")
        raise typer.Exit(2) from None


def _allocator_failure(e: RuntimeError) -> bool:
    text = str(e).lower()
    return any(k in text for k in ("out of memory", "can't allocate", "cannot allocate",
                                   "defaultcpuallocator", "failed to allocate", "not enough memory"))


def _threads(value: str | None) -> int | str | None:
    """`--threads 2` → 2; `auto` and anything else go to `train.threads`'s validation."""
    return int(value) if value is not None and value.strip().isdigit() else value


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def stdout_console() -> "Console":
    """Tables for people: the terminal's width (or $COLUMNS), 150 columns when piped to a file.
    Piped output carries no trailing padding (see `netlens.report.layout.Unpadded`)."""
    import os

    from rich.console import Console

    from netlens.report.layout import Unpadded

    if sys.stdout.isatty():
        return Console(highlight=False)
    width = None if os.environ.get("COLUMNS", "").isdigit() else 150
    return Console(highlight=False, width=width, file=Unpadded(sys.stdout))


def _emit_json(doc: dict) -> None:
    from netlens.report.files import dumps

    sys.stdout.write(dumps(doc) + "\n")


ModelOpt = Annotated[Optional[str], typer.Option(
    "--model", help="Your own nn.Module instead of a prescription: pkg.module:factory (a class or "
                    "function called without arguments; imported only because you name it).",
    show_default=False)]
ShapeOpt = Annotated[Optional[str], typer.Option(
    "--input-shape", help="With --model: one sample's shape, e.g. 1,8,8 or 64.", show_default=False)]


@app.command()
def paraxial(design: Annotated[Optional[Path], typer.Argument(
                 help="A prescription YAML file, e.g. designs/quickstart.yaml.", show_default=False)] = None,
             model: ModelOpt = None, input_shape: ShapeOpt = None,
             json_out: JsonOpt = False, quiet: QuietOpt = False, debug: DebugOpt = False):
    """Predict, in closed form and without training, how signal and gradient propagate layer
    by layer at initialization (mean-field theory). Instant; no data pass.

    Example: `netlens paraxial designs/deep-tanh.yaml`, or for your own module tree
    `netlens paraxial --model mypkg.nets:make_net --input-shape 1,8,8`
    """
    with handled(debug):
        from netlens.errors import DesignError
        from netlens.report.documents import paraxial_doc

        if (design is None) == (model is None) or (model is not None) != (input_shape is not None):
            raise DesignError("`netlens paraxial` takes a prescription file, or --model with "
                              "--input-shape", expected="DESIGN, or --model pkg.module:factory "
                              "--input-shape 1,8,8", found=" ".join(
                                  str(a) for a in (design, model, input_shape) if a is not None) or "nothing")
        if model is not None:
            from netlens.watch.paraxial import load_factory, paraxial_model, parse_shape

            doc = paraxial_model(load_factory(model), parse_shape(input_shape)).doc
        else:
            from netlens.data import describe
            from netlens.paraxial.trace import trace
            from netlens.prescription import load_design
            from netlens.train.outputs import loss_outputs

            d = load_design(design)
            with d.blame():
                info = describe(d.data, d.base_dir)
                doc = paraxial_doc(d, trace(d, info, loss_outputs(d.train, info)))
        if json_out:
            _emit_json(doc)
            return
        if quiet:
            return
        from netlens.report.terminal import paraxial_table

        out = stdout_console()
        out.print(paraxial_table(doc))
        for note in doc["notes"]:
            out.print(f"[dim]note:[/] {_escape(note)}")
        out.print("[dim]Gains are power ratios in dB per unit; Σ flow is the gradient power reaching "
                  "the row's input from the loss, summed over its units (docs/paraxial.md)."
                  + (" ~ marks rows whose rule is approximate." if any(r["approximate"] for r in doc["rows"])
                     else "") + "[/]")


@app.command()
def catalog(
    name: Annotated[Optional[str], typer.Argument(
        help="An element, init, aberration code or correction; omit to list them all.",
        show_default=False)] = None,
    json_out: JsonOpt = False, quiet: QuietOpt = False, debug: DebugOpt = False,
):
    """The catalog: elements, inits, aberrations and corrections with their one-line role;
    `catalog NAME` shows one in full (formula, source, thresholds, what it corrects, and for an
    activation its paraxial gains over input scale). Instant; no torch.

    Example: `netlens catalog tanh`, `netlens catalog FLOW`, `netlens catalog critical_init`
    """
    with handled(debug):
        from netlens import catalog as entries

        doc = entries.listing() if name is None else entries.entry(name)
        if json_out:
            _emit_json(doc)
            return
        if quiet:
            return
        from netlens.report import catalog as view

        con = stdout_console()
        view.listing(con, doc) if name is None else view.entry(con, doc)


@app.command()
def simulate(
    design: Design,
    steps: Annotated[Optional[int], typer.Option(help="Override train.steps.", min=1)] = None,
    seed: Annotated[Optional[int], typer.Option(help="Override the design's seed.")] = None,
    device: Annotated[Optional[str], typer.Option(help="auto | cpu | cuda (overrides train.device).")] = None,
    threads: ThreadsOpt = None,
    out: OutOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite a non-empty --out folder.")] = False,
    json_out: JsonOpt = False, quiet: QuietOpt = False, debug: DebugOpt = False,
):
    """Build the network, train it briefly with instruments on every row, print the
    prescription table with measured columns beside the paraxial ones, and write a run folder.

    Example: `netlens simulate designs/quickstart.yaml --steps 200`
    """
    with handled(debug):
        from netlens.api import run_simulation

        overrides = {k: v for k, v in (("train.steps", steps), ("seed", seed), ("train.device", device),
                                       ("train.threads", _threads(threads))) if v is not None}
        run, doc, run_dir = run_simulation(design, overrides, out, force,
                                           progress=not (quiet or json_out))
        if json_out:
            _emit_json(doc)
        elif not quiet:
            from netlens.report.terminal import print_lines, simulate_table, training_summary

            con = stdout_console()
            con.print(simulate_table(doc))
            print_lines(con, training_summary(doc))
            con.print(f"run folder: {run_dir}")
        if run.records.interrupted:
            raise typer.Exit(130)


FailOn = Annotated[Optional[str], typer.Option(
    "--fail-on", help="Exit with code 1 when a finding reaches this level: info | warn | error | never "
                      "(default: the prescription's `diagnose.fail_on`, else error).",
    show_default=False)]


@app.command()
def diagnose(
    target: Annotated[Path, typer.Argument(
        help="A prescription YAML file (simulated first) or a run folder (judged as it is, "
             "never retrained).", show_default=False, metavar="DESIGN|RUN_DIR")],
    at: Annotated[str, typer.Option("--at", help="The moment to judge: init | end | a step number.")] = "end",
    fail_on: FailOn = None,
    threshold: Annotated[Optional[list[str]], typer.Option(
        "--threshold", "-t", help="Override a threshold: CODE=WARN,ERROR (e.g. FLOW=15,30; "
                                  "STEP=-4:-1.5,-5.5:-1; `-` turns a level off). Repeatable.",
        show_default=False)] = None,
    steps: Annotated[Optional[int], typer.Option(help="Override train.steps (designs only).", min=1)] = None,
    seed: Annotated[Optional[int], typer.Option(help="Override the design's seed (designs only).")] = None,
    device: Annotated[Optional[str], typer.Option(help="auto | cpu | cuda (designs only).")] = None,
    threads: ThreadsOpt = None,
    out: OutOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite a non-empty --out folder.")] = False,
    brief: Annotated[bool, typer.Option("--brief", help="Findings without their explanations.")] = False,
    fix: Annotated[bool, typer.Option(
        "--fix", help="Write NAME.fixed.yaml beside the design (or in --out): the first applicable "
                      "correction of each error-level finding, your comments and order kept.")] = False,
    verify: Annotated[bool, typer.Option(
        "--verify", help="With --fix: re-simulate the corrected prescription with the same seed, "
                         "show before → after, and keep only the corrections that helped.")] = False,
    seeds: Annotated[int, typer.Option(
        "--seeds", help="With --verify: train before and after over N seeds and say whether each "
                        "change is beyond noise (netlens tolerance's rule).", min=1)] = 1,
    json_out: JsonOpt = False, quiet: QuietOpt = False, debug: DebugOpt = False,
):
    """Judge a run: the per-row aberration table (GAIN FLOW DEAD SATR RANK COND MEAN STEP, with
    SUM rows and the paraxial prediction beside step 0), the network panel (SHRP DIVG INIT
    STAL GAP NOIS), then the findings, most severe first, with explanations and corrections
    as prescription diffs. Writes diagnosis.json and aberrations.png into the run folder.

    Example: `netlens diagnose designs/default-init-relu.yaml --fail-on warn`, or
    `netlens diagnose designs/deep-tanh.yaml --fix --verify`
    """
    with handled(debug):
        from netlens.diagnose import diagnose as run_diagnosis
        from netlens.errors import DesignError

        if fail_on is not None and fail_on not in ("info", "warn", "error", "never"):
            raise DesignError("invalid `--fail-on`", path="--fail-on",
                              expected="info, warn, error or never", found=fail_on)
        if (fix or verify) and (target / "model.json").is_file() and not (target / "design.yaml").is_file():
            raise DesignError("--fix and --verify rewrite a prescription; a watched model's "
                              "findings carry advice for your code instead", path="--fix",
                              found=str(target), suggestion="Read the corrections under each "
                              "finding (or `corrections[].advice` in --json).")
        overrides = {k: v for k, v in (("train.steps", steps), ("seed", seed), ("train.device", device),
                                       ("train.threads", _threads(threads))) if v is not None}
        result = run_diagnosis(target, at=at, thresholds=threshold, overrides=overrides, out=out,
                               force=force, progress=not (quiet or json_out))
        if fix or verify:
            from netlens.corrections.fix import fix_result
            from netlens.report.files import write_json

            fix_result(result, verify_runs=verify, overrides=overrides, out=out,
                       progress=not (quiet or json_out), seeds=seeds)
            write_json(result.run_dir / "diagnosis.json", result.doc)
        if json_out:
            _emit_json(result.doc)
        elif not quiet:
            from netlens.report.diagnosis_view import print_diagnosis

            con = stdout_console()
            print_diagnosis(con, result.doc, explain=not brief)
            if "fix" in result.doc:
                from netlens.corrections.report import fix_block, verify_block

                fix_block(con, result.doc["fix"], verified="verify" in result.doc)
                if "verify" in result.doc:
                    verify_block(con, result.doc["verify"])
        if result.records.interrupted and result.simulated:   # a run folder is judged as it is
            raise typer.Exit(130)
        if result.diagnosis.reaches(fail_on or result.design.diagnose.fail_on):
            raise typer.Exit(1)


@app.command()
def optimize(
    design: Design,
    trials: Annotated[Optional[int], typer.Option(help="Finished trials the study should hold "
                                                  "(a re-run resumes up to this count). Default 20.", min=1)] = None,
    workers: Annotated[int, typer.Option(help="Worker processes on this machine, sharing the "
                                         "storage and the CPU threads.", min=1)] = 1,
    storage: Annotated[Optional[str], typer.Option(help="An Optuna storage URL, e.g. "
                                                   "postgresql://user:pw@host/db (default: a SQLite "
                                                   "file NAME.optuna.db beside the design).")] = None,
    study: Annotated[Optional[str], typer.Option(help="Study name (default: the design's name).")] = None,
    merit: Annotated[Optional[str], typer.Option(help="Weighted sum of operands, e.g. "
                                                 "`'val_error + 1e-5*params'` or `'val_loss + 0.1*FLOW'`; "
                                                 "`~T` gives a target. Default val_loss.")] = None,
    objective: Annotated[Optional[list[str]], typer.Option(help="Repeat for a Pareto front, e.g. "
                                                           "--objective val_loss --objective params.")] = None,
    constraint: Annotated[Optional[list[str]], typer.Option(help="Repeatable, e.g. 'params <= 50000'.")] = None,
    pruner: Annotated[Optional[str], typer.Option(help="median | hyperband | none (on the "
                                                  "intermediate validation loss).")] = None,
    aberration_pruning: Annotated[Optional[bool], typer.Option(
        "--aberration-pruning/--no-aberration-pruning",
        help="Stop trials that diverge or show an error-level FLOW finding early.")] = None,
    sampler: Annotated[Optional[str], typer.Option(help="tpe | random.")] = None,
    timeout: Annotated[Optional[float], typer.Option(help="Seconds after which no new trial starts.",
                                                     min=0)] = None,
    steps: Annotated[Optional[int], typer.Option(help="Override train.steps in every trial.", min=1)] = None,
    seed: Annotated[Optional[int], typer.Option(help="Override the design's seed.")] = None,
    device: Annotated[Optional[str], typer.Option(help="auto | cpu | cuda for every trial "
                                                  "(overrides train.device).")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Folder for NAME.best.yaml, the plots "
                                                "and trials.csv (default: the best prescription "
                                                "beside the design, the rest in runs/STUDY-optimize).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Write into an --out folder that holds "
                                        "other files (only this study's files are replaced).")] = False,
    json_out: JsonOpt = False, quiet: QuietOpt = False, debug: DebugOpt = False,
):
    """Tune the prescription's variable cells (`{vary: [low, high]}`, `{choose: [...]}`) with
    Optuna against a merit function, with pruning, a resumable study and parallel workers.
    Writes NAME.best.yaml (the best values as each cell's `start:`), a table of the best trials,
    parameter importances and plots.

    Example: `netlens optimize designs/quickstart.yaml --trials 30 --workers 2`
    """
    with handled(debug):
        from netlens.optimize import optimize as run_study
        from netlens.optimize import settings_for
        from netlens.prescription import load_design

        flags = dict(trials=trials, workers=workers, storage=storage, study=study, merit=merit,
                     objectives=objective, constraints=constraint, pruner=pruner,
                     prune_aberrations=aberration_pruning, sampler=sampler, timeout=timeout,
                     steps=steps, seed=seed, device=device)
        d = load_design(design)
        settings = settings_for(d, **flags)
        live = None
        if not (quiet or json_out) and sys.stderr.isatty():
            from netlens.optimize.terminal import LiveProgress

            live = LiveProgress(err.get(), settings.trials, settings.study or d.name)
        if live is not None:
            with live:
                result = run_study(design, settings, out, on_progress=live.update, force=force)
        else:
            result = run_study(design, settings, out, force=force)
        if json_out:
            _emit_json(result.doc)
        elif not quiet:
            from netlens.optimize.terminal import print_summary

            print_summary(stdout_console(), result.doc)
        if result.interrupted:
            err.print("interrupted: the finished trials are in the study; run the same command "
                      "again to continue")
            raise typer.Exit(130)
        if result.errors:
            raise typer.Exit(3)


@app.command()
def designs(json_out: JsonOpt = False, debug: DebugOpt = False):
    """List the bundled designs (they ship with netlens): name and what each shows. Copy one to
    start from with `netlens init NAME`.

    Example: `netlens designs`, then `netlens init quickstart`
    """
    with handled(debug):
        from netlens.library import bundled

        found = bundled()
        if json_out:
            _emit_json({"netlens": 1, "designs": found})
            return
        from rich.table import Table

        t = Table(title="bundled designs (netlens init NAME copies one here)", title_justify="left",
                  header_style="bold", show_edge=False, pad_edge=False)
        t.add_column("name", no_wrap=True, style="cyan")
        t.add_column("what it shows")
        for d in found:
            t.add_row(d["name"], _escape(d["about"]))
        stdout_console().print(t)


@app.command()
def init(
    name: Annotated[str, typer.Argument(help="A bundled design, e.g. quickstart (see `netlens designs`).",
                                        show_default=False)],
    dest: Annotated[Optional[Path], typer.Argument(help="File or folder to write (default: ./NAME.yaml).",
                                                   show_default=False)] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
    quiet: QuietOpt = False, debug: DebugOpt = False,
):
    """Copy a bundled design to start from: your own prescription, comments included.

    Example: `netlens init quickstart`, then `netlens paraxial quickstart.yaml`
    """
    with handled(debug):
        from netlens.library import init as copy

        path = copy(name, dest, force)
        if not quiet:
            stdout_console().print(f"wrote {path}")
@app.command()
def report(
    target: Annotated[Path, typer.Argument(
        help="A run folder (runs/NAME), an optimize study folder (runs/NAME-optimize) or a "
             "tolerance folder.", show_default=False, metavar="RUN|STUDY|TOLERANCE")],
    html: Annotated[Optional[Path], typer.Option("--html", help="Where to write the page "
                                                 "(default: FOLDER/report.html).")] = None,
    json_out: JsonOpt = False, quiet: QuietOpt = False, debug: DebugOpt = False,
):
    """Write one self-contained HTML page (every plot inline, readable offline): for a run the
    prescription table with paraxial and measured columns, the aberrations coloured by severity,
    the findings with explanations and diffs, loss curves and gain profiles; for a study its
    history, best trials and importances; for a tolerance result its noise floor, sensitivity
    and yield. Never trains.

    Example: `netlens report runs/quickstart --html quickstart.html`
    """
    with handled(debug):
        from netlens.report.html import write_report

        path, doc = write_report(target, html)
        if json_out:
            _emit_json(doc)
        elif not quiet:
            stdout_console().print(f"{doc['kind']} report: {path} ({doc['bytes'] / 1024:.0f} KiB, "
                                   f"{doc['images']} plot(s) inline)")


from netlens.tolerance.cli import compare_command, tolerance_command  # noqa: E402

app.command("tolerance")(tolerance_command)
app.command("compare")(compare_command)


def main() -> None:
    # The command line uses no pydantic plugins; without this, the first validation scans the entry
    # points of every installed distribution for them (~0.1 s of start-up in a large environment).
    # A user who sets the variable keeps their own value.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    app()
