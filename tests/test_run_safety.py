"""Nothing lost, nothing written out of place: run folders claimed atomically, `--force` clears
only what a run owns, read-only targets refused before training, interrupts during the write,
a SIGKILLed optimize worker's trial, Ctrl-C with two workers, concurrent plot writes and the
missing-driver message. Real processes, real files, real SQLite — no mocks."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, TINY

VARY = TINY.replace("lr: 0.05", "lr: {vary: [0.01, 0.1], log: true}")


def _design(tmp: Path, steps: int = 4, text: str = TINY, name: str = "design.yaml") -> Path:
    path = tmp / name
    path.write_text(text.replace("STEPS", str(steps)))
    return path


def _netlens(*args, cwd=None, **kw) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-m", "netlens", *map(str, args)], cwd=cwd or ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def _cli(*args):
    from typer.testing import CliRunner

    from netlens.cli import app

    r = CliRunner().invoke(app, [str(a) for a in args])
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    return r


# -- 8. run folders ------------------------------------------------------------------------------
def test_concurrent_claims_never_share_a_folder(tmp_path, monkeypatch):
    from netlens.runs import pick_dir

    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "tiny").mkdir(parents=True)       # an empty leftover is not reused
    got: list[Path] = []
    barrier = threading.Barrier(8)

    def claim() -> None:
        barrier.wait()
        got.append(pick_dir("tiny", None, False))

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(got)) == 8 and all(p.is_dir() for p in got)
    assert Path("runs/tiny") not in got
    assert sorted(p.name for p in got) == sorted(f"tiny-{n}" for n in range(2, 10))


def test_two_simulations_of_one_design_at_once_keep_both_runs(tmp_path):
    design = _design(tmp_path, steps=6)
    procs = [_netlens("simulate", design, "--json", cwd=tmp_path) for _ in range(2)]
    dirs = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        dirs.append(json.loads(out)["run_dir"])
    assert sorted(Path(d).name for d in dirs) == ["tiny", "tiny-2"]
    for d in dirs:
        assert json.loads((tmp_path / d / "records.json").read_text())["steps_done"] == 6


def test_force_clears_what_the_run_owns_and_nothing_else(tmp_path):
    design = _design(tmp_path)
    out = tmp_path / "out"
    assert _cli("diagnose", design, "--out", out, "-q").exit_code in (0, 1)
    assert (out / "diagnosis.json").exists() and (out / "aberrations.png").exists()
    (out / "notes.txt").write_text("mine")
    (out / ".records.json.k1ll3d").write_text("")          # a temp file a killed write left
    r = _cli("simulate", design, "--out", out, "-q")
    assert r.exit_code == 2 and "--force" in r.output
    assert _cli("simulate", design, "--out", out, "--force", "-q").exit_code == 0
    left = sorted(p.name for p in out.iterdir())
    assert "diagnosis.json" not in left and "aberrations.png" not in left
    assert "notes.txt" in left and ".records.json.k1ll3d" not in left
    assert {"records.json", "design.yaml", "summary.json"} <= set(left)


def test_out_holding_the_design_is_refused(tmp_path):
    design = _design(tmp_path)
    r = _cli("simulate", design, "--out", tmp_path, "--force", "-q")
    assert r.exit_code == 2 and "prescription itself" in r.output
    assert design.read_text() == TINY.replace("STEPS", "4")


def test_an_unwritable_target_fails_before_training(tmp_path):
    design = _design(tmp_path, steps=100_000)                 # would train for minutes
    (tmp_path / "file").write_text("")
    t0 = time.perf_counter()
    r = _cli("simulate", design, "--out", tmp_path / "file" / "run")
    assert r.exit_code == 2 and "cannot create the run folder" in r.output, r.output
    r = _cli("optimize", _design(tmp_path, 100_000, VARY, "v.yaml"), "--trials", "1",
             "--out", tmp_path / "file" / "o")
    assert r.exit_code == 2 and "cannot create" in r.output, r.output
    assert time.perf_counter() - t0 < 60                       # refused, not trained


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_folder_fails_before_training(tmp_path):
    design = _design(tmp_path, steps=100_000)
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        r = _cli("simulate", design, "--out", ro)
        assert r.exit_code == 2 and "cannot write" in r.output, r.output
        inside = ro / "d"
        ro.chmod(0o755)
        inside.mkdir()
        v = _design(inside, 100_000, VARY, "v.yaml")
        inside.chmod(0o555)
        r = _cli("optimize", v, "--trials", "1")
        assert r.exit_code == 2 and "cannot" in r.output, r.output
    finally:
        for p in (ro, ro / "d"):
            if p.exists():
                p.chmod(0o755)


def test_optimize_out_with_other_files_needs_force(tmp_path):
    design = _design(tmp_path, 2, VARY)
    out = tmp_path / "o"
    out.mkdir()
    (out / "thesis.tex").write_text("mine")
    r = _cli("optimize", design, "--trials", "1", "--out", out)
    assert r.exit_code == 2 and "thesis.tex" in r.output and "--force" in r.output
    assert _cli("optimize", design, "--trials", "1", "--out", out, "--force").exit_code == 0
    assert (out / "thesis.tex").read_text() == "mine" and (out / "trials.csv").exists()
    assert _cli("optimize", design, "--trials", "2", "--out", out, "--force").exit_code == 0


# -- 9. interrupts -------------------------------------------------------------------------------
def test_ctrl_c_is_held_back_while_the_records_are_written(tmp_path):
    """A Ctrl-C that lands while the records are written is delivered after them (own process:
    signals reach only a main thread, which a pytest-xdist worker's test may not run in)."""
    code = (
        "import os, signal, sys; from pathlib import Path\n"
        "from netlens.report.files import write_text; from netlens.runs import held_interrupts\n"
        "try:\n"
        "    with held_interrupts():\n"
        "        os.kill(os.getpid(), signal.SIGINT)\n"
        "        write_text(Path(sys.argv[1]), '{}')\n"
        "        print('written', flush=True)\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted after', Path(sys.argv[1]).read_text(), flush=True)\n"
    )
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "records.json")], env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["written", "interrupted", "after", "{}"]


