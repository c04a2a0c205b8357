"""Corrections as prescription patches (SPEC §8): each one edits the right rows, keeps the user's
comments and formatting, keeps row references valid, and gives a design that validates.
Fast: no training, only the paraxial trace."""
from __future__ import annotations

import pytest

from netlens.corrections import CORRECTIONS, Case, NotApplicable, correct, for_code, suggest
from netlens.corrections.edit import Edit, keys_of
from netlens.corrections.remap import compose, remap_references
from netlens.corrections.text import render
from netlens.prescription import load_design
from netlens.prescription.yamlio import parse
from tests.conftest import DESIGNS

# A design with something for every correction: a repeat, comments in awkward places, a named
# row, a variable cell, a plain SGD optimizer.
DEEP = """
netlens: 1
name: deep
seed: 0
data:
  source: digits
  n: 300
  batch: 32
layers:
  - flatten                      # 64 features
  - linear: 32                   # a stem
  - relu
  - repeat: 4                    # the body
    of:
      - linear: {width: 32, init: default}
                                 # continued note about the weight row
      - relu                     # the activation
  # the head follows
  - linear: 10
    name: head
train:
  optimizer: sgd
  lr: {vary: [0.01, 0.5], log: true, start: 0.1}
  momentum: 0.9
  steps: 50                      # short

probe:
  every: 10
"""

TANH = """
netlens: 1
name: tanhnet
data: {source: digits, n: 300}
layers:
  - flatten
  - repeat: 12
    of:
      - linear: {width: 32, init: {sigma_w2: 1.0, sigma_b2: 0.05}}   # ordered phase
      - tanh
  - linear: 10
train: {optimizer: sgd, lr: 0.05, steps: 50}
"""

BN = """
netlens: 1
name: bnnet
data: {source: digits, n: 300, batch: 32}
layers:
  - flatten
  - repeat: 6
    of:
      - linear: {width: 32, bias: false, init: he}
      - batchnorm                # explodes backward
      - relu
  - linear: 10
train: {optimizer: sgd, lr: 0.01, steps: 50}
"""


RES = """
netlens: 1
name: resnet
data: {source: digits, n: 300}
layers:
  - flatten
  - repeat: 3
    of:
      - residual:
          - linear: 64
          - relu
  - linear: 10
"""


BF16 = """
netlens: 1
name: bf16
data: {source: digits, n: 300}
layers:
  - flatten
  - linear: 10
train: {optimizer: adam, lr: 1.0e-4, precision: bfloat16}
"""


def _elements(design) -> list[str]:
    return [r.label for r in design.rows]


def _patch(write, text: str, name: str, case: Case | None = None):
    design = load_design(write(text))
    return design, correct(design, name, case)


def test_untouched_designs_round_trip_byte_for_byte():
    for path in DESIGNS.glob("*.yaml"):
        text = path.read_text()
        assert render(parse(text, str(path)), text) == text, path.name


def test_a_wrapped_file_keeps_its_wrapping():
    """A run folder's design.yaml is written by netlens at ruamel's width: a patch of it must not
    re-flow its long lines."""
    from netlens.prescription.yamlio import dump

    text = dump(parse("about: " + "a long sentence " * 10 + "\nlayers: [flatten]\n", "x.yaml"))
    assert "\n  " in text                                  # written wrapped
    assert render(parse(text, "x.yaml"), text) == text


def test_every_correction_applies_somewhere_and_validates(write):
    """Each registered correction transforms at least one of these designs into a valid one."""
    texts = [DEEP, TANH, BN, RES, BF16]
    cases = {"set_lr": Case(code="SHRP", value=2.0), "remove_rows": Case(code="FLOW", row=3)}
    for name in CORRECTIONS:
        done = False
        for i, text in enumerate(texts):
            design = load_design(write(text, f"d{i}.yaml"))
            try:
                patch = correct(design, name, cases.get(name, Case()))
            except NotApplicable:
                continue
            done = True
            assert patch.design.name == design.name
            assert patch.diff.startswith(f"--- d{i}.yaml\n+++ d{i}.fixed.yaml\n")
            assert patch.did
        assert done, f"{name} applied to none of the test designs"


