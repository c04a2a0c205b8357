"""`netlens tolerance` and `netlens compare` with real training: the noise floor, compare's
verdicts, the 1-ulp twin of a stable and an unstable design, PREC on bfloat16, the yield and an
inverse-sensitivity range, resuming an interrupted run, and bad input (exit 2)."""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import DESIGNS, ROOT, finished_trials

TINY = """
netlens: 1
name: {name}
seed: 0
data: {{source: digits, n: 400, batch: 32}}
layers:
  - flatten
  - linear: {{width: 32, init: he}}
  - relu
  - linear: 10
train: {{optimizer: {optimizer}, lr: {lr}, steps: {steps}, precision: {precision}}}
probe: {{every: 10, batch: 64, hessian: false}}
{extra}
"""


def tiny(write, name="tiny", optimizer="adam", lr="1.0e-3", steps=30, precision="float32", extra=""):
    return write(TINY.format(name=name, optimizer=optimizer, lr=lr, steps=steps,
                             precision=precision, extra=extra), f"{name}.yaml")


def test_the_noise_floor_of_quickstart_has_spread_and_a_resolution(tmp_path):
    from netlens.tolerance import Settings, run_tolerance

    s = Settings(seeds=2, steps=40, only=["noise"], storage=f"sqlite:///{tmp_path / 'q.db'}")
    doc = run_tolerance(DESIGNS / "quickstart.yaml", s, out=tmp_path / "out").to_json()
    v = doc["noise"]["val_loss"]
    assert v["n"] == 2 and v["sd"] > 0
    assert doc["resolution"]["val_loss"] == pytest.approx(2 * v["sd"] * math.sqrt(2 / 2))
    assert doc["noise"]["params"]["sd"] == 0 and doc["resolution"]["params"] == 0
    # init and data order varied separately, each with its own spread
    assert doc["noise_sources"]["init"]["val_loss"]["sd"] > 0
    assert doc["noise_sources"]["order"]["val_loss"]["sd"] > 0
    assert json.loads((tmp_path / "out" / "tolerance.json").read_text())["study"] == doc["study"]


