"""Shared test helpers: write a prescription to a temporary file and run the CLI in-process."""
from __future__ import annotations

import os
import sqlite3
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

# Tests run two workers on two cores: one torch thread each avoids oversubscription.
os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parent.parent

# The smallest design that trains in well under a second: a shared fixture of the input-safety
# tests (`STEPS` stands for the step count each test sets).
TINY = """\
netlens: 1
name: tiny
seed: 0
data: {source: digits, n: 200, batch: 32}
layers:
  - flatten
  - linear: {width: 16, init: he}
  - relu
  - linear: 10
train: {optimizer: sgd, lr: 0.05, steps: STEPS}
probe: {every: 2, batch: 32, hessian: false}
"""
DESIGNS = ROOT / "designs"


@pytest.fixture
def write(tmp_path):
    def _write(text: str, name: str = "design.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip())
        return path

    return _write


@pytest.fixture
def cli():
    from netlens.cli import app

    runner = CliRunner()

    def _run(*args: str):
        return runner.invoke(app, [str(a) for a in args])

    return _run


@pytest.fixture(scope="session")
def bundled(tmp_path_factory):
    """Each bundled design diagnosed once (`diagnose --json`), shared by the tests of every
    module in this process: (exit code, document)."""
    import json

    cache: dict[str, tuple[int, str]] = {}

    def _get(name: str) -> tuple[int, dict]:
        from netlens.cli import app

        if name not in cache:
            out = tmp_path_factory.mktemp(name)
            r = CliRunner().invoke(app, ["diagnose", str(DESIGNS / f"{name}.yaml"), "--json",
                                         "--out", str(out / "run")])
            cache[name] = (r.exit_code, r.stdout)
        code, stdout = cache[name]
        return code, json.loads(stdout)

    return _get


MLP = """
netlens: 1
name: tiny
seed: 0
data:
  source: digits
  n: 400
  batch: 32
layers:
  - flatten
  - linear: {width: 32, init: he}
  - relu
  - linear: 10
train:
  optimizer: sgd
  lr: 0.05
  momentum: 0.9
  steps: 30
probe:
  every: 10
  batch: 64
"""


def finished_trials(db: Path) -> int:
    """Finished trials in a SQLite study that another process may still be creating, read
    without Optuna: `optuna.load_study` on a half-created storage would itself try to create
    the tables (and collide on alembic_version with the process that is doing it)."""
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as con:
            (n,) = con.execute("SELECT count(*) FROM trials WHERE state IN ('COMPLETE', 'PRUNED')").fetchone()
        return int(n)
    except sqlite3.Error:               # no tables yet, or locked this instant
        return 0
