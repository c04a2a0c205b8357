"""`netlens optimize` on tiny designs with real Optuna studies in SQLite files (README, "netlens optimize")."""
from __future__ import annotations

import json

import optuna
import pytest

from netlens.optimize.merit import parse_constraint, parse_merit
from netlens.prescription import load_design

# A digits MLP whose learning rate as written (1e-4 with SGD) is far too low to learn in 40 steps.
POOR = """
netlens: 1
name: poor
seed: 0
data: {source: digits, n: 300, batch: 32}
layers:
  - flatten
  - linear: {width: 32, init: he}
  - relu
  - linear: 10
train:
  optimizer: sgd
  momentum: 0.9
  lr: {vary: [1.0e-4, 1.0], log: true, start: 1.0e-4}   # the variable cell
  steps: 40
probe: {every: 10, batch: 64, hessian: false}
"""

# Nine relu layers whose init is a variable: σ_w² = 0.3 loses ~8 dB of gradient power per layer
# (χ = 0.3·½), far past FLOW's −40 dB error level at step 0; a large lr diverges (DIVG).
DEEP = """
netlens: 1
name: deep
seed: 0
data: {source: digits, n: 300, batch: 32}
layers:
  - flatten
  - linear: {width: 32, init: he}
  - relu
  - repeat: 8
    of:
      - linear: {width: 32, init: {choose: [he, {sigma_w2: 0.3}]}}
      - relu
  - linear: 10
train: {optimizer: sgd, lr: {vary: [1.0e-3, 30.0], log: true, start: 0.01}, momentum: 0.9, steps: 40}
probe: {every: 10, batch: 64, hessian: false}
"""


def _study(path, name):
    return optuna.load_study(study_name=name, storage=f"sqlite:///{path.parent / (name + '.optuna.db')}")


