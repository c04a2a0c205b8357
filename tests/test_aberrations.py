"""Each aberration on a small design known to show it (docs/theory.md and the papers it cites), and on
a healthy design that must not. Most cases judge step 0 (`steps: 1`), where the literature's
numbers are stated; the training cases are kept to a few hundred cheap steps."""
from __future__ import annotations

import math
import statistics
import textwrap

import pytest

from netlens.aberrations import CATALOG, judge
from netlens.paraxial.meanfield import depth_scales
from netlens.paraxial.trace import db
from netlens.prescription import load_design
from netlens.simulate import simulate

STEP0 = "train: {optimizer: sgd, lr: 0.01, steps: 1}\nprobe: {every: 1, batch: 128, hessian: false}"


@pytest.fixture
def diagnosed(write):
    """Simulate a prescription and judge it: (run, diagnosis)."""
    def _run(text: str, at: str | int = "init"):
        run = simulate(load_design(write(textwrap.dedent(text))))
        return run, judge(run.records, run.trace, at)

    return _run


def mlp(hidden: str, depth: int, width: int = 64, init: str = "he", head: str = "linear: 10",
        data: str = "{source: digits, n: 300}", tail: str = STEP0, seed: int = 0) -> str:
    return (f"netlens: 1\nseed: {seed}\ndata: {data}\nlayers:\n  - flatten\n"
            f"  - repeat: {depth}\n    of:\n      - linear: {{width: {width}, init: {init}}}\n"
            f"      - {hidden}\n  - {head}\n{tail}\n")


def found(dx, code, severity=None, kind=None):
    return [f for f in dx.findings if f.code == code and (severity is None or f.severity == severity)
            and (kind is None or f.kind == kind)]


def flagged_rows(dx, code, levels=("warn", "error")):
    return {i for i, codes in dx.severity.items() if codes.get(code) in levels}


# -- GAIN ---------------------------------------------------------------------------------------
def test_gain_shrinking_and_growing(diagnosed):
    # No biases, so nothing stops the drift: σ_w²·½ per relu pair is −7.8 dB at σ_w² = 1/3 and
    # +3 dB at σ_w² = 4 (docs/theory.md §1).
    run, dx = diagnosed(mlp("relu", 6, init="{sigma_w2: 0.3333, sigma_b2: 0.0}"))
    err = found(dx, "GAIN", "error", "shrinking")
    assert err and err[0].value < -40
    assert min(err[0].rows) >= 9                                                       # the deep end
    assert 1 not in flagged_rows(dx, "GAIN")                                          # −4.8 dB only
    run, dx = diagnosed(mlp("relu", 15, init="{sigma_w2: 4.0, sigma_b2: 0.0}"))
    assert found(dx, "GAIN", "error", "growing")


def test_gain_healthy(diagnosed):
    _, dx = diagnosed(mlp("relu", 6))
    assert not found(dx, "GAIN")


def test_fragile_design_is_called_out(diagnosed):
    # +25 dB then −25 dB: the sum is 0 dB, but it rests on two large opposing numbers.
    text = mlp("identity", 1, init="{sigma_w2: 300.0, sigma_b2: 0.0}").replace(
        "  - linear: 10", "  - linear: {width: 64, init: {sigma_w2: 0.0033, sigma_b2: 0.0}}\n  - linear: 10")
    _, dx = diagnosed(text)
    fragile = found(dx, "GAIN", "warn", "fragile")
    assert fragile and fragile[0].value > 20
    assert "#1" in fragile[0].message and "#3" in fragile[0].message
    _, dx = diagnosed(mlp("identity", 2, init="lecun"))
    assert not found(dx, "GAIN", kind="fragile")


# -- FLOW ---------------------------------------------------------------------------------------
def test_flow_default_init_relu_vanishes_on_the_first_rows(diagnosed):
    # PyTorch's default init with relu: −7.8 dB per pair (docs/theory.md §1).
    run, dx = diagnosed(mlp("relu", 7, init="default"))
    err = found(dx, "FLOW", "error", "vanishing")
    assert err and err[0].value < -40
    assert {1, 2, 3} <= set(err[0].rows)                      # the first rows
    assert max(err[0].rows) < len(run.design.rows) // 2       # … and not the last ones
    assert "he_init" in err[0].corrections