def test_an_interrupted_simulation_keeps_its_records_or_leaves_nothing(tmp_path):
    """Ctrl-C at whatever moment it lands: exit 130, and either a complete run folder with
    records that diagnose reads, or (before training began) no folder at all; never a temp file."""
    design = _design(tmp_path, steps=2000)
    p = _netlens("simulate", design, cwd=tmp_path)
    deadline = time.time() + 120
    while time.time() < deadline and not (tmp_path / "runs" / "tiny").exists():
        time.sleep(0.1)
    time.sleep(1.0)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130, err
    assert "Traceback" not in err
    run = tmp_path / "runs" / "tiny"
    if run.exists():
        names = {q.name for q in run.iterdir()}
        assert {"records.json", "design.yaml"} <= names, names
        assert not [n for n in names if n.startswith(".")]
        r = _cli("diagnose", run, "--json")
        assert r.exit_code in (0, 1), r.output


def test_diagnose_judges_an_interrupted_run_folder_and_says_so(tmp_path):
    design = _design(tmp_path, steps=6)
    run = tmp_path / "run"
    assert _cli("simulate", design, "--out", run, "-q").exit_code == 0
    records = json.loads((run / "records.json").read_text())
    records["interrupted"] = True                             # as an interrupted run writes them
    (run / "records.json").write_text(json.dumps(records))
    (run / ".records.json.x7Qz").write_text("")               # a temp file a SIGKILL left
    r = _cli("diagnose", run)
    assert r.exit_code in (0, 1), r.output
    assert "interrupted after 6 of 6 steps" in r.output
    doc = json.loads((run / "diagnosis.json").read_text())
    assert any("interrupted" in n for n in doc["notes"])


# -- 10. optimize under faults -------------------------------------------------------------------
def _states(db: Path) -> list[str]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as con:
        return [s for (s,) in con.execute("SELECT state FROM trials ORDER BY number")]