def test_compare_itself_is_indistinguishable_and_lr_1e_5_is_worse(write, cli):
    a = tiny(write, "adam-1e-3")
    same = write(a.read_text().replace("name: adam-1e-3", "name: renamed"), "renamed.yaml")
    slow = tiny(write, "adam-1e-5", lr="1.0e-5")
    r = cli("compare", a, same, slow, "--seeds", "2", "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert [d["name"] for d in doc["designs"]] == ["adam-1e-3", "renamed", "adam-1e-5"]
    mine = [v for v in doc["verdicts"] if v["b"] == "renamed"]
    assert mine and all(v["verdict"] == "indistinguishable" for v in mine)
    loss = next(v for v in doc["verdicts"] if v["b"] == "adam-1e-5" and v["metric"] == "val_loss")
    assert loss["verdict"] == "worse" and loss["sigmas"] < 0
    assert doc["designs"][2]["metrics"]["val_loss"]["mean"] > doc["designs"][0]["metrics"]["val_loss"]["mean"]


def test_the_1_ulp_twin_stays_close_in_a_stable_design_and_flies_apart_in_an_unstable_one(tmp_path):
    from netlens.tolerance import Settings, run_tolerance

    out = {}
    for name in ("stable", "unstable"):
        s = Settings(seeds=2, only=["instability"], storage=f"sqlite:///{tmp_path / 'i.db'}")
        out[name] = run_tolerance(DESIGNS / "tolerance" / f"{name}.yaml", s, out=tmp_path / name).doc["instability"]
    stable, unstable = out["stable"], out["unstable"]
    assert 0 < stable["relative_distance"] < 1e-3
    assert unstable["relative_distance"] > 0.1
    assert stable["unstable"] is False and unstable["unstable"] is True
    assert unstable["doubling_steps"] is not None and unstable["doubling_steps"] < 100
    assert stable["disagreement"] <= unstable["disagreement"]
    assert unstable["seed_disagreement"] > 0
    assert (tmp_path / "unstable" / "instability.png").is_file()


def test_prec_fires_on_bfloat16_updates_of_1e_3_and_not_on_the_float32_twin(write):
    from netlens.aberrations import judge
    from netlens.prescription import load_design
    from netlens.simulate import simulate

    found = {}
    for precision in ("bfloat16", "float32"):
        path = tiny(write, f"p-{precision}", lr="2.0e-4", steps=30, precision=precision)
        run = simulate(load_design(path))
        ratios = [s.rows[1]["update_ratio"] for s in run.records.snapshots if "update_ratio" in s.rows[1]]
        assert 3e-4 < sorted(ratios)[len(ratios) // 2] < 3e-3          # updates ~1e-3 relative
        found[precision] = [f for f in judge(run.records, run.trace).findings if f.code == "PREC"]
    assert found["bfloat16"] and found["bfloat16"][0].severity == "error"
    assert found["bfloat16"][0].value > 0.5
    assert not found["float32"]


def test_a_spec_gives_a_yield_and_an_inverse_sensitivity_range(write, tmp_path, monkeypatch):
    from netlens.tolerance import Settings, run_tolerance

    monkeypatch.setattr("netlens.tolerance.run.INVERSE_STEPS", 2)   # two halvings per side
    path = tiny(write, "spec", optimizer="sgd", lr="0.05", steps=30,
                extra="tolerance:\n  defaults: false\n  train.lr: {factor: [0.5, 2]}\n")
    s = Settings(seeds=2, spec="val_accuracy >= 0.3", monte_carlo=4, only=["sensitivity", "yield"],
                 flagged=["spec", "monte_carlo"])
    doc = run_tolerance(path, s, out=tmp_path / "out").doc
    y = doc["yield"]
    assert y["n"] == 4 and 0 <= y["low"] <= y["fraction"] <= y["high"] <= 1
    assert y["passed"] == round(y["fraction"] * 4)
    assert (tmp_path / "out" / "yield_histogram.png").is_file() and (tmp_path / "out" / "yield_cdf.png").is_file()
    inv = doc["inverse"][0]
    assert inv["operand"] == "train.lr" and inv["low"] < 0.05 < inv["high"]
    assert "before val_accuracy >= 0.3 fails" in inv["text"] or "still meets" in inv["text"]
    assert [r["operand"] for r in doc["sensitivity"]] == ["train.lr", "train.lr"]
    assert {r["verdict"] for r in doc["sensitivity"]} <= {"within_noise", "sensitive", "breaks"}


@pytest.mark.slow
def test_an_interrupted_tolerance_run_resumes_with_only_the_missing_runs(write, tmp_path):
    import optuna

    from netlens.tolerance import Settings, run_tolerance

    path = tiny(write, "resume", optimizer="sgd", lr="0.05", steps=150)
    url = f"sqlite:///{tmp_path / 'resume.optuna.db'}"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "netlens", "tolerance", str(path), "--seeds", "4",
                             "--only", "noise", "--quiet"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    complete = optuna.trial.TrialState.COMPLETE
    deadline = time.time() + 600          # a bound, not a timing: it breaks early
    while time.time() < deadline and proc.poll() is None:      # two runs finished, then Ctrl-C
        time.sleep(0.1)
        # read-only: opening a study the command is still creating would race it for the tables
        if finished_trials(tmp_path / "resume.optuna.db") >= 2:
            break
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=120)
    study = optuna.load_study(study_name=optuna.get_all_study_names(url)[0], storage=url)
    before = len(study.get_trials(states=(complete,)))
    assert before >= 2
    doc = run_tolerance(path, Settings(seeds=4, only=["noise"]), write=False).doc
    assert doc["runs"]["total"] == 10                    # 4 seeds + 3 init + 3 order
    assert doc["runs"]["trained_now"] == 10 - before
    assert doc["noise"]["val_loss"]["n"] == 4


def test_bad_input_is_exit_2_with_a_suggestion(write, cli):
    bad = tiny(write, "bad", extra="tolerance:\n  layers[1].linear.widht: {delta: [-8, 8]}\n")
    r = cli("tolerance", bad, "--seeds", "2")
    assert r.exit_code == 2 and "layers[1].linear.width" in r.output and "Did you mean" in r.output
    ok = tiny(write, "ok")
    r = cli("tolerance", ok, "--spec", "accuracy >= 0.95")
    assert r.exit_code == 2 and "names no operand" in r.output and "val_accuracy" in r.output
    r = cli("tolerance", ok, "--spec", "0.95 <= 1")
    assert r.exit_code == 2 and "names no operand" in r.output
    r = cli("tolerance", ok, "--seeds", "1")
    assert r.exit_code == 2 and "at least 2 seeds" in r.output and "--seeds 3" in r.output
    r = cli("compare", ok, ok, "--seeds", "1")
    assert r.exit_code == 2
    r = cli("tolerance", ok, "--only", "nosie")
    assert r.exit_code == 2 and "noise" in r.output


def test_diagnose_verify_over_seeds_says_whether_a_correction_is_beyond_noise(write, cli, tmp_path):
    path = tiny(write, "bf", lr="2.0e-4", steps=30, precision="bfloat16",     # PREC the only error
                extra="diagnose:\n  thresholds: {STAL: {warn: null, error: null}}\n")
    r = cli("diagnose", path, "--fix", "--verify", "--seeds", "2", "--out", tmp_path / "run", "--json")
    assert r.exit_code in (0, 1), r.output
    doc = json.loads(r.stdout)
    prec = next(f for f in doc["findings"] if f["code"] == "PREC")
    assert prec["severity"] == "error" and prec["corrections"][0]["name"] == "set_precision"
    step = next(c for c in doc["verify"]["corrections"] if c["correction"] == "set_precision")
    noise = step["noise"]
    assert set(noise) == {"val_loss", "val_accuracy", "train_loss"}
    for v in noise.values():
        assert v["before"]["n"] == 2 and v["after"]["n"] == 2
        assert v["verdict"] in ("better", "worse", "indistinguishable")
    assert "at 2 seeds" in step["reason"]