def test_flow_healthy_he_relu(diagnosed):
    _, dx = diagnosed(mlp("relu", 7, init="he"))
    assert not found(dx, "FLOW")


def test_flow_healthy_cnn_narrowing_to_its_head(diagnosed):
    # Per unit, the 16×8×8 → 16 global average pool and the 16 → 10 head lower the gradient by
    # 36 dB and 7 dB, by construction; summed over units and with the pool's spreading left out
    # (the convolution sums the positions back), nothing vanishes.
    run, dx = diagnosed("""
        netlens: 1
        data: {source: digits, n: 300}
        layers:
          - conv2d: {channels: 16, kernel: 3, padding: 1, bias: false, init: he}
          - batchnorm
          - relu
          - conv2d: {channels: 16, kernel: 3, padding: 1, bias: false, init: he}
          - batchnorm
          - relu
          - global_avgpool
          - linear: 10
        train: {optimizer: sgd, lr: 0.01, steps: 1}
        probe: {every: 1, batch: 128, hessian: false}
        """)
    assert run.records.gains(run.records.at("init"))[6][1] < 10 ** -3    # per unit: −36 dB
    assert not found(dx, "FLOW")


def test_flow_deep_batchnorm_relu_explodes(diagnosed):
    # Yang et al. 2019: +1.66 dB per linear-batchnorm-relu block, toward the input.
    blocks = 30
    text = mlp("batchnorm\n      - relu", blocks, init="he").replace("init: he}", "init: he, bias: false}")
    run, dx = diagnosed(text.replace("batch: 128", "batch: 256"))
    err = found(dx, "FLOW", "error", "exploding")
    assert err and 1 in err[0].rows and err[0].value > 40
    gains = run.records.gains(run.records.at("init"))
    per_block = [sum(db(gains[1 + 3 * k + j][1]) for j in range(3)) for k in range(blocks)]
    slope = statistics.mean(per_block[2:-2])
    assert slope == pytest.approx(10 * math.log10(math.pi / (math.pi - 1)), abs=0.25)


@pytest.mark.parametrize("sigma_w2, kind", [(1.0, "vanishing"), (1.76, None), (4.0, "exploding")])
def test_flow_deep_tanh_follows_chi1(diagnosed, sigma_w2, kind):
    # 60 tanh layers at σ_b² = 0.05: ordered / critical / chaotic (Schoenholz et al. 2017).
    init = f"{{sigma_w2: {sigma_w2}, sigma_b2: 0.05}}"
    text = mlp("tanh", 60, width=128, init=init, head="linear: 2", data="{source: teacher, dims: 32, n: 300}")
    run, dx = diagnosed(text.replace("  - flatten\n", ""))
    gains = run.records.gains(run.records.at("init"))
    per_pair = statistics.mean(db(gains[2 * k][1]) + db(gains[2 * k + 1][1]) for k in range(10, 50))
    chi1 = depth_scales("tanh", sigma_w2, 0.05).chi1
    assert per_pair == pytest.approx(10 * math.log10(chi1), abs=0.15)
    if kind is None:
        assert not found(dx, "FLOW")
    else:
        err = found(dx, "FLOW", "error", kind)
        assert err and abs(err[0].value) > 60
        assert {1, 2, 3} <= set(err[0].rows)


# -- DEAD ---------------------------------------------------------------------------------------
def test_dead_deep_narrow_relu(diagnosed):
    # Lu et al. 2019: a deep, narrow relu net dies at initialization.
    run, dx = diagnosed(mlp("relu", 20, width=4))
    err = found(dx, "DEAD", "error")
    assert err and err[0].value >= 0.4
    relu_rows = {m.index for m in run.records.rows if m.element == "relu"}
    assert set(err[0].rows) <= relu_rows
    assert 2 not in flagged_rows(dx, "DEAD")                 # the first relu is alive
    assert max(err[0].rows) > len(run.design.rows) // 2


