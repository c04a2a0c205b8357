"""Hostile and mistaken input, one table: every bad input of the adversarial run that broke the
contract, with the exit code it must give (2 bad input, 3 a run that cannot complete), what the
message must say, the file:line where a file is involved, and never a traceback.

Most cases run `paraxial` in-process (no training); the few that must reach `simulate` train a
tiny network for a handful of steps or are refused before training.
"""
from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from tests.conftest import TINY

BASE = TINY.replace("STEPS", "4")


@dataclass
class Case:
    id: str
    design: str | Callable[[Path], str] = BASE       # text, or a function writing files → text
    args: tuple = ("paraxial",)                       # command; DESIGN and TMP are substituted
    code: int = 2
    says: tuple[str, ...] = ()                        # substrings of the output (case-insensitive)
    line: int | None = None                           # the design's line the message must name
    absent: tuple[str, ...] = ()                      # substrings that must not appear
    seconds: float = 20.0


def edit(old: str, new: str) -> str:
    assert old in BASE, old
    return BASE.replace(old, new, 1)


def _csv(text: str, name: str = "data.csv"):
    def make(tmp: Path) -> str:
        (tmp / name).write_text(text)
        return edit("{source: digits, n: 200, batch: 32}", f"{{source: {name}, batch: 8, val: 0}}"
                    ).replace("linear: 10", "linear: 2")
    return make


def _npz(name: str = "data.npz", **arrays):
    def make(tmp: Path) -> str:
        np.savez(tmp / name, **arrays)
        return edit("{source: digits, n: 200, batch: 32}", f"{{source: {name}, batch: 8, val: 0}}"
                    ).replace("linear: 10", "linear: 2")
    return make


def _dir_source(tmp: Path) -> str:
    (tmp / "folder.csv").mkdir()
    return edit("{source: digits, n: 200, batch: 32}", "{source: folder.csv}")


def _fifo_source(tmp: Path) -> str:
    os.mkfifo(tmp / "pipe.csv")
    return edit("{source: digits, n: 200, batch: 32}", "{source: pipe.csv}")


def _system_file(tmp: Path) -> str:
    (tmp / "passwd.csv").symlink_to("/etc/passwd")
    return edit("{source: digits, n: 200, batch: 32}", "{source: passwd.csv}")