def _heartbeats(db: Path) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as con:
        return con.execute("SELECT count(*) FROM trial_heartbeats").fetchone()[0]


def _poll(db: Path, ok, timeout: float = 180) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if db.exists() and ok(_states(db)):
                return
        except sqlite3.Error:
            pass
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting on {db}")


@pytest.mark.slow
def test_a_killed_workers_trial_is_failed_and_does_not_block_the_study(tmp_path):
    design = _design(tmp_path, 100_000, VARY)                  # a trial that is surely mid-way
    db = tmp_path / "tiny.optuna.db"
    p = _netlens("optimize", design, "--trials", "1", "--pruner", "none", "--out", tmp_path / "o")
    _poll(db, lambda s: s == ["RUNNING"] and _heartbeats(db) == 1)
    p.kill()                                                   # SIGKILL: no chance to clean up
    p.communicate(timeout=60)
    assert _states(db) == ["RUNNING"]
    with sqlite3.connect(db) as con:                           # a minute later, as it were
        con.execute("UPDATE trial_heartbeats SET heartbeat = '2000-01-01 00:00:00.000000'")
    r = _netlens("optimize", design, "--trials", "1", "--steps", "4", "--pruner", "none",
                 "--out", tmp_path / "o", "--json")
    out, err = r.communicate(timeout=300)
    assert r.returncode == 0, err
    assert _states(db) == ["FAIL", "COMPLETE"]
    assert json.loads(out)["this_run"]["trials"] == [1]


@pytest.mark.slow
def test_ctrl_c_with_two_workers_exits_130_and_stops_the_children(tmp_path):
    design = _design(tmp_path, 400, VARY)
    db = tmp_path / "tiny.optuna.db"
    p = _netlens("optimize", design, "--trials", "40", "--workers", "2", "--pruner", "none",
                 "--out", tmp_path / "o")
    _poll(db, lambda s: s.count("COMPLETE") >= 2 and "RUNNING" in s)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130, err
    assert "Traceback" not in err and "run the same command again" in err
    states = _states(db)
    assert "RUNNING" not in states and "WAITING" not in states, states
    alive = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmd = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            if b"netlens.optimize.workers" in cmd and str(design).encode() in cmd:
                alive.append(proc.name)
    assert not alive, f"workers still running: {alive}"
    assert _states(db) == states                               # nothing took a trial afterwards


def test_concurrent_plot_writes_use_their_own_temp_names(tmp_path):
    code = (
        "import sys; from pathlib import Path; import matplotlib; matplotlib.use('Agg');"
        "import matplotlib.pyplot as plt; from netlens.optimize.plots import _save\n"
        "for i in range(15):\n"
        "    fig, ax = plt.subplots(); ax.plot([0, i]); _save(ax, Path(sys.argv[1]), plt)\n"
    )
    target = tmp_path / "slices.png"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    procs = [subprocess.Popen([sys.executable, "-c", code, str(target)], env=env,
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]
    for p in procs:
        _, err = p.communicate(timeout=180)
        assert p.returncode == 0, err
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [q.name for q in tmp_path.iterdir()] == ["slices.png"]


# -- 11. the database driver a URL needs ---------------------------------------------------------
def test_missing_driver_message_names_the_package_for_the_url(tmp_path):
    from netlens.optimize.storage import driver_hint

    assert '"netlens[postgres]"' in driver_hint("postgresql://u@host/db")
    assert "psycopg2-binary" in driver_hint("postgresql+psycopg2://u@host/db")
    assert "pymysql" in driver_hint("mysql+pymysql://u@host/db")
    design = _design(tmp_path, 2, VARY)
    r = _cli("optimize", design, "--trials", "1", "--storage", "postgresql+pg8000://u@localhost/db",
             "--out", tmp_path / "o")
    assert r.exit_code == 3 and "pip install pg8000" in r.output, r.output


def test_postgresql_url_uses_psycopg_3():
    from sqlalchemy.engine import make_url

    assert make_url("postgresql://u@h/db").get_dialect().driver == "psycopg"
    import psycopg  # noqa: F401  (the `postgres` and `test` extras install it)
