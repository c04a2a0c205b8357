"""The judging window (netlens/aberrations/window.py) on hand-written records: a trainability
symptom at init or early is judged; one that appears late is info in a network that fitted its
training set and keeps its severity in one that did not; a value a probe did not record is not
judged. Also the thread policy's choice and `--fix` on info-only findings. No training here
except one tiny run for `--fix`."""
from __future__ import annotations

import math

from netlens.aberrations import judge
from netlens.instruments.records import RowMeta, RunRecords, Snapshot
from netlens.train.threads import LARGE_MACS, LARGE_THREADS, choose, forward_macs
from tests.conftest import ROOT


def _records(dead: dict[int, float], losses: dict[int, float], accuracy: float, missing=()) -> RunRecords:
    """A linear 8 → relu network probed every 10 steps to step 100; `dead[step]` is the relu's
    dead fraction, `losses[step]` the training loss (held until the next given step)."""
    rows = [RowMeta(0, "linear 8", "linear", "layer", "x.yaml:3", "layers[0]", None, None, 0, -1, 72, [8], 8),
            RowMeta(1, "relu", "relu", "activation", "x.yaml:4", "layers[1]", None, None, 0, 0, 0, [8], 8)]
    snaps, loss = [], math.nan
    for step in range(0, 101, 10):
        loss = losses.get(step, loss)
        relu = {"q": 0.5, "p": 0.5}
        if step not in missing:
            relu["dead"] = dead.get(step, 0.0)
        snaps.append(Snapshot(step, [{"q": 1.0, "p": 1.0}, relu], input_q=1.0, input_p=1.0,
                              train_loss=loss, probe_loss=loss,
                              train_accuracy=accuracy if step > 0 else 0.1))
    return RunRecords("x", "classification", 10, "cross_entropy", "sgd", 0.1, 0.0, 32, 100, 100,
                      10, "cpu", "float32", rows, snapshots=snaps)


def _dead(dx):
    return [f for f in dx.findings if f.code == "DEAD"]


def test_a_late_symptom_in_a_network_that_fitted_is_info():
    rec = _records({s: 0.5 for s in range(60, 101, 10)}, {0: 2.3, 20: 0.05}, accuracy=1.0)
    [f] = _dead(judge(rec))
    assert f.severity == "info" and f.step == 60 and f.threshold == 0.4
    assert "did not stop training" in f.message and "steps 0–19" in f.message
    assert judge(rec).severity[1]["DEAD"] == "info"


def test_a_late_symptom_in_a_network_that_did_not_fit_keeps_its_severity():
    rec = _records({s: 0.5 for s in range(60, 101, 10)}, {0: 2.3, 20: 2.2}, accuracy=0.2)
    [f] = _dead(judge(rec))
    assert f.severity == "error" and "did not fit its training set" in f.message
    assert judge(rec).reaches("error")


def test_a_symptom_at_init_is_judged_whatever_the_outcome():
    rec = _records({0: 0.5}, {0: 2.3, 20: 0.05}, accuracy=1.0)
    [f] = _dead(judge(rec))
    assert f.severity == "error" and f.step == 0
    assert f.message.startswith("at initialization:") and "judged over steps 0–19" in f.message


def test_the_window_ends_at_half_the_run_when_the_loss_never_falls():
    rec = _records({40: 0.2}, {0: 2.3}, accuracy=0.1)
    [f] = _dead(judge(rec))
    assert f.severity == "warn" and f.step == 40 and "judged over steps 0–50" in f.message
    assert any("did not fit" in n for n in judge(rec).notes)


def test_a_value_a_probe_did_not_record_is_not_judged():
    rec = _records({30: 0.5}, {0: 2.3}, accuracy=0.1, missing=(30,))
    assert not _dead(judge(rec))
    rec.snapshots[5].rows[1] = {}                # a probe that recorded nothing for the row
    judge(rec)


def test_thread_policy_one_thread_for_small_models():
    class Row:
        def __init__(self, params, shape):
            self.params, self.out_shape = params, shape

    class Trace:
        rows = [Row(8320, (128,)), Row(0, (128,)), Row(1290, (10,))]

    assert forward_macs(Trace, 64) == (8320 + 1290) * 64
    assert choose("auto", Trace, 64, available=16) == 1
    conv = type("T", (), {"rows": [Row(1168, (16, 8, 8))]})
    assert forward_macs(conv, 1) == 1168 * 64             # once per output position
    big = type("T", (), {"rows": [Row(int(LARGE_MACS), (1024,))]})
    assert choose("auto", big, 1, available=16) == LARGE_THREADS
    assert choose("auto", big, 1, available=2) == 2
    assert choose(3, Trace, 64, available=1) == 3


def test_fix_writes_nothing_for_info_findings(cli, write, tmp_path):
    import json

    # A healthy recipe whose tanh units saturate after it has fitted: SATR info, nothing to correct.
    design = write((ROOT / "designs/healthy/wine-tanh-xavier.yaml").read_text())
    r = cli("diagnose", design, "--fix", "--json", "--out", tmp_path / "run")
    doc = json.loads(r.stdout)
    info = [f for f in doc["findings"] if f["severity"] == "info"]
    assert info and all(f["corrections"] == [] for f in info)
    assert not [f for f in doc["findings"] if f["severity"] in ("warn", "error")]
    assert doc["fix"]["written"] is False and doc["fix"]["patch"] is None
    assert not list(tmp_path.rglob("*.fixed.yaml")) and not list(design.parent.glob("*.fixed.yaml"))
