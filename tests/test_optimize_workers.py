"""Studies shared between processes: interrupt and resume, `--workers 2`, and two commands on one
PostgreSQL study — real processes, real storage, no mocks."""
from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import pytest

from tests.conftest import ROOT, finished_trials

# Long enough per trial (~0.5 s) that workers overlap and an interrupt lands mid-trial.
SLOW = """
netlens: 1
name: slow
seed: 0
data: {source: digits, n: 600, batch: 32}
layers:
  - flatten
  - linear: {width: {vary: [16, 64], step: 16}, init: he}
  - relu
  - linear: 10
train: {optimizer: sgd, momentum: 0.9, lr: {vary: [1.0e-3, 0.3], log: true}, steps: 200}
probe: {every: 50, batch: 64, hessian: false}
"""

FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


def _netlens(*args, **kw) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-m", "netlens", *map(str, args)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def _load(url: str, name: str):
    return optuna.load_study(study_name=name, storage=url)


@pytest.mark.slow
def test_an_interrupted_study_resumes_with_its_trials(write, tmp_path):
    path = write(SLOW)
    url = f"sqlite:///{tmp_path / 'slow.optuna.db'}"
    proc = _netlens("optimize", path, "--trials", "60", "--pruner", "none", "--out", tmp_path, "--json")
    deadline = time.time() + 600                       # a bound, not a timing: it breaks early
    while time.time() < deadline:                       # let a few trials finish, then Ctrl-C
        time.sleep(0.5)
        if finished_trials(tmp_path / "slow.optuna.db") >= 3:
            break
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "run the same command again" in err
    doc = json.loads(out)                               # partial results are still reported
    assert doc["this_run"]["interrupted"]

    before = {t.number: t for t in _load(url, "slow").trials}
    kept = {n: t for n, t in before.items() if t.state in FINISHED}
    assert len(kept) >= 3 and all(t.state != optuna.trial.TrialState.RUNNING for t in before.values())
    for t in before.values():                           # only the trial in flight was lost
        if t.state == optuna.trial.TrialState.FAIL:
            assert t.user_attrs.get("failed_reason") == "interrupted"

    want = len(kept) + 2
    again = _netlens("optimize", path, "--trials", want, "--pruner", "none", "--out", tmp_path, "--json")
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    doc = json.loads(out)
    after = _load(url, "slow").trials
    assert len([t for t in after if t.state in FINISHED]) == want
    for n, t in kept.items():                           # the earlier trials, untouched
        assert after[n].state == t.state and after[n].params == t.params and after[n].values == t.values
    assert len(doc["this_run"]["trials"]) == 2 and min(doc["this_run"]["trials"]) > max(before)
    assert doc["start"]["trial"] == 0


@pytest.mark.slow
def test_two_workers_share_the_study_and_stop_at_the_count(write, cli, tmp_path):
    path = write(SLOW)
    r = cli("optimize", path, "--trials", "14", "--workers", "2", "--pruner", "none", "--out", tmp_path, "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    study = _load(f"sqlite:///{tmp_path / 'slow.optuna.db'}", "slow")
    finished = [t for t in study.trials if t.state in FINISHED]
    assert len(study.trials) == len(finished) == 14          # exactly the count, none failed
    by_worker = doc["this_run"]["by_worker"]
    # Both workers started and reported. How the 14 trials split between them depends on how fast
    # each process got going on this machine, so the test asserts only what holds on any schedule:
    # every trial number once, none twice, each stamped by the process that ran it.
    assert set(by_worker) == {"0", "1"}, by_worker
    assert sorted(by_worker["0"] + by_worker["1"]) == list(range(14))
    stamp = {t.number: t.user_attrs["worker"] for t in study.trials}
    for trials in by_worker.values():
        assert len({stamp[n] for n in trials}) <= 1          # one worker, one process
    assert len(set(stamp.values())) == sum(1 for trials in by_worker.values() if trials)
    assert doc["this_run"]["threads_per_worker"] >= 1


# -- a throw-away PostgreSQL cluster --------------------------------------------------------------
def _postgres_bindir() -> Path | None:
    if shutil.which("pg_config") is None:
        return None
    out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True)
    bindir = Path(out.stdout.strip())
    return bindir if (bindir / "initdb").exists() and (bindir / "pg_ctl").exists() else None


@pytest.fixture
def postgres_url():
    bindir = _postgres_bindir()
    if bindir is None:
        pytest.skip("no PostgreSQL server binaries (pg_config --bindir has no initdb/pg_ctl): "
                    "install postgresql to run the multi-process PostgreSQL test")
    as_user: list[str] = []
    if os.geteuid() == 0:                   # initdb refuses to run as root
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no `postgres` user to run initdb as")
        as_user = ["runuser", "-u", "postgres", "--"]
    home = Path(tempfile.mkdtemp(prefix="netlens-pg-"))       # short path: the socket lives here
    if as_user:
        shutil.chown(home, "postgres")
    data, port = home / "data", 20000 + os.getpid() % 20000
    try:
        subprocess.run([*as_user, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "netlens",
                        "--no-sync", "-E", "UTF8"], check=True, capture_output=True)
        subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(home / "log"), "-w",
                        "-o", f"-k {home} -c listen_addresses='' -p {port} -c fsync=off", "start"],
                       check=True, capture_output=True)
        yield f"postgresql://netlens@/postgres?host={home}&port={port}"     # the README's form
    finally:
        subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(home, ignore_errors=True)


@pytest.mark.slow
def test_two_commands_on_one_postgresql_study(write, tmp_path, postgres_url):
    path = write(SLOW)
    args = ("optimize", path, "--trials", "12", "--storage", postgres_url, "--study", "shared",
            "--pruner", "none", "--json")
    procs = [_netlens(*args, "--out", tmp_path / name) for name in ("a", "b")]   # two "machines"
    docs = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        docs.append(json.loads(out))
    assert docs[0]["storage"].startswith("postgresql://netlens@/postgres")
    ran = [doc["this_run"]["trials"] for doc in docs]
    assert all(ran), ran                                       # both contributed …
    assert not set(ran[0]) & set(ran[1])                       # … no trial was run twice …
    study = _load(postgres_url, "shared")
    numbers = [t.number for t in study.trials]
    assert sorted(numbers) == list(range(12)) == sorted(ran[0] + ran[1])   # … and none is missing
    assert all(t.state in FINISHED for t in study.trials)      # none failed, none left running
    assert sum(bool(t.user_attrs.get("start")) for t in study.trials) == 1
    assert len({t.user_attrs["worker"] for t in study.trials}) == 2


def test_an_interrupt_between_a_heartbeat_start_and_its_block_leaves_no_thread_running(tmp_path):
    """Optuna starts a trial's (non-daemon) heartbeat thread before entering the block that stops
    it; an interrupt in between left `netlens tolerance` unable to exit. The interrupt path stops
    such a thread."""
    from optuna.storages import RDBStorage
    from optuna.storages._heartbeat import HeartbeatThread

    from netlens.optimize.workers import stop_orphan_heartbeats

    storage = RDBStorage(f"sqlite:///{tmp_path / 'hb.db'}", heartbeat_interval=60)
    study = optuna.create_study(storage=storage)
    trial = study.ask()
    beat = HeartbeatThread(trial._trial_id, storage)
    beat.start()                         # the interrupt lands here: `__exit__` never runs
    orphan = beat._thread
    assert orphan.is_alive()
    assert stop_orphan_heartbeats() == 1
    orphan.join(timeout=30)
    assert not orphan.is_alive()
