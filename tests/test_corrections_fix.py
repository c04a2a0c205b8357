"""`diagnose --fix / --verify` end to end on small defective designs (docs/corrections.md).

Each design is a small version of a bundled defect (digits n = 500, narrow layers, ≤ 300 steps)
so the suite stays fast; the numbers they must reach are the issue's."""
from __future__ import annotations

import json

import pytest

from netlens.prescription import load_design

pytestmark = pytest.mark.slow

RELU_DEFAULT = """
netlens: 1
name: relu-default
seed: 0
data: {source: digits, n: 500, batch: 32}
layers:
  - flatten
  - repeat: 6                    # deep relu at PyTorch's default init: −7.8 dB per layer
    of:
      - linear: {width: 32, init: default}
      - relu
  - linear: 10
train:
  optimizer: sgd
  lr: 0.05
  steps: 300
probe: {every: 25, hessian: false}
"""

TANH_ORDERED = """
netlens: 1
name: tanh-ordered
seed: 0
data: {source: digits, n: 500, batch: 32}
layers:
  - flatten
  - repeat: 24                   # the ordered phase: χ₁ ≈ 0.66 per layer
    of:
      - linear: {width: 32, init: {sigma_w2: 0.8, sigma_b2: 0.05}}
      - tanh
  - linear: 10
train:
  optimizer: sgd
  lr: 0.05
  steps: 300
probe: {every: 25, hessian: false}
"""

LR_HIGH = """
netlens: 1
name: lr-high
seed: 0
data: {source: digits, n: 500, batch: full}
layers:
  - flatten
  - linear: {width: 64, init: he}
  - relu
  - linear: 10
train:
  optimizer: sgd
  lr: 5.0                        # far past 2/λ
  steps: 150
probe: {every: 10, hessian: {every: 10}}
"""

BN_RELU = """
netlens: 1
name: bn-relu
seed: 0
data: {source: digits, n: 500, batch: 32}
layers:
  - flatten
  - repeat: 30                   # batchnorm's backward gain π/(π−1) per block: explodes
    of:
      - linear: {width: 32, bias: false, init: he}
      - batchnorm
      - relu
  - linear: 10
train:
  optimizer: sgd
  lr: 0.01
  momentum: 0.9
  steps: 150
probe: {every: 25, hessian: false}
"""

HEALTHY = """
netlens: 1
name: healthy
seed: 0
data: {source: digits, n: 500, batch: 32}
layers:
  - flatten
  - linear: {width: 64, init: he}   # a sound small MLP
  - relu
  - linear: 10
train:
  optimizer: adam
  lr: 0.001
  steps: 150
probe: {every: 25, hessian: false}
"""


def _run(cli, path, *extra):
    r = cli("diagnose", path, "--fix", "--verify", "--json", "--out", path.parent / "run", *extra)
    assert r.exit_code in (0, 1), r.output
    return json.loads(r.stdout)


def _errors(findings, code=None):
    return [f for f in findings if f["severity"] == "error" and (code is None or f["code"] == code)]


def test_default_init_relu_gets_he_init_and_trains(write, cli):
    path = write(RELU_DEFAULT, "relu.yaml")
    doc = _run(cli, path)
    flow = _errors(doc["findings"], "FLOW")[0]
    assert flow["corrections"][0]["name"] == "he_init"
    assert flow["corrections"][0]["patch"].startswith("--- relu.yaml\n+++ relu.fixed.yaml\n")
    assert "+      - linear: {width: 32, init: he}" in flow["corrections"][0]["patch"]
    v = doc["verify"]
    assert v["before"]["metrics"]["train_accuracy"] < 0.3                  # chance is 0.1
    assert v["after"]["metrics"]["train_accuracy"] >= 0.9
    assert [c["correction"] for c in v["corrections"] if c["kept"]] == ["he_init"]
    fixed = path.parent / "run" / "relu.fixed.yaml"
    assert doc["fix"]["file"] == str(fixed)
    text = fixed.read_text()
    assert "# deep relu at PyTorch's default init" in text                # comments kept
    assert load_design(fixed).rows[1].element.opts.init.name == "he"


def test_deep_tanh_gets_critical_init_predicted_at_0_db(write, cli):
    path = write(TANH_ORDERED, "tanh.yaml")
    doc = _run(cli, path)
    flow = _errors(doc["findings"], "FLOW")[0]
    first = flow["corrections"][0]
    assert first["name"] == "critical_init"
    assert "init: {name: critical, sigma_b2: 0.05}" in first["patch"]
    predicted = flow["correction_info"]["critical_init"]["predicted"]     # before any training
    assert abs(predicted["paraxial"]["hidden_flow_db"]) < 0.5
    assert predicted["FLOW"]["before"] < -40 < predicted["FLOW"]["after"]
    assert set(first) == {"name", "patch"}                                 # the JSON contract
    v = doc["verify"]
    b, a = v["before"]["metrics"], v["after"]["metrics"]
    assert a["train_accuracy"] >= 0.9 and a["train_accuracy"] > b["train_accuracy"] + 0.2
    assert a["train_loss"] < b["train_loss"]
    assert any(c["correction"] == "critical_init" and c["kept"] for c in v["corrections"])


def test_lr_past_the_stability_limit_gets_set_lr_and_converges(write, cli):
    path = write(LR_HIGH, "lr.yaml")
    doc = _run(cli, path)
    assert _errors(doc["findings"], "SHRP") or _errors(doc["findings"], "DIVG")
    step = next(s for s in doc["fix"]["steps"] if s["correction"])
    assert step["correction"] == "set_lr"
    fixed = load_design(path.parent / "run" / "lr.fixed.yaml")
    lam = next(h["hessian"] for h in doc["history"] if h["hessian"] is not None)
    assert fixed.train.lr < 2 / lam                                       # below the limit
    v = doc["verify"]
    assert v["before"]["divergence"] is not None or v["before"]["metrics"]["train_loss"] is None \
        or _errors(v["before"]["findings"], "SHRP")
    assert v["after"]["divergence"] is None and not _errors(v["after"]["findings"], "DIVG")
    assert v["after"]["metrics"]["train_accuracy"] >= 0.9


def test_deep_bn_relu_gets_a_residual_that_removes_the_error(write, cli):
    path = write(BN_RELU, "bn.yaml")
    doc = _run(cli, path)
    assert _errors(doc["findings"], "FLOW")
    kept = [c["correction"] for c in doc["verify"]["corrections"] if c["kept"]]
    assert kept and kept[0] in ("wrap_residual", "insert_layernorm", "remove_rows")
    assert not _errors(doc["verify"]["after"]["findings"], "FLOW")
    text = (path.parent / "run" / "bn.fixed.yaml").read_text()
    assert "# batchnorm's backward gain π/(π−1) per block: explodes" in text


def test_fix_on_a_healthy_design_changes_nothing_and_says_so(write, cli):
    path = write(HEALTHY, "ok.yaml")
    r = cli("diagnose", path, "--fix", "--out", path.parent / "run")
    assert r.exit_code == 0, r.output
    assert "nothing to correct; no file written" in r.stdout
    assert not (path.parent / "run" / "ok.fixed.yaml").exists()
    assert not (path.parent / "ok.fixed.yaml").exists()