def test_dead_healthy(diagnosed):
    _, dx = diagnosed(mlp("relu", 2, width=128))
    assert not found(dx, "DEAD")


# -- SATR ---------------------------------------------------------------------------------------
def test_saturation_large_tanh_weights(diagnosed):
    # σ_w² = 16: pre-activations of power ~16 put most tanh outputs past 0.97.
    run, dx = diagnosed(mlp("tanh", 3, init="{sigma_w2: 16.0}"))
    err = found(dx, "SATR", "error")
    assert err and set(err[0].rows) <= {m.index for m in run.records.rows if m.element == "tanh"}


def test_saturation_healthy(diagnosed):
    _, dx = diagnosed(mlp("tanh", 3, init="xavier"))
    assert not found(dx, "SATR")


# -- RANK ---------------------------------------------------------------------------------------
def test_rank_collapse_deep_relu_without_normalization(diagnosed):
    # docs/theory.md §2: a 50-layer relu MLP loses most of the input's effective rank.
    run, dx = diagnosed(mlp("relu", 50, width=128))
    flagged = flagged_rows(dx, "RANK")
    assert found(dx, "RANK")
    assert min(flagged) > 20 and len(run.design.rows) - 2 in flagged      # the deep end only


def test_rank_kept_with_batchnorm(diagnosed):
    _, dx = diagnosed(mlp("batchnorm\n      - relu", 50, width=128))
    assert not found(dx, "RANK")


# -- COND ---------------------------------------------------------------------------------------
def test_conditioning_sum_of_a_deep_gaussian_relu_stack(diagnosed):
    # Free probability: Gaussian square weights add 1 each, relu 1 each (Pennington et al. 2017).
    _, dx = diagnosed(mlp("relu", 30, width=64))
    assert dx.sums["COND"]["value"] == pytest.approx(60, rel=0.15)
    assert dx.sums["COND"]["severity"] == "warn" and found(dx, "COND", "warn")


def test_conditioning_healthy(diagnosed):
    _, dx = diagnosed(mlp("tanh", 3, init="orthogonal"))
    assert dx.sums["COND"]["value"] < 5 and not found(dx, "COND")


# -- MEAN ---------------------------------------------------------------------------------------
def test_mean_shift_after_sigmoid(diagnosed):
    # A sigmoid output carries 85% of its power in its mean (LeCun et al. 1998): above the warn
    # level 0.8, below the error level 0.9 (a sound relu stack's share reaches 0.78 by depth 6).
    run, dx = diagnosed(mlp("sigmoid", 3, init="xavier"))
    err = found(dx, "MEAN", "warn")
    assert err and 3 in err[0].rows and set(err[0].rows) <= {3, 5}   # the linears fed by sigmoids
    assert all(dx.values[i]["MEAN"] > 0.7 for i in (3, 5))
    assert 1 not in flagged_rows(dx, "MEAN")                   # centred data in, centred out
    assert 7 not in dx.values.get(7, {}) and "MEAN" not in dx.values.get(7, {})   # head excluded


def test_mean_shift_healthy(diagnosed):
    _, dx = diagnosed(mlp("tanh", 3, init="xavier"))
    assert not found(dx, "MEAN")


# -- STEP ---------------------------------------------------------------------------------------
def test_update_ratio_too_small_and_too_large(diagnosed):
    tail = "train: {{optimizer: sgd, lr: {lr}, steps: 40}}\nprobe: {{every: 10, batch: 128, hessian: false}}"
    _, dx = diagnosed(mlp("relu", 2, tail=tail.format(lr=1.0e-6)), at="end")
    small = found(dx, "STEP", "error", "small")
    assert small and small[0].value < -5.5 and "raise the learning rate" in small[0].message
    _, dx = diagnosed(mlp("relu", 2, tail=tail.format(lr=1.0)), at=10)
    assert found(dx, "STEP", kind="large")


