"""Sequences: token data, sequence rows and their shape errors, the paraxial attention rules
against step-0 measurements, the attention instruments and aberrations, the transformer
corrections and designs."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from netlens.aberrations import judge
from netlens.aberrations.token_rank import predicted
from netlens.corrections import correct
from netlens.data import DataSpec, describe, load
from netlens.errors import DesignError
from netlens.paraxial.trace import db, trace
from netlens.prescription import design_from_text, load_design
from netlens.simulate import simulate
from tests.conftest import DESIGNS

SEQ = DESIGNS / "sequences"


def spec(**fields) -> DataSpec:
    return DataSpec.parse(fields)


# --- token data ---------------------------------------------------------------------------------

def test_token_sets_are_seeded_with_labels_per_position_or_per_sequence():
    a = load(spec(source="sort", vocab=8, length=6, n=50), seed=1)
    b = load(spec(source="sort", vocab=8, length=6, n=50), seed=1)
    assert np.array_equal(a.x_train, b.x_train) and a.info.per_token and a.info.vocab == 8
    assert a.x_train.shape[1:] == (6,) and a.y_train.shape[1:] == (6,)
    assert np.array_equal(np.sort(a.x_train, 1).astype(np.int64), a.y_train)   # not standardized
    rev = load(spec(source="reverse", vocab=5, length=4, n=20), seed=0)
    assert np.array_equal(rev.x_train[:, ::-1].astype(np.int64), rev.y_train)
    par = load(spec(source="parity", length=7, n=40), seed=0)
    assert not par.info.per_token and par.y_train.shape == (len(par.x_train),)
    assert np.array_equal(par.x_train.sum(1).astype(np.int64) % 2, par.y_train)
    mod = load(spec(source="modular_addition", p=7, train_fraction=0.5), seed=0)
    assert len(mod.x_train) + len(mod.x_val) == 49 and abs(len(mod.x_train) - 24.5) <= 1
    assert np.array_equal((mod.x_train[:, 0] + mod.x_train[:, 1]).astype(np.int64) % 7, mod.y_train)
    assert (mod.x_train[:, 2] == 7).all() and mod.info.vocab == 8


def test_markov_has_the_stated_entropy_rate():
    d = load(spec(source="markov", vocab=6, entropy=0.7, length=40, n=600, val=0), seed=0)
    x, y = d.x_train.astype(np.int64).ravel(), d.y_train.ravel()
    counts = np.zeros((6, 6))
    np.add.at(counts, (x, y), 1)
    p = counts / counts.sum(1, keepdims=True)
    rows = counts.sum(1) / counts.sum()
    h = -(rows[:, None] * p * np.log(np.where(p > 0, p, 1.0))).sum()
    assert abs(h - 0.7) < 0.05
    with pytest.raises(DesignError, match="entropy"):
        spec(source="markov", vocab=4, entropy=2.0)


def test_text_file_is_read_by_character_windows(tmp_path):
    (tmp_path / "t.txt").write_text("abcab" * 40)
    d = load(spec(source="t.txt", context=8, val=0), seed=0, base_dir=tmp_path)
    assert d.info.vocab == 3 and d.info.per_token and d.x_train.shape[1:] == (8,)
    x, y = d.x_train.astype(np.int64), d.y_train
    assert np.array_equal(x[:, 1:], y[:, :-1])            # labels are the next character
    with pytest.raises(DesignError, match="context"):
        describe(spec(source="t.txt", context=500), tmp_path)


# --- rows and shape errors ----------------------------------------------------------------------

BLOCK = """
netlens: 1
seed: 0
data: {source: sort, vocab: 8, length: 6, n: 64, batch: 16}
layers:
%s
train: {optimizer: adamw, lr: 0.003, steps: 4}
probe: {every: 2, batch: 16, hessian: false}
"""


def _design(layers: str, tmp_path: Path, data: str | None = None):
    text = BLOCK % layers
    if data:
        text = text.replace("{source: sort, vocab: 8, length: 6, n: 64, batch: 16}", data)
    path = tmp_path / "d.yaml"
    path.write_text(text)
    return load_design(path)


def _trace_error(layers: str, tmp_path: Path, data: str | None = None) -> str:
    d = _design(layers, tmp_path, data)
    info = describe(d.data, d.base_dir)
    from netlens.train.outputs import loss_outputs

    with pytest.raises(DesignError) as e:
        trace(d, info, loss_outputs(d.train, info))
    return str(e.value)


def test_shape_errors_name_the_row(tmp_path):
    msg = _trace_error("  - embedding: 30\n  - attention: 4\n  - linear: 8", tmp_path)
    assert "d.yaml:7" in msg and "layers[1]" in msg and "4 heads" in msg and "28 or 32" in msg
    msg = _trace_error("  - linear: 8", tmp_path)
    assert "d.yaml:6" in msg and "embedding" in msg
    msg = _trace_error("  - embedding: 16\n  - batchnorm\n  - linear: 8", tmp_path)
    assert "d.yaml:7" in msg and "layernorm" in msg
    msg = _trace_error("  - embedding: 16\n  - linear: 8", tmp_path,
                       "{source: parity, length: 6, n: 64, batch: 16}")
    assert "mean_pool" in msg and "d.yaml:7" in msg


# --- paraxial rules against step-0 measurements -------------------------------------------------

WIDE = """
netlens: 1
seed: 0
data: {source: sort, vocab: 64, length: 16, n: 256, batch: 32}
layers:
%s
  - linear: 64
