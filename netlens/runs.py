"""Run folders: where a simulation's files go, written atomically, never overwritten unless asked.

A run folder holds `design.yaml` (the resolved prescription), `records.json` (every time series),
`summary.json` (the simulate document), and PNG plots; `diagnose` adds `diagnosis.json` and
`aberrations.png`.

Safety rules:
- a folder is *claimed* by creating it exclusively, so two runs started together never share one
  (the second takes `runs/NAME-2`);
- `--out DIR` must be a folder (or not exist); a non-empty one needs `--force`, which removes only
  the files a run writes (listed in `OWNED`), never anything else in it;
- the folder is checked writable before training, so a read-only target fails in a second, not
  after the run;
- `records.json` and `design.yaml` are written first, each atomically, with Ctrl-C held back until
  both exist: an interrupt while writing loses no finished run. A temporary file a killed process
  left (`.records.json.` plus a random suffix) is removed by the next write and never read.
"""
from __future__ import annotations

import contextlib
import os
import signal
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path

from netlens.errors import DesignError
from netlens.prescription.yamlio import dump
from netlens.report import documents, plots
from netlens.report.files import write_json, write_text

RUNS = Path("runs")
#: The files `simulate` and `diagnose` write into a run folder (what `--force` may replace).
OWNED = ("design.yaml", "records.json", "summary.json", "loss.png", "gains.png",
         "diagnosis.json", "aberrations.png")
MAX_NUMBER = 10_000


def pick_dir(name: str, out: Path | None, force: bool, design_file: Path | None = None) -> Path:
    """Claim the run folder: `--out DIR` as given (refusing a non-empty one without --force;
    with it, clearing the files a run owns), else runs/NAME, then runs/NAME-2, -3 … (each
    created exclusively, so concurrent runs never share one). Checked writable."""
    if out is not None:
        out = Path(out)
        if out.exists() and not out.is_dir():
            raise DesignError(f"--out `{out}` is a file, not a folder", path="--out",
                              suggestion="Choose a folder name for the run's files.")
        if design_file is not None and any(
                (out / n).resolve() == Path(design_file).resolve() for n in OWNED):
            raise DesignError(f"--out `{out}` holds the prescription itself (`{Path(design_file).name}`), "
                              "which a run would overwrite", path="--out",
                              suggestion="Choose another folder for the run's files.")
        if out.is_dir() and any(out.iterdir()):
            if not force:
                raise DesignError(f"the run folder `{out}` already exists and is not empty",
                                  suggestion="Pass --force to overwrite it, or choose another --out.")
            clear_owned(out)
        _make(out, exist_ok=True)
        check_writable(out)
        return out
    for n in range(1, MAX_NUMBER + 1):
        path = RUNS / (name if n == 1 else f"{name}-{n}")
        try:
            _make(path, exist_ok=False)
        except FileExistsError:
            continue
        check_writable(path)
        return path
    raise DesignError(f"runs/{name} … runs/{name}-{MAX_NUMBER} are all taken",
                      suggestion="Remove old run folders, or pass --out.")


def _make(path: Path, exist_ok: bool) -> None:
    """Create the folder; FileExistsError (only) when it exists and `exist_ok` is off."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() and not path.is_dir():
            raise NotADirectoryError(20, "a file of that name exists", str(path))
        path.mkdir(exist_ok=exist_ok)
    except FileExistsError:
        if path.is_dir():
            raise
        raise DesignError(f"cannot create the run folder `{path}`: a file is in the way",
                          path="--out", suggestion="Choose a writable folder with --out.") from None
    except OSError as e:
        raise DesignError(f"cannot create the run folder `{path}`: {e.strerror or e}",
                          path="--out", suggestion="Choose a writable folder with --out.") from None


def check_writable(folder: Path, what: str = "the run folder") -> None:
    """Fail now, before any training, if files cannot be created in `folder`."""
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".netlens-probe.")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise DesignError(f"cannot write into {what} `{folder}`: {e.strerror or e}",
                          suggestion="Choose a writable folder (--out), or fix its permissions.") from None


def clear_owned(folder: Path, names: tuple[str, ...] = OWNED) -> None:
    """Remove the files a run writes, and temporary files a killed write left; nothing else."""
    for name in names:
        target = folder / name
        if target.is_file() or target.is_symlink():
            target.unlink()
    clear_stale(folder, names)


def clear_stale(folder: Path, names: tuple[str, ...] = OWNED) -> None:
    """Temporary files (`.records.json.` plus a random suffix) an interrupted or killed write left behind."""
    prefixes = tuple(f".{n}." for n in names)
    for entry in folder.iterdir() if folder.is_dir() else ():
        if entry.name.startswith(prefixes) and entry.is_file():
            entry.unlink(missing_ok=True)


def release(run_dir: Path) -> None:
    """Give back a claimed folder that received nothing (the run failed before writing)."""
    with contextlib.suppress(OSError):     # not empty after all, or already gone: leave it
        run_dir.rmdir()


@contextmanager
def held_interrupts():
    """Hold Ctrl-C back for the duration: it is delivered when the block ends."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def write_run(run, doc: dict, run_dir: Path) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    clear_stale(run_dir)
    with held_interrupts():          # the run's results first: what diagnose RUN needs
        run.records.save(run_dir / "records.json")
        write_text(run_dir / "design.yaml", dump(run.design.resolved))
    write_json(run_dir / "summary.json", doc)
    plots.loss_curves(run.records, run_dir / "loss.png")
    plots.gain_profile(run.records, run.trace, [r.index for r in run.design.top_rows()],
                       run_dir / "gains.png")


def simulate_document(run, run_dir: Path | None, findings: list | None = None) -> dict:
    return documents.simulate_doc(run.design, run.trace, run.records,
                                  str(run_dir) if run_dir else None, findings)