def test_update_ratio_healthy(diagnosed):
    tail = "train: {optimizer: adam, lr: 0.001, steps: 60}\nprobe: {every: 10, batch: 128, hessian: false}"
    _, dx = diagnosed(mlp("relu", 2, width=128, tail=tail), at="end")
    assert not found(dx, "STEP") and all("STEP" in dx.values[i] for i in (1, 3, 5))


def test_update_ratio_reads_through_a_decaying_schedule(diagnosed):
    # Cosine decay to 0 shrinks late updates on purpose: STEP divides by lr(t)/lr, and SHRP is 0
    # at the last step, where the schedule leaves no step to overshoot.
    tail = ("train: {optimizer: sgd, lr: 0.05, momentum: 0.9, steps: 60, schedule: cosine}\n"
            "probe: {every: 20, batch: 128, hessian: {every: 20, max_products: 5}}")
    run, dx = diagnosed(mlp("relu", 2, width=128, tail=tail), at="end")
    assert run.records.snapshots[-1].lr == 0.0
    assert not found(dx, "STEP") and dx.network["SHRP"]["value"] == 0.0


# -- SHRP ---------------------------------------------------------------------------------------
EOS = """
netlens: 1
seed: 0
data: {{source: digits, n: 400, batch: full}}
layers: [flatten, {{linear: 100}}, tanh, {{linear: 100}}, tanh, {{linear: 10}}]
train: {{optimizer: sgd, lr: {lr}, steps: 300, loss: mse}}
probe: {{every: 25, batch: 512, hessian: {{every: 25, max_products: 20}}}}
"""


@pytest.mark.slow
def test_sharpness_edge_of_stability(diagnosed):
    # Cohen et al. 2021: under full-batch GD, λ rises to 2/η and hovers there.
    run, dx = diagnosed(EOS.format(lr=2.0), at="end")
    late = [s.hessian * 2.0 / 2 for s in run.records.snapshots if s.hessian and s.step >= 150]
    assert statistics.median(late) == pytest.approx(1.0, abs=0.15)
    shrp = found(dx, "SHRP")
    assert shrp and shrp[0].severity in ("warn", "error") and 0.85 < shrp[0].value < 1.3
    assert "loss" in shrp[0].message and "lr 2" in shrp[0].message and "batch 320" in shrp[0].message


def test_sharpness_healthy_and_adam_judged(diagnosed):
    _, dx = diagnosed(EOS.format(lr=0.1).replace("steps: 300", "steps: 50"), at="end")
    assert dx.network["SHRP"]["severity"] == "ok" and not found(dx, "SHRP")
    run, dx = diagnosed(EOS.format(lr=0.001).replace("sgd", "adam").replace("steps: 300", "steps: 25"),
                        at="end")
    # Adam: judged on the preconditioned sharpness λ₁(P⁻¹H) against (2+2β₁)/((1−β₁)η), ok here
    assert dx.network["SHRP"]["severity"] == "ok" and "preconditioned" in dx.network["SHRP"]["detail"]
    # records without the preconditioned estimate (written before it) keep λ as info, not judged
    for s in run.records.snapshots:
        s.hessian, s.preconditioned = s.preconditioned, None
    assert [f.severity for f in found(judge(run.records, run.trace), "SHRP")] == ["info"]


ADAM_EOS = """
netlens: 1
seed: 0
data: {{source: digits, n: 300, batch: full, val: 0.2}}
layers: [flatten, {{linear: 64}}, tanh, {{linear: 64}}, tanh, {{linear: 10}}]
train: {{optimizer: adam, lr: {lr}, steps: {steps}, loss: mse}}
probe: {{every: 20, batch: 1000, hessian: {{every: 20, max_products: 20}}}}
"""