def test_he_init_edits_the_repeated_row_once_and_keeps_comments(write):
    design, patch = _patch(write, DEEP, "he_init")
    changed = [line for line in patch.diff.splitlines() if line.startswith(("+", "-"))][2:]
    assert changed == ["-  - linear: 32                   # a stem",
                       "+  - linear: {width: 32, init: he} # a stem",
                       "-      - linear: {width: 32, init: default}",
                       "+      - linear: {width: 32, init: he}"]
    assert "# continued note about the weight row" in patch.text
    inits = [r.element.opts.init.name for r in patch.design.rows if r.element and r.element.name == "linear"]
    assert inits == ["he"] * 5 + ["default"]          # hidden rows; the head is left alone
    assert "he_init" in patch.did or "init: he" in patch.did


def test_insert_batchnorm_goes_between_weight_and_activation(write):
    design, patch = _patch(write, DEEP, "insert_batchnorm")
    labels = _elements(patch.design)
    assert labels[:4] == ["flatten", "linear 32", "batchnorm", "relu"]
    assert labels[4:7] == ["linear 32", "batchnorm", "relu"]
    assert labels.count("batchnorm") == 5             # the stem and 4 repetitions, one YAML row
    assert patch.text.count("- batchnorm") == 2
    # The continuation comment stays with the weight row it explains, above the new row.
    body = patch.text[patch.text.index("of:"):]
    assert body.index("continued note") < body.index("- batchnorm") < body.index("- relu")
    assert "# the head follows" in patch.text
    # Row references follow their rows.
    m = patch.index_map
    assert m[0] == 0 and m[1] == 1 and m[2] == 3     # relu moved down by the inserted batchnorm
    head_old, head_new = len(design.rows) - 1, len(patch.design.rows) - 1
    assert m[head_old] == head_new
    assert patch.design.rows[head_new].name == "head"
    for old, new in m.items():
        assert design.rows[old].label == patch.design.rows[new].label


def test_wrap_residual_wraps_the_repeat_body_and_remaps(write):
    design, patch = _patch(write, DEEP, "wrap_residual")
    assert "      - residual:\n          - linear: {width: 32, init: default}" in patch.text
    assert "scale: 0.5" in patch.text                  # α = 1/√4 without a norm in the branch
    blocks = [r for r in patch.design.rows if r.element is None]
    assert len(blocks) == 4 and all(r.scale == 0.5 for r in blocks)
    for old, new in patch.index_map.items():
        assert new is not None and design.rows[old].label == patch.design.rows[new].label
    # A branch with a norm keeps α = 1 (the norm already holds its power at 1).
    _, bn = _patch(write, BN, "wrap_residual")
    assert "scale" not in bn.text


def test_remove_rows_removes_the_named_norm_everywhere(write):
    design = load_design(write(BN))
    bn_row = next(r.index for r in design.rows if r.label == "batchnorm")
    patch = correct(design, "remove_rows", Case(code="FLOW", row=bn_row))
    assert "batchnorm" not in _elements(patch.design)
    assert "# explodes backward" not in patch.text
    removed = [i for i, j in patch.index_map.items() if j is None]
    assert [design.rows[i].label for i in removed] == ["batchnorm"] * 6


def test_remove_rows_shortens_the_repeat_to_fit_the_paraxial_limits(write):
    design = load_design(write(TANH))
    patch = correct(design, "remove_rows", Case(code="FLOW"))
    n = patch.design.resolved["layers"][1]["repeat"]
    assert 1 <= n < 12
    assert abs(patch.prediction.after.flow_worst) <= 20.0
    assert sum(1 for j in patch.index_map.values() if j is None) == 2 * (12 - n)