train: {optimizer: sgd, lr: 0.0001, steps: 1}
probe: {every: 1, batch: 256, hessian: false}
"""
FORWARD_DB = 1.0     # the stated tolerance of the attention and recurrent forward rules
BACKWARD_DB = 1.0    # … of attention's backward rule at small logits (PyTorch's default init)


def _step0(layers: str):
    d = design_from_text(WIDE % layers, Path("wide.yaml"))
    run = simulate(d)
    gains = run.records.gains(run.records.snapshots[0])
    return d, run.trace, gains


def test_paraxial_attention_matches_step0_on_wide_stacks():
    # non-causal and causal attention stacks, a pre-norm residual stack, and attention dropout
    for layers, check_flow in [
        ("  - embedding: 256\n  - positional: learned\n  - repeat: 3\n    of: [attention: {heads: 4, init: lecun}]", False),
        ("  - embedding: 256\n  - repeat: 3\n    of: [attention: {heads: 4, causal: true}]", True),
        ("  - embedding: 256\n  - repeat: 2\n    of:\n      - residual: [layernorm, attention: {heads: 4, dropout: 0.1}]", True),
    ]:
        d, tr, gains = _step0(layers)
        for row in d.rows:
            if row.element is None or row.element.name == "attention":
                g, f = gains[row.index]
                t = tr.rows[row.index]
                assert abs(db(t.gain) - db(g)) < FORWARD_DB, (row.label, db(t.gain), db(g))
                if check_flow:
                    assert abs(db(t.flow) - db(f)) < BACKWARD_DB, (row.label, db(t.flow), db(f))


def test_paraxial_recurrent_forward_matches_step0():
    d, tr, gains = _step0("  - embedding: 64\n  - positional: learned\n  - gru: 128\n  - lstm: 128")
    for row in d.rows[2:4]:
        assert abs(db(tr.rows[row.index].gain) - db(gains[row.index][0])) < FORWARD_DB


# --- designs ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def healthy():
    d = load_design(SEQ / "transformer.yaml")
    return d, simulate(d)


def test_healthy_transformer_trains_and_is_clean(healthy):
    d, run = healthy
    end = run.records.snapshots[-1]
    assert end.val_accuracy >= 0.98          # stated in designs/sequences/transformer.yaml
    dx = judge(run.records, run.trace)
    assert not [f for f in dx.findings if f.severity in ("warn", "error")], \
        [(f.code, f.message) for f in dx.findings]
    # the attention instruments measured, and nothing near their levels
    rows = [r for r in end.rows if "entropy" in r]
    assert len(rows) == 2 and all(r["entropy_min"] > 0.3 and r["logit"] < 50 for r in rows)


def test_attention_stack_without_residuals_collapses_token_rank():
    d = load_design(SEQ / "attention-only.yaml")
    info = describe(d.data, d.base_dir)
    pred = predicted(trace(d, info))
    attn = [r.index for r in d.rows if r.element is not None and r.element.name == "attention"]
    assert pred[attn[0]] > 0.5 and pred[attn[-1]] < 0.1        # predicted before any training
    run = simulate(design_from_text((SEQ / "attention-only.yaml").read_text().replace(
        "steps: 40", "steps: 1"), SEQ / "attention-only.yaml"))
    dx = judge(run.records, run.trace, at="init")
    trnk = [f for f in dx.findings if f.code == "TRNK" and f.severity == "error"]
    assert trnk and attn[-1] in trnk[0].rows and "paraxial predicts" in trnk[0].message
    patch = correct(d, "wrap_residual")
    after = predicted(trace(patch.design, info))
    assert min(after.values()) > 0.25                          # the skip path keeps the rank


def test_logit_growth_and_entropy_collapse_are_detected(healthy):
    d = load_design(SEQ / "attention-logits.yaml")
    run = simulate(d)
    codes = {f.code for f in judge(run.records, run.trace).findings if f.severity == "error"}
    assert {"LOGT", "ENTR"} <= codes
    healthy_codes = {f.code for f in judge(healthy[1].records, healthy[1].trace).findings}
    assert not healthy_codes & {"LOGT", "ENTR", "TRNK"}
    qk = correct(d, "insert_qk_norm")
    assert qk.design.rows[4].element.opts.qk_norm and "qk_norm: true" in qk.diff


def test_post_norm_fails_and_pre_norm_verifies(cli, tmp_path):
    import json

    result = cli("diagnose", SEQ / "post-norm-deep.yaml", "--fix", "--verify", "--json",
                 "--out", tmp_path / "run")
    doc = json.loads(result.stdout)
    applied = [s["correction"] for s in doc["fix"]["steps"] if s["correction"]]
    assert applied == ["pre_norm"]
    verdicts = doc["verify"]["corrections"]
    assert [(v["correction"], v["kept"]) for v in verdicts] == [("pre_norm", True)], verdicts
    before, after = doc["verify"]["before"]["metrics"], verdicts[0]["metrics"]
    assert before["val_accuracy"] < 0.3 and after["val_accuracy"] > 0.8


# --- instruments ----------------------------------------------------------------------------------

def test_instruments_keep_training_bit_identical_with_attention_and_dropout(tmp_path):
    layers = ("  - embedding: 16\n  - positional: sinusoidal\n  - dropout: 0.2\n"
              "  - residual: [layernorm, attention: {heads: 2, causal: true, dropout: 0.3}]\n"
              "  - residual: [layernorm, linear: 32, gelu, dropout: 0.2, linear: 16]\n"
              "  - linear: 8")
    d = _design(layers, tmp_path)
    a, b = simulate(d, instruments=True), simulate(d, instruments=False)
    for (name, p), q in zip(a.net.state_dict().items(), b.net.state_dict().values()):
        assert torch.equal(p, q), name
    assert "entropy" in a.records.snapshots[0].rows[5] and math.isfinite(a.records.snapshots[-1].rows[5]["logit"])


# --- corrections and the catalog --------------------------------------------------------------------

def test_transformer_corrections_are_patches(tmp_path):
    d = load_design(SEQ / "post-norm-deep.yaml")
    pre = correct(d, "pre_norm")
    assert "residual: [layernorm, attention" in pre.text and pre.design.top_rows()[-2].element.name == "layernorm"
    adamw = correct(d, "switch_to_adamw")
    assert adamw.design.train.optimizer == "adamw" and adamw.design.train.weight_decay == 0.01
    warm = correct(d, "warmup")
    assert warm.design.train.warmup == 12
    single = _design("  - embedding: 16\n  - attention: 2\n  - attention: 2\n  - linear: 8", tmp_path)
    wrapped = correct(single, "wrap_residual")
    assert sum(r.element is None for r in wrapped.design.rows) == 2


def test_catalog_documents_the_sequence_rows_and_aberrations(cli):
    import json

    doc = json.loads(cli("catalog", "attention", "--json").stdout)
    assert "near-uniform" in doc["formula"] and "Vaswani" in doc["source"] and "LOGT" in doc["corrects"]
    for name in ("embedding", "positional", "mean_pool", "last_token", "lstm", "gru"):
        entry = json.loads(cli("catalog", name, "--json").stdout)
        assert entry["formula"] and entry["source"], name
    for code, source in (("ENTR", "Zhai"), ("LOGT", "Dehghani"), ("TRNK", "Dong")):
        entry = json.loads(cli("catalog", code, "--json").stdout)
        assert source in entry["thresholds"]["source"] and entry["corrections"] and entry["doc"]
    for name in ("insert_qk_norm", "pre_norm", "switch_to_adamw"):
        entry = json.loads(cli("catalog", name, "--json").stdout)
        assert entry["source"] and entry["suggested_for"], name