def test_adaptive_edge_of_stability(diagnosed):
    # Cohen et al. 2022: full-batch Adam drives the preconditioned sharpness λ₁(P⁻¹H) up to
    # (2+2β₁)/((1−β₁)η) = 38/η at β₁ = 0.9, and it hovers there.
    lr = 0.01
    run, dx = diagnosed(ADAM_EOS.format(lr=lr, steps=200), at="end")
    late = [s.preconditioned for s in run.records.snapshots if s.preconditioned and s.step >= 60]
    assert len(late) >= 5 and all(s.hessian is None for s in run.records.snapshots)
    assert statistics.median(late) == pytest.approx(38 / lr, rel=0.25)
    assert all(0.75 * 38 / lr < v < 1.25 * 38 / lr for v in late)
    shrp = found(dx, "SHRP")               # judged for Adam: the edge itself is a warning
    assert shrp and shrp[0].severity in ("warn", "error") and 0.75 < shrp[0].value < 1.25
    assert "(2+2β₁)/((1−β₁)η) = 3800" in shrp[0].message
    # a healthy Adam run (mini-batches, the textbook step) stays well below its limit
    healthy = ADAM_EOS.format(lr=0.001, steps=100).replace("batch: full", "batch: 64")
    run, dx = diagnosed(healthy, at="end")
    assert dx.network["SHRP"]["severity"] == "ok" and dx.network["SHRP"]["value"] < 0.5
    assert run.records.snapshots[-1].preconditioned < 38 / 0.001


# -- DIVG ---------------------------------------------------------------------------------------
LR = mlp("relu", 2, data="{source: digits, n: 300, batch: full}",
         tail="train: {optimizer: sgd, lr: LR, steps: 50}\nprobe: {every: 10, batch: 128, hessian: false}")


def test_divergence_names_row_and_step(diagnosed):
    run, dx = diagnosed(LR.replace("LR", "100.0"), at="end")
    d = run.records.divergence
    (f,) = found(dx, "DIVG", "error")
    assert f.row == d.row and f.row is not None and f"step {d.step}" in f.message
    assert f"row #{d.row}" in f.message
    assert dx.step < d.step and any("last finite probe" in n for n in dx.notes)


def test_divergence_healthy(diagnosed):
    _, dx = diagnosed(LR.replace("LR", "0.1"), at="end")
    assert not found(dx, "DIVG") and dx.network["DIVG"]["value"] < 10


# -- INIT ---------------------------------------------------------------------------------------
def test_hot_initial_loss(diagnosed):
    _, dx = diagnosed(mlp("relu", 2, head="linear: {width: 10, init: {sigma_w2: 50.0}}"))
    assert found(dx, "INIT", "error") and dx.network["INIT"]["value"] > 3


def test_initial_loss_healthy(diagnosed):
    _, dx = diagnosed(mlp("relu", 2))
    assert dx.network["INIT"]["value"] == pytest.approx(1.0, abs=0.2) and not found(dx, "INIT")


def test_initial_loss_mse_uses_target_variance(diagnosed):
    tail = "train: {optimizer: sgd, lr: 0.01, steps: 1, loss: mse}\nprobe: {every: 1, batch: 128, hessian: false}"
    # A small head keeps the outputs near 0, so the loss starts at E[y²] = 0.1 against var = 0.09.
    run, dx = diagnosed(mlp("relu", 2, tail=tail, head="linear: {width: 10, init: {sigma_w2: 0.01}}"))
    assert run.records.target_var["train"] == pytest.approx(0.09, abs=0.005)     # one-hot, 10 classes
    assert dx.network["INIT"]["value"] == pytest.approx(1.2, abs=0.15)
    # PyTorch's default head gives outputs of power ~1/3 on top: a hot start for mse.
    _, dx = diagnosed(mlp("relu", 2, tail=tail))
    assert found(dx, "INIT", "error")


# -- STAL ---------------------------------------------------------------------------------------
def test_stall(diagnosed):
    tail = "train: {optimizer: sgd, lr: 1.0e-6, steps: 30}\nprobe: {every: 10, batch: 128, hessian: false}"
    _, dx = diagnosed(mlp("relu", 2, tail=tail), at="end")
    assert found(dx, "STAL", "error")
    _, dx = diagnosed(mlp("relu", 2, tail=tail), at="init")
    assert "STAL" not in dx.network                            # not judged at step 0


def test_stall_healthy(diagnosed):
    tail = "train: {optimizer: adam, lr: 0.003, steps: 60}\nprobe: {every: 20, batch: 128, hessian: false}"
    _, dx = diagnosed(mlp("relu", 2, tail=tail), at="end")
    assert dx.network["STAL"]["value"] < 0.5 and not found(dx, "STAL")