def test_critical_init_keeps_the_bias_variance_and_predicts_0_db(write):
    design, patch = _patch(write, TANH, "critical_init", Case(code="FLOW"))
    assert "- linear: {width: 32, init: {name: critical, sigma_b2: 0.05}}  # ordered phase" in patch.text
    pred = patch.prediction
    assert pred.before.flow_body < -10
    assert abs(pred.after.flow_body) < 0.5             # each linear+tanh pair solved to 0 dB
    deep = [v for i, v in sorted(pred.after.critical.items())][-1]
    assert deep == pytest.approx(1.761, abs=0.05)     # → 1.761 with depth (THEORY §1, σ_b² = 0.05)
    assert "init: critical solves to σ_w²" in "\n".join(pred.lines())


def test_swap_activation_keeps_end_of_line_comments(write):
    _, patch = _patch(write, DEEP, "swap_activation")
    assert "- leaky_relu: 0.1" in patch.text
    assert "      - leaky_relu: 0.1          # the activation" in patch.text   # same column
    assert "relu" not in [r.element.name for r in patch.design.rows if r.element]


def test_insert_dropout_goes_before_the_head(write):
    design, patch = _patch(write, DEEP, "insert_dropout")
    labels = _elements(patch.design)
    assert labels[-2:] == ["dropout 0.2", "linear 10"]
    assert patch.design.rows[-1].name == "head"


def test_widen_keeps_the_short_form(write):
    _, patch = _patch(write, DEEP, "widen")
    assert "  - linear: 64                   # a stem" in patch.text
    assert "{width: 64, init: default}" in patch.text
    assert [r.element.opts.width for r in patch.design.rows if r.label.startswith("linear")] == [64] * 5 + [10]


def test_training_corrections_keep_variable_cells_and_comments(write):
    design = load_design(write(DEEP))
    p = correct(design, "set_lr", Case(code="SHRP", value=4.0))
    assert "lr: {vary: [0.01, 0.5], log: true, start: 0.013}" in p.text   # 0.1·0.5/4, range kept
    assert p.prediction.values["SHRP"] == pytest.approx((4.0, 0.5), rel=0.05)
    p = correct(design, "set_lr", Case(code="SHRP", measured={"hessian": 76.0}))
    assert p.design.train.lr == pytest.approx(0.5 * 2 * 1.9 / 76)             # heavy-ball limit
    p = correct(design, "set_lr", Case(code="STEP", value=-5.0))
    assert p.design.train.lr == pytest.approx(1.0)             # toward 1e-3, at most a decade
    assert p.design.variables[0].high == pytest.approx(1.0)    # the range widened to hold it
    p = correct(design, "set_lr", Case(code="STEP", value=-0.5))
    assert p.design.train.lr == pytest.approx(0.1 * 10 ** -2.5, rel=0.02)
    with pytest.raises(NotApplicable, match="preconditioned"):
        correct(design, "set_lr", Case(code="SHRP", kind="adaptive", value=3.5))
    p = correct(design, "warmup", Case())
    assert "  steps: 50                      # short\n  warmup: 5\n\nprobe:" in p.text
    p = correct(design, "clip_gradients", Case(measured={"grad_norm": 3.14159}))
    assert p.design.train.clip == 3.1
    p = correct(design, "switch_to_adam", Case())
    assert p.design.train.optimizer == "adam" and p.design.train.lr == 1e-3
    assert p.design.train.momentum == 0.9
    p = correct(design, "weight_decay", Case())
    assert p.design.train.weight_decay == 5e-4


def test_not_applicable_says_why(write):
    design = load_design(write(DEEP))
    with pytest.raises(NotApplicable, match="no residual block"):
        correct(design, "zero_init_residual", Case())
    with pytest.raises(NotApplicable, match="vanishing"):
        correct(design, "clip_gradients", Case(code="FLOW", value=-50.0))
    assert not CORRECTIONS["xavier_init"].applies(design, Case())


def test_zero_init_residual_scales_existing_blocks(write):
    design, wrapped = _patch(write, DEEP, "wrap_residual")
    path = write(wrapped.text, "wrapped.yaml")
    patch = correct(load_design(path), "zero_init_residual", Case())
    assert [r.scale for r in patch.design.rows if r.element is None] == [0.25] * 4


