"""The paraxial model reproduces docs/theory.md through netlens's own code: designs in, numbers out."""
from __future__ import annotations

import math

import pytest

from netlens.data import describe
from netlens.paraxial.trace import db, trace
from netlens.prescription import design_from_text
from netlens.train.outputs import loss_outputs


def _trace(text: str, tmp_path):
    d = design_from_text(text, tmp_path / "d.yaml")
    info = describe(d.data, d.base_dir)
    return d, trace(d, info, loss_outputs(d.train, info))


def stack(depth: int, width: int, init: str, act: str = "tanh", extra: str = "") -> str:
    return f"""
data: {{source: teacher, dims: {width}, n: 200}}
layers:
  - repeat: {depth}
    of:
      - linear: {{width: {width}, init: {init}}}
{extra}      - {act}
  - linear: 2
"""


def per_layer(tr, d, element="linear", last=10):
    """Backward gain of the deepest `last` (linear + following rows) blocks, as a ratio."""
    lin = [r.index for r in d.rows if r.element is not None and r.element.name == element]
    blocks = list(zip(lin[:-1], lin[1:]))[-last:]
    flows = [math.prod(tr.rows[i].flow for i in range(a, b)) for a, b in blocks]
    return math.exp(sum(math.log(f) for f in flows) / len(flows))


def test_tanh_critical_point_from_init_critical(tmp_path):
    d, tr = _trace(stack(40, 256, "{name: critical, sigma_b2: 0.05}"), tmp_path)
    linear = [t for t, r in zip(tr.rows, d.rows) if r.element and r.element.name == "linear"]
    assert [t.sigma_w2 for t in linear[-5:-1]] == pytest.approx([1.7610] * 4, abs=1e-3)
    assert linear[-2].q == pytest.approx(0.5700, rel=1e-3)   # pre-activations sit at q*


@pytest.mark.parametrize("sigma_w2, chi1", [(1.0, 0.7590), (1.7610, 1.0), (4.0, 1.3424)])
def test_tanh_chi1_in_the_paraxial_table(tmp_path, sigma_w2, chi1):
    d, tr = _trace(stack(60, 256, f"{{sigma_w2: {sigma_w2}, sigma_b2: 0.05}}"), tmp_path)
    assert per_layer(tr, d) == pytest.approx(chi1, abs=2e-3)


def test_he_relu_is_0_db_and_default_init_is_minus_7_8_db(tmp_path):
    # Bias-free, so the six-fold shrink is exact at every depth (default biases add 1/(3·fan_in)).
    for init, expected in (("he, bias: false", 0.0), ("default, bias: false", 10 * math.log10(1 / 6))):
        d, tr = _trace(stack(8, 128, init, "relu"), tmp_path)
        lin = [r.index for r in d.rows if r.element and r.element.name == "linear"]
        a, b = lin[3], lin[4]
        forward = sum(db(tr.rows[i].gain) for i in range(a, b))
        backward = sum(db(tr.rows[i].flow) for i in range(a, b))
        assert forward == pytest.approx(expected, abs=0.05)
        assert backward == pytest.approx(expected, abs=0.05)
    assert expected == pytest.approx(-7.78, abs=0.01)


def test_sum_row_is_the_end_to_end_gain(tmp_path):
    d, tr = _trace(stack(5, 64, "he", "relu"), tmp_path)
    gain, flow = tr.total(d)
    assert gain == pytest.approx(tr.rows[-1].q / tr.input_q, rel=1e-9)
    assert flow == pytest.approx(tr.rows[d.top_rows()[0].index].cum_flow, rel=1e-9)


def test_batchnorm_relu_explodes_by_pi_over_pi_minus_1(tmp_path):
    d, tr = _trace(stack(30, 256, "he", "relu", "      - batchnorm\n"), tmp_path)
    assert per_layer(tr, d) == pytest.approx(math.pi / (math.pi - 1), abs=1e-3)
    # …and output power is γ² + β² = 1 after every batchnorm, whatever came in.
    assert all(abs(tr.rows[r.index].q - 1.0) < 1e-9 for r in d.rows if r.element and r.element.name == "batchnorm")


def test_linear_batchnorm_stack_is_neutral(tmp_path):
    d, tr = _trace(stack(20, 128, "lecun", "identity", "      - batchnorm\n"), tmp_path)
    assert per_layer(tr, d) == pytest.approx(1.0, abs=1e-6)


RESIDUAL = """
data: {{source: teacher, dims: 128, n: 200}}
layers:
  - repeat: {L}
    of:
      - residual:
{branch}
        scale: {scale}
  - linear: 2
"""