# -- GAP ----------------------------------------------------------------------------------------
MEMORIZE = """
netlens: 1
seed: 0
data: {{source: digits, n: 400, batch: 64, label_noise: {noise}}}
layers: [flatten, {{linear: {{width: 256, init: he}}}}, relu, {{linear: 10}}]
train: {{optimizer: adam, lr: 0.003, steps: 200}}
probe: {{every: 50, batch: 128, hessian: false}}
"""


def test_gap_random_labels(diagnosed):
    # Zhang et al. 2017: a network memorizes random labels; validation stays at chance.
    _, dx = diagnosed(MEMORIZE.format(noise=1.0), at="end")
    (f,) = found(dx, "GAP", "error")
    assert f.value > 0.5 and "validation" in f.message


def test_gap_healthy(diagnosed):
    _, dx = diagnosed(MEMORIZE.format(noise=0.0), at="end")
    assert not found(dx, "GAP")


def test_gap_regression_uses_r2(diagnosed):
    text = mlp("relu", 1, data="{source: diabetes}", head="linear: 1",
               tail="train: {optimizer: adam, lr: 0.01, steps: 20}\nprobe: {every: 10, batch: 128, hessian: false}")
    run, dx = diagnosed(text, at="end")
    assert "R²" in dx.network["GAP"]["detail"]
    assert not found(dx, "INIT")             # standardized targets: the initial loss ≈ their variance
    raw = text.replace("{source: diabetes}", "{source: diabetes, standardize_targets: false}")
    run, dx = diagnosed(raw, at="end")
    assert found(dx, "INIT", "error")        # raw targets (mean ≈ 152) against outputs near 0


# -- NOIS ---------------------------------------------------------------------------------------
def test_noise_tiny_batch(diagnosed):
    tail = "train: {optimizer: sgd, lr: 0.01, steps: 20}\nprobe: {every: 10, batch: 200, hessian: false}"
    _, dx = diagnosed(mlp("relu", 2, data="{source: digits, n: 300, batch: 1}", tail=tail), at="end")
    (f,) = found(dx, "NOIS", "warn")
    assert f.value < 0.02 and "critical batch" in f.message


def test_noise_healthy(diagnosed):
    tail = "train: {optimizer: sgd, lr: 0.01, steps: 20}\nprobe: {every: 10, batch: 200, hessian: false}"
    _, dx = diagnosed(mlp("relu", 2, data="{source: digits, n: 300, batch: 32}", tail=tail), at="end")
    assert "NOIS" in dx.network and not found(dx, "NOIS")


# -- the catalog ------------------------------------------------------------------------------
SPEC_CORRECTIONS = {"he_init", "xavier_init", "orthogonal_init", "critical_init", "insert_batchnorm",
                    "insert_layernorm", "wrap_residual", "zero_init_residual", "swap_activation",
                    "insert_dropout", "weight_decay", "set_lr", "warmup", "clip_gradients",
                    "switch_to_adam", "widen", "remove_rows", "set_precision",
                    # sequences
                    "insert_qk_norm", "pre_norm", "switch_to_adamw"}


def test_catalog_is_complete():
    from netlens.aberrations import TABLE, entries

    assert list(CATALOG) == ["GAIN", "FLOW", "DEAD", "SATR", "RANK", "COND", "MEAN", "STEP", "PREC",
                             "SHRP", "DIVG", "INIT", "STAL", "GAP", "NOIS", "ENTR", "LOGT", "TRNK"]
    for e in entries():
        assert len(e["code"]) <= 4 and e["name"] and e["measures"] and e["applies"], e["code"]
        assert len(e["explanation"]) > 150 and e["analogy"] and e["doc"], e["code"]
        assert e["thresholds"]["source"] and e["code"] in TABLE
        names = set(e["corrections"]) | {c for k in e["cases"].values() for c in k["corrections"]}
        assert names and names <= SPEC_CORRECTIONS, e["code"]