def _laughs() -> str:
    lines = ["netlens: 1", "a0: &a0 [lol]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    return "\n".join(lines) + "\n" + BASE.split("\n", 1)[1]


def _existing_file(tmp: Path) -> str:
    (tmp / "taken").write_text("mine")
    return BASE


ONE_CLASS = "a,b,label\n" + "".join(f"{i},{i * 2},7\n" for i in range(20))
CELLS = "a,b,label\n" + "".join(f"{i},{i * 2},{i % 2}\n" for i in range(10))


def _cell(value: str) -> str:
    rows = CELLS.splitlines()
    rows[4] = f"{value},1,0"         # line 5 of the file
    return "\n".join(rows) + "\n"


CASES = [
    # 1. `name:` is a label, never a path
    Case("name-parent", edit("name: tiny", "name: ../escaped"), says=("`name`", "name: escaped"), line=2),
    Case("name-absolute", edit("name: tiny", "name: /tmp/anywhere"), says=("label",), line=2),
    Case("name-dotdot", edit("name: tiny", "name: .."), says=("label",), line=2),
    Case("name-nested", edit("name: tiny", "name: a/b/c"), says=("a-b-c",), line=2),
    Case("name-long", edit("name: tiny", "name: " + "x" * 300), says=("64 characters",), line=2),
    Case("name-nul", edit("name: tiny", 'name: "a\\0b"'), says=("label",), line=2),
    Case("name-not-text", edit("name: tiny", "name: [a, b]"), says=("text",), line=2),
    # 2. a message never dumps a file that is not data
    Case("system-file-as-csv", _system_file, says=("passwd.csv",), absent=("root:", "/bin/", "nologin")),
    # 3. no traceback: seeds, --out, storage, empty data, huge layers, deep nesting
    Case("seed-negative", edit("seed: 0", "seed: -1"), says=("seed",), line=3),
    Case("seed-huge", edit("seed: 0", "seed: 1180591620717411303424"), says=("seed",), line=3),
    Case("flag-seed-negative", args=("simulate", "DESIGN", "--seed", "-1", "--out", "TMP/r"),
         says=("seed",)),
    Case("flag-seed-huge", args=("simulate", "DESIGN", "--seed", str(10**23), "--out", "TMP/r"),
         says=("seed",)),
    Case("out-is-a-file", _existing_file, args=("simulate", "DESIGN", "--out", "TMP/taken"),
         says=("is a file",)),
    Case("storage-unwritable", edit("lr: 0.05", "lr: {vary: [0.01, 0.1], log: true}"),
         args=("optimize", "DESIGN", "--storage", "sqlite:////proc/x/y.db", "--trials", "1",
               "--out", "TMP/o"), says=("cannot create or open",)),
    Case("npz-no-samples", _npz(X=np.zeros((0, 4)), y=np.zeros(0)), says=("no samples",), line=4),
    Case("width-1e12", edit("width: 16", "width: 1000000000000"), args=("simulate", "DESIGN", "--out", "TMP/r"),
         code=3, says=("memory", "row 1")),
    Case("kernel-1e6", edit("  - flatten", "  - conv2d: {channels: 2, kernel: 1000000}\n  - flatten"),
         args=("simulate", "DESIGN", "--out", "TMP/r"), code=3, says=("memory",)),
    Case("flow-nesting-10000", "netlens: 1\nlayers: " + "[" * 10000 + "]" * 10000 + "\n",
         says=("nested too deeply",), line=2, seconds=10),
    # 4. no hang: billion laughs, a huge repeat
    Case("billion-laughs", _laughs(), says=("aliases",), seconds=5),
    Case("repeat-1e6", edit("  - relu", "  - {repeat: 1000000, of: [relu]}"), says=("10,000 rows",),
         line=8, seconds=5),
    Case("repeat-nested", edit("  - relu", "  - {repeat: 1000, of: [{repeat: 1000, of: [relu]}]}"),
         says=("rows",), line=8, seconds=5),
    # 5. numbers: lr at the edge of float32; infinity
    Case("lr-beyond-float32", edit("lr: 0.05", "lr: 1.0e200"), says=("float32",), line=10),
    # 6. accepted but wrong
    Case("width-true", edit("width: 16", "width: true"), says=("whole number",), line=7),
    Case("width-text", edit("width: 16", 'width: "16"'), says=("whole number", "(text)"), line=7),
    Case("lr-true", edit("lr: 0.05", "lr: true"), says=("number",), line=10),
    Case("lr-inf", edit("lr: 0.05", "lr: .inf"), says=("finite",), line=10),
    Case("steps-float", edit("steps: 4", "steps: 4.5"), says=("whole number",), line=10),
    Case("vary-inf", edit("lr: 0.05", "lr: {vary: [0.001, .inf]}"), says=("finite",), line=10),
    Case("vary-step-0", edit("width: 16", "width: {vary: [8, 32], step: 0}"), says=("step",), line=7),
    Case("init-negative-gain", edit("init: he", "init: {name: he, gain: -1}"), says=("gain",), line=7),
    Case("threshold-nan", args=("diagnose", "RUN", "--threshold", "FLOW=nan,nan"), says=("finite",)),
    Case("steps-1e20", args=("simulate", "DESIGN", "--steps", str(10**20), "--out", "TMP/r"),
         says=("steps",), line=10, absent=("memory",)),
    Case("one-sample-with-val", edit("n: 200", "n: 1"), says=("validation",), line=4),
    Case("hessian-yes", edit("hessian: false", "hessian: yes"), says=("true or false",), line=11),
    Case("threshold-typo", edit("probe:", "diagnose: {thresholds: {FLWO: [10, 20]}}\nprobe:"),
         says=("FLOW",), line=11),
    Case("csv-one-class", _csv(ONE_CLASS), says=("single class",), line=4),
    Case("csv-1e300", _csv(_cell("1e300")), says=("line 5", "float32"), line=4),
    Case("csv-nan", _csv(_cell("nan")), says=("line 5", "nan"), line=4),
    Case("csv-inf", _csv(_cell("inf")), says=("line 5", "infinite"), line=4),
    Case("csv-text", _csv(_cell("abc")), says=("line 5", "not a number"), line=4),
    Case("npz-nan", _npz(X=np.array([[0.0, np.nan]] * 6), y=np.array([0, 1] * 3)),
         args=("simulate", "DESIGN", "--out", "TMP/r"), says=("nan", "sample 0"), line=4),
    Case("npz-text-x", _npz(X=np.array([["a", "b"]] * 6), y=np.array([0, 1] * 3)), says=("numeric",), line=4),
    Case("npz-5d-x", _npz(X=np.zeros((6, 1, 1, 2, 2)), y=np.array([0, 1] * 3)), says=("2 or 4 axes",), line=4),
    Case("at-past-the-end", args=("diagnose", "RUN", "--at", "99999"), says=("past the end",)),
    Case("study-empty", edit("lr: 0.05", "lr: {vary: [0.01, 0.1], log: true}"),
         args=("optimize", "DESIGN", "--study", "", "--trials", "1", "--out", "TMP/o"),
         says=("study name",)),
    Case("study-path", edit("lr: 0.05", "lr: {vary: [0.01, 0.1], log: true}"),
         args=("optimize", "DESIGN", "--study", "../up", "--trials", "1", "--out", "TMP/o"),
         says=("study name",)),
    # 7. messages that point at the right thing
    Case("batch-float", edit("batch: 32", "batch: 3.5"), says=("`data.batch`",), absent=("batch.int",), line=4),
    Case("hessian-bad-mapping", edit("hessian: false", "hessian: {evry: 3}"), says=("evry", "every"),
         absent=("valid boolean",), line=11),
    Case("data-folder", _dir_source, says=("folder",), absent=("not found",), line=4),
    Case("data-fifo", _fifo_source, says=("not a regular file",), absent=("not found",), line=4),
    Case("records-empty", args=("diagnose", "RUN:{}"), code=3, says=("not a netlens records file", "rows")),
    Case("records-extra-key", args=("diagnose", "RUN:extra"), code=3, says=("not a netlens records file",),
         absent=("__init__",)),
    Case("version-text", edit("netlens: 1", 'netlens: "1"'), says=("(text)", "no quotes"), line=1),
    Case("merge-key", "base: &b {width: 16}\n" + edit("linear: {width: 16, init: he}",
                                                      "linear: {<<: *b, init: he}"), code=2,
         says=("unknown section `base`",)),         # `<<` itself is accepted; `base:` is no section
    Case("date-value", edit("name: tiny", "name: tiny\nabout: 2024-01-01"), says=("quote",), line=3),
    Case("tag", edit("lr: 0.05", "lr: !!python/object:os.system 1"), says=("tags",), line=10),
    Case("not-utf8", lambda tmp: None, says=("utf-8", "line 3"), line=3),
    Case("nul-byte", BASE.replace("seed: 0", "seed: 0\0"), says=("nul",), line=3),
    Case("top-level-scalar", "just a line\n", says=("mapping",), line=1),
    Case("design-is-folder", lambda tmp: None, args=("paraxial", "TMP"), says=("folder",)),
]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """One tiny run folder for the cases that judge a run."""
    from typer.testing import CliRunner

    from netlens.cli import app

    tmp = tmp_path_factory.mktemp("run")
    (tmp / "design.yaml").write_text(BASE)
    r = CliRunner().invoke(app, ["simulate", str(tmp / "design.yaml"), "--out", str(tmp / "run"), "-q"])
    assert r.exit_code == 0, r.output
    return tmp / "run"


def _records_variant(run_dir: Path, tmp: Path, kind: str) -> Path:
    folder = tmp / f"run-{'empty' if kind == '{}' else kind}"
    folder.mkdir()
    (folder / "design.yaml").write_text((run_dir / "design.yaml").read_text())
    if kind == "{}":
        (folder / "records.json").write_text("{}")
    else:
        d = json.loads((run_dir / "records.json").read_text())
        d["surprise"] = 1
        (folder / "records.json").write_text(json.dumps(d))
    return folder


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, tmp_path, run_dir, monkeypatch):
    from typer.testing import CliRunner

    from netlens.cli import app

    monkeypatch.chdir(tmp_path)                     # any default runs/ folder lands here
    design = tmp_path / "design.yaml"
    if case.id == "not-utf8":
        design.write_bytes(BASE.replace("seed: 0", "seed: 0 # caf\xe9").encode("latin-1"))
    elif callable(case.design):
        text = case.design(tmp_path)
        if text is not None:
            design.write_text(text)
    else:
        design.write_text(case.design)
    args = []
    for a in case.args:
        if a == "DESIGN":
            a = str(design)
        elif a == "RUN":
            a = str(run_dir)
        elif a.startswith("RUN:"):
            a = str(_records_variant(run_dir, tmp_path, a[4:]))
        elif a.startswith("TMP"):
            a = str(tmp_path) + a[3:]
        args.append(a)
    if len(args) == 1:
        args.append(str(design))
    t0 = time.perf_counter()
    r = CliRunner().invoke(app, args)
    took = time.perf_counter() - t0
    out = r.output
    assert r.exception is None or isinstance(r.exception, SystemExit), \
        f"traceback: {r.exception!r}\n{out}"
    assert "Traceback" not in out
    assert r.exit_code == case.code, out
    low = out.lower()
    for s in case.says:
        assert s.lower() in low, f"{s!r} not in: {out}"
    for s in case.absent:
        assert s.lower() not in low, f"{s!r} in: {out}"
    if case.line is not None:
        assert re.search(rf"{re.escape(design.name)}:{case.line}\b", out), out
    assert took < case.seconds, f"took {took:.1f} s"
    if args[0] == "simulate" and case.code != 0:
        assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
