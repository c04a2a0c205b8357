"""`simulate`: the run folder, the JSON contract, divergence as a record, Ctrl-C keeps records."""
from __future__ import annotations

import json
import math

import pytest

from netlens.prescription import load_design
from netlens.simulate import simulate
from tests.conftest import MLP


def test_simulate_json_contract_and_run_folder(write, cli, tmp_path):
    out = tmp_path / "run"
    result = cli("simulate", write(MLP), "--json", "--out", out)
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["netlens"] == 1 and doc["design"] == "tiny" and doc["run_dir"] == str(out)
    row = doc["rows"][1]
    assert {"index", "element", "source", "paraxial", "measured", "values"} <= row.keys()
    assert {"gain_db", "flow_db"} <= row["paraxial"].keys()
    assert {"init", "end"} <= row["measured"].keys()
    assert {"train_loss", "val_loss", "train_accuracy", "val_accuracy"} <= doc["metrics"].keys()
    assert [h["step"] for h in doc["history"]] == [0, 10, 20, 30]
    for name in ("design.yaml", "records.json", "summary.json", "loss.png", "gains.png"):
        assert (out / name).stat().st_size > 0, name
    # The same folder again is refused without --force, and allowed with it.
    again = cli("simulate", write(MLP), "--out", out)
    assert again.exit_code == 2 and "--force" in again.stderr
    assert cli("simulate", write(MLP), "--out", out, "--force", "--quiet").exit_code == 0


def test_overrides_from_the_command_line(write, cli, tmp_path):
    result = cli("simulate", write(MLP), "--json", "--steps", "12", "--seed", "5", "--out", tmp_path / "r")
    doc = json.loads(result.stdout)
    assert doc["train"]["steps_done"] == 12


def test_divergence_is_recorded_not_raised(write):
    text = MLP.replace("lr: 0.05", "lr: 1.0e+6").replace("momentum: 0.9", "momentum: 0.0")
    run = simulate(load_design(write(text)))
    div = run.records.divergence
    assert div is not None and div.step < 30
    assert div.quantity in ("output", "loss", "gradient")
    assert run.records.steps_done == div.step
    if div.quantity == "output":
        assert div.row is not None
    assert not math.isfinite(run.records.loss_curve[-1])


def test_interrupt_keeps_what_was_measured(write):
    def stop(step, loss):
        if step == 15:
            raise KeyboardInterrupt

    run = simulate(load_design(write(MLP)), on_step=stop)
    rec = run.records
    assert rec.interrupted and rec.steps_done == 15
    assert [s.step for s in rec.snapshots] == [0, 10, 15]


@pytest.mark.parametrize("precision", ["float64", "bfloat16"])
def test_precisions_run(write, precision):
    text = MLP.replace("steps: 30", f"steps: 10\n  precision: {precision}")
    run = simulate(load_design(write(text)))
    assert run.records.precision == precision and run.records.steps_done == 10