def test_index_map_and_reference_remapping(write):
    design, patch = _patch(write, DEEP, "insert_layernorm")
    tree = parse('optimize:\n  watch: {row: 4, rows: [1, 7]}\n  note: "#8"\n'
                 'diagnose:\n  thresholds: {}\n', "refs.yaml")
    lost = remap_references(tree, patch.index_map)
    assert lost == []
    m = patch.index_map
    assert tree["optimize"]["watch"]["row"] == m[4]
    assert list(tree["optimize"]["watch"]["rows"]) == [m[1], m[7]]
    assert tree["optimize"]["note"] == f"#{m[8]}"
    assert '"#' in render(tree)                        # the quoted reference stays quoted
    # A removed row is reported, not silently renumbered.
    design2 = load_design(write(BN, "bn.yaml"))
    bn_row = next(r.index for r in design2.rows if r.label == "batchnorm")
    removed = correct(design2, "remove_rows", Case(row=bn_row))
    tree = parse(f"optimize: {{row: {bn_row}}}\n", "x.yaml")
    assert remap_references(tree, removed.index_map) == [
        f"optimize.row refers to row #{bn_row}, which the correction removed"]
    assert compose({0: 1, 1: None}, {1: 3}) == {0: 3, 1: None}


def test_edit_moves_follow_inserts_removals_and_wraps():
    tree = parse("layers: [a, b, c, d]\n", "x.yaml")
    edit = Edit(tree)
    edit.insert(("layers",), 1, "x")              # a x b c d
    assert edit.current(("layers", 2)) == ("layers", 3)
    edit.wrap(("layers",), 2, 4)                  # a x [b c] d
    assert edit.current(("layers", 1)) == ("layers", 2, "residual", 0)
    assert edit.current(("layers", 3)) == ("layers", 3)
    edit.remove(("layers",), 0)                   # x [b c] d
    assert edit.current(("layers", 0)) is None
    assert edit.current(("layers", 3)) == ("layers", 2)
    assert tree["layers"] == ["a", "b", "c", "d"]  # the original is never touched
    assert keys_of("layers[3].of[0].residual[1]") == ("layers", 3, "of", 0, "residual", 1)


def test_suggest_orders_by_the_paraxial_prediction():
    relu = load_design(DESIGNS / "default-init-relu.yaml")
    assert suggest(relu, Case(code="FLOW", value=-60.0))[0].name == "he_init"
    tanh = load_design(DESIGNS / "deep-tanh.yaml")
    first = suggest(tanh, Case(code="FLOW", value=-50.0))[0]
    assert first.name == "critical_init"
    assert abs(first.prediction.after.flow_body) < 0.5
    skipped: dict = {}
    bn = suggest(load_design(DESIGNS / "deep-bn-relu.yaml"), Case(code="FLOW", value=50.0),
                 skipped=skipped)
    assert abs(bn[0].prediction.after.value("FLOW")) < abs(bn[0].prediction.before.value("FLOW"))
    assert "insert_batchnorm" in skipped and "he_init" in skipped


def test_for_code_puts_the_aberrations_own_order_first():
    names = for_code("FLOW", ["critical_init", "he_init", "no_such"])
    assert names[:2] == ["critical_init", "he_init"]
    assert "no_such" not in names and "wrap_residual" in names
    assert for_code("GAP") == ["insert_dropout", "weight_decay"]


def test_swap_activation_treats_saturation_with_gelu(write):
    design, patch = _patch(write, """
        netlens: 1
        data: {source: digits, n: 200}
        layers:
          - flatten
          - linear: {width: 32, init: {sigma_w2: 4.0}}
          - tanh            # saturates at this weight scale
          - linear: 10
        """, "swap_activation", Case(code="SATR", row=2))
    assert [r.element.name for r in patch.design.rows] == ["flatten", "linear", "gelu", "linear"]
    assert "# saturates at this weight scale" in patch.text