@pytest.mark.parametrize("scale, expected", [
    (1.0, 2.0 ** 10),                  # α = 1 → 2^L
    (10 ** -0.5, (1 + 1 / 10) ** 10),  # α = L^(−1/2) → ≈ e
    (0.0, 1.0),
])
def test_residual_power_rule(tmp_path, scale, expected):
    branch = "          - linear: {width: 128, init: he}\n          - relu"
    d, tr = _trace(RESIDUAL.format(L=10, branch=branch, scale=scale), tmp_path)
    last_block = d.top_rows()[-2].index
    assert tr.rows[last_block].cum_gain == pytest.approx(expected, rel=1e-6)


def test_residual_with_batchnorm_in_the_branch_grows_as_1_plus_L_over_2(tmp_path):
    branch = ("          - linear: {width: 128, init: he}\n          - batchnorm\n          - relu")
    d, tr = _trace(RESIDUAL.format(L=10, branch=branch, scale=1.0), tmp_path)
    assert tr.rows[d.top_rows()[-2].index].cum_gain == pytest.approx(1 + 10 / 2, rel=1e-6)


def test_dropout_inflates_power_and_gradient_by_1_over_keep(tmp_path):
    d, tr = _trace(stack(1, 64, "he", "relu", "      - dropout: 0.2\n"), tmp_path)
    row = next(t for t, r in zip(tr.rows, d.rows) if r.element and r.element.name == "dropout")
    assert row.gain == pytest.approx(1 / 0.8) and row.flow == pytest.approx(1 / 0.8)


def test_approximate_rules_are_noted(tmp_path):
    d, tr = _trace(stack(2, 64, "he", "gelu"), tmp_path)
    assert any("gelu" in n for n in tr.notes)


WIDE_TANH = """
seed: 1
data: {{source: teacher, dims: 64, n: 600, val: 0}}
layers:
  - repeat: 30
    of:
      - linear: {{width: 1000, init: {{sigma_w2: {sw}, sigma_b2: 0.05}}}}
      - tanh
  - linear: 2
train: {{steps: 1, device: cpu}}
probe: {{every: 1, batch: 256, hessian: false}}
"""


@pytest.mark.slow
@pytest.mark.parametrize("sigma_w2, chi1, q_star", [(1.0, 0.7590, 0.1936), (1.76, 0.9998, 0.5695),
                                                     (3.0, 1.2089, 1.428)])
def test_measured_step0_gains_agree_with_paraxial(tmp_path, sigma_w2, chi1, q_star):
    """docs/theory.md §2: a width-1000, 30-layer random tanh net measured at step 0."""
    from netlens.simulate import simulate

    d = design_from_text(WIDE_TANH.format(sw=sigma_w2), tmp_path / "d.yaml")
    run = simulate(d)
    snap = run.records.at("init")
    gains = run.records.gains(snap)
    lin = [r.index for r in d.rows if r.element and r.element.name == "linear"]
    blocks = list(zip(lin[:-1], lin[1:]))[10:30]            # layers 10–29
    measured = math.exp(sum(math.log(math.prod(gains[i][1] for i in range(a, b))) for a, b in blocks)
                        / len(blocks))
    predicted = per_layer(run.trace, d, last=20)
    assert measured == pytest.approx(chi1, abs=0.02)
    assert predicted == pytest.approx(chi1, abs=0.02)
    # q of one layer of one random net fluctuates by several per cent around q* (a finite sample of
    # 1000 units and biases); the mean over the layers already at the fixed point estimates q*.
    deep_q = [snap.rows[i]["q"] for i in lin[10:30]]
    assert sum(deep_q) / len(deep_q) == pytest.approx(q_star, rel=0.05)
    assert run.trace.rows[lin[-2]].q == pytest.approx(q_star, rel=0.01)


@pytest.mark.slow
def test_measured_batchnorm_relu_explosion(tmp_path):
    """docs/theory.md §2: deep BN-relu (width 512, 50 layers, batch 128): 1.467 ± 0.05 per layer."""
    from netlens.simulate import simulate

    text = """
data: {source: teacher, dims: 64, n: 300, val: 0}
layers:
  - repeat: 50
    of:
      - linear: {width: 512, init: he}
      - batchnorm
      - relu
  - linear: 2
train: {steps: 1, device: cpu}
probe: {every: 1, batch: 128, hessian: false}
"""
    d = design_from_text(text, tmp_path / "d.yaml")
    run = simulate(d)
    gains = run.records.gains(run.records.at("init"))
    lin = [r.index for r in d.rows if r.element and r.element.name == "linear"]
    blocks = list(zip(lin[:-1], lin[1:]))[10:45]
    per = [math.prod(gains[i][1] for i in range(a, b)) for a, b in blocks]
    measured = math.exp(sum(map(math.log, per)) / len(per))
    assert measured == pytest.approx(math.pi / (math.pi - 1), abs=0.05)