def _json(result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_best_beats_a_poor_start_and_is_written_back(write, cli, tmp_path):
    path = write(POOR)
    doc = _json(cli("optimize", path, "--trials", "12", "--out", tmp_path / "out", "--json"))
    assert set(doc) >= {"study", "storage", "start", "best", "trials", "importances", "best_design"}
    assert doc["study"] == "poor" and doc["storage"].endswith("poor.optuna.db")
    start, best = doc["start"]["value"], doc["best"]["value"]
    assert best < 0.5 * start, (start, best)
    assert doc["trials"]["complete"] + doc["trials"]["pruned"] == 12
    assert doc["best"]["params"]["train.lr"] > 1e-3
    assert doc["importances"] == {"train.lr": pytest.approx(1.0)}
    assert "train.lr" in doc["importance_note"]
    for name in ("history.png", "slices.png", "importances.png", "trials.csv"):
        assert (tmp_path / "out" / name).stat().st_size > 0

    # The written prescription keeps the variable marker, with `start:` at the best value, and
    # simulating it reproduces the best trial's merit exactly (same seed, CPU).
    from netlens.simulate import simulate

    text = (tmp_path / "out" / "poor.best.yaml").read_text()
    assert doc["best_design"] == str(tmp_path / "out" / "poor.best.yaml")
    assert "vary: [1.0e-4, 1.0]" in text and "# the variable cell" in text
    again = load_design(tmp_path / "out" / "poor.best.yaml")
    assert again.variables[0].start == doc["best"]["params"]["train.lr"]
    assert simulate(again).records.at("end").val_loss == pytest.approx(best, rel=1e-6)


def test_a_rerun_adds_only_the_missing_trials(write, cli, tmp_path):
    path = write(POOR)
    first = _json(cli("optimize", path, "--trials", "5", "--out", tmp_path, "--json"))
    done = {t.number: t.params for t in _study(path, "poor").trials}
    second = _json(cli("optimize", path, "--trials", "8", "--out", tmp_path, "--json"))
    assert first["this_run"]["trials"] == [0, 1, 2, 3, 4]
    assert second["this_run"]["trials"] == [5, 6, 7]
    study = _study(path, "poor")
    assert {t.number: t.params for t in study.trials if t.number < 5} == done
    assert sum(t.user_attrs.get("start", False) for t in study.trials) == 1   # enqueued once
    third = _json(cli("optimize", path, "--trials", "8", "--out", tmp_path, "--json"))
    assert third["this_run"]["trials"] == [] and third["best"] == second["best"]


def test_median_pruning_prunes_and_saves_steps(write, cli, tmp_path):
    path = write(POOR)
    doc = _json(cli("optimize", path, "--trials", "16", "--out", tmp_path, "--json"))
    study = _study(path, "poor")
    pruned = [t for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]
    assert doc["trials"]["pruned"] == len(pruned) == doc["pruned_by"]["median"] >= 4
    for t in pruned:
        assert t.user_attrs["pruned_by"] == "median"
        assert "above the median" in t.user_attrs["pruned_reason"]
        assert t.user_attrs["steps"] < 40 and t.intermediate_values
    assert doc["steps"]["spent"] < doc["steps"]["planned"]


def test_hyperband_is_available(write, cli, tmp_path):
    path = write(POOR)
    doc = _json(cli("optimize", path, "--trials", "12", "--pruner", "hyperband", "--out", tmp_path, "--json"))
    study = _study(path, "poor")
    pruned = [t for t in study.trials if t.user_attrs.get("pruned_by") == "hyperband"]
    assert doc["pruned_by"].get("hyperband") == len(pruned) > 0
    assert all("Hyperband bracket" in t.user_attrs["pruned_reason"] for t in pruned)


def test_aberration_pruning_records_the_reason(write, cli, tmp_path):
    path = write(DEEP)
    doc = _json(cli("optimize", path, "--trials", "12", "--pruner", "none", "--out", tmp_path, "--json"))
    study = _study(path, "deep")
    by = {t.number: t.user_attrs.get("pruned_by") for t in study.trials if t.state.name == "PRUNED"}
    assert doc["pruned_by"] == {"FLOW": 4, "DIVG": 2}, by
    for t in study.trials:
        if t.user_attrs.get("pruned_by") == "FLOW":
            # the whole stack loses gradient at init: stopped at step 0, before any training
            assert t.params["layers[3].of[0].linear.init"] == "sigma_w2: 0.3"
            assert t.user_attrs["steps"] == 0
            assert "vanishing gradient" in t.user_attrs["pruned_reason"]
            assert "below −40 dB" in t.user_attrs["pruned_reason"]
        if t.user_attrs.get("pruned_by") == "DIVG":
            assert t.params["train.lr"] > 1.0 and t.user_attrs["steps"] < 40
            assert t.user_attrs["pruned_reason"].startswith("divergence")
    # the prescription as written is the reference: never pruned
    assert study.trials[0].user_attrs["start"] and study.trials[0].state.name == "COMPLETE"


def test_weighted_merit_constraint_and_choices(write, cli, tmp_path):
    path = write("""
    netlens: 1
    name: wide
    seed: 1
    data: {source: digits, n: 300, batch: 32}
    layers:
      - flatten
      - linear: {width: {vary: [8, 96], step: 8, start: 96}, init: he}
      - choose: [relu, tanh]
      - linear: 10
    train: {optimizer: adam, lr: {vary: [1.0e-3, 3.0e-2], log: true}, steps: 30}
    probe: {every: 10, batch: 64, hessian: false}
    optimize:
      trials: 10
      merit: {val_loss: 1, params: {weight: 1.0e-4}}
      constraints: [params <= 3000]
    """)
    doc = _json(cli("optimize", path, "--out", tmp_path, "--json"))
    assert doc["objectives"] == ["val_loss + 0.0001*params"]
    assert doc["constraints"] == ["params <= 3000"]
    best = doc["best"]
    parts = best["contributions"][0]
    assert best["value"] == pytest.approx(sum(parts.values()))
    width = best["params"]["layers[1].linear.width"]
    assert parts["0.0001*params"] == pytest.approx(1e-4 * (75 * width + 10))   # 64→w→10, biases
    # the start (width 96: 7,210 parameters) violates the constraint: it runs (it is the
    # reference) but cannot be best; other infeasible trials are stopped before training
    assert doc["start"]["feasible"] is False and best["trial"] != doc["start"]["trial"]
    study = _study(path, "wide")
    for t in study.trials:
        width = t.params["layers[1].linear.width"]
        feasible = 75 * width + 10 <= 3000
        assert (t.constraints["params <= 3000"] <= 0) == feasible
        if not feasible and not t.user_attrs.get("start"):
            assert t.state.name == "PRUNED" and t.user_attrs["pruned_by"] == "constraint"
            assert t.user_attrs["steps"] == 0
    assert best["params"]["layers[2]"] in ("relu", "tanh")
    text = (tmp_path / "wide.best.yaml").read_text()
    assert "choose: [relu, tanh]" in text and f"start: {best['params']['layers[2]']}" in text


def test_pareto_front_of_two_objectives(write, cli, tmp_path):
    path = write(POOR.replace("  - linear: {width: 32, init: he}",
                              "  - linear: {width: {vary: [8, 64], step: 8}, init: he}"))
    doc = _json(cli("optimize", path, "--trials", "8", "--objective", "val_loss", "--objective", "params",
                    "--out", tmp_path, "--json"))
    assert doc["objectives"] == ["val_loss", "params"]
    assert "median" not in doc["pruned_by"]       # Optuna prunes single-objective studies only
    front = doc["pareto"]
    assert front and isinstance(doc["best"]["value"], list) and len(doc["best"]["value"]) == 2
    values = [tuple(r["value"]) for r in front]
    for a in values:     # nobody on the front dominates anybody else on it
        assert not any(b[0] <= a[0] and b[1] <= a[1] and b != a for b in values)
    assert (tmp_path / "pareto.png").exists()


def test_no_variables_is_exit_2_with_how_to_mark_one(write, cli):
    path = write(POOR.replace("{vary: [1.0e-4, 1.0], log: true, start: 1.0e-4}", "0.05"))
    r = cli("optimize", path)
    assert r.exit_code == 2
    assert "no variable cells" in r.output and "vary:" in r.output and "choose:" in r.output


@pytest.mark.parametrize("args, says", [
    (["--merit", "val_loss + 1e-5*parms"], "Did you mean `params`?"),
    (["--merit", "val_loss +"], "ends with `+`"),
    (["--constraint", "params < "], "params <= 50000"),
    (["--merit", "val_loss + 2*GAINS"], "Did you mean `GAIN`?"),
    (["--pruner", "mediann"], "median, hyperband or none"),
])
def test_bad_merit_or_flags_are_exit_2(write, cli, args, says):
    r = cli("optimize", write(POOR), *args)
    assert r.exit_code == 2, r.output
    assert says in r.output


def test_val_error_needs_classification(write, cli):
    path = write(POOR.replace("source: digits, n: 300", "source: diabetes").replace("linear: 10", "linear: 1"))
    r = cli("optimize", path, "--merit", "val_error")
    assert r.exit_code == 2 and "classification" in r.output


def test_a_changed_search_space_refuses_the_old_study(write, cli, tmp_path):
    path = write(POOR)
    _json(cli("optimize", path, "--trials", "1", "--out", tmp_path, "--json"))
    # a range may change (the study samples the new one) …
    path.write_text(path.read_text().replace("vary: [1.0e-4, 1.0]", "vary: [1.0e-4, 2.0]"))
    assert cli("optimize", path, "--trials", "2", "--out", tmp_path).exit_code == 0
    # … but not the cells or their choices, nor the merit: the trials would not compare
    path.write_text(path.read_text().replace("- relu", "- choose: [relu, gelu]"))
    r = cli("optimize", path, "--trials", "4", "--out", tmp_path)
    assert r.exit_code == 2 and "different search space" in r.output and "--study" in r.output
    r = cli("optimize", path, "--trials", "1", "--study", "poor", "--merit", "train_loss",
            "--storage", f"sqlite:///{tmp_path / 'other.db'}", "--out", tmp_path)
    assert r.exit_code == 0, r.output
    r = cli("optimize", path, "--trials", "5", "--merit", "val_loss", "--storage",
            f"sqlite:///{tmp_path / 'other.db'}", "--out", tmp_path)
    assert r.exit_code == 2 and "different merit" in r.output
    assert cli("optimize", path, "--trials", "1", "--study", "gelu", "--out", tmp_path).exit_code == 0


def test_merit_and_constraint_syntax():
    m = parse_merit("val_loss + 1e-5*params~2e+4 + 0.5*FLOW")
    assert [(t.operand.name, t.weight, t.target) for t in m.terms] == [
        ("val_loss", 1.0, None), ("params", 1e-5, 2e4), ("FLOW", 0.5, None)]
    assert m.text == "val_loss + 1e-05*params~20000 + 0.5*FLOW"
    assert m.terms[1].contribution(25000) == pytest.approx(0.05)      # distance from the target
    c = parse_constraint("params >= 100")
    assert c.violation(50) == 50 and c.violation(150) == -50


def test_aberration_operands_are_the_catalog_codes(write):
    from netlens.aberrations import CATALOG
    from netlens.optimize.operands import names

    assert set(CATALOG) <= set(names())
    assert {"val_loss", "val_error", "train_loss", "params", "time"} <= set(names())
