"""The calibration set: sound modern designs (designs/healthy/) get no warning, and every bundled
defect design still gets the finding of its defect at warn or error.

A threshold or judging rule that flags a healthy recipe teaches a user to "fix" what is not
broken; one that lets a defect design through is no instrument. Both are checked here, on the
same judge. Each healthy design is simulated once (module fixture) and judged at the end and,
for the regression, at initialization.
"""
from __future__ import annotations

import pytest

from netlens.aberrations import judge
from tests.conftest import DESIGNS

HEALTHY = sorted(p.stem for p in (DESIGNS / "healthy").glob("*.yaml"))
HEALTHY_BUNDLED = ("quickstart", "small-cnn")
# Each defect design and the finding (code, case) its comment promises, at warn or error.
DEFECTS = {
    "deep-bn-relu": ("FLOW", "exploding"),
    "deep-narrow-relu": ("DEAD", None),
    "deep-tanh": ("FLOW", "vanishing"),
    "default-init-relu": ("FLOW", "vanishing"),
    "edge-of-stability": ("SHRP", None),
    "lr-too-high": ("DIVG", "non-finite"),
    "random-labels": ("GAP", None),
}
BUNDLED = sorted(p.stem for p in DESIGNS.glob("*.yaml") if "." not in p.stem)


@pytest.fixture(scope="module")
def healthy(tmp_path_factory):
    """Each healthy design diagnosed once through the Python API: name → diagnose.Result."""
    from netlens.diagnose import diagnose

    cache = {}

    def _get(name: str):
        if name not in cache:
            out = tmp_path_factory.mktemp(name) / "run"
            cache[name] = diagnose(DESIGNS / "healthy" / f"{name}.yaml", out=out, plot=False)
        return cache[name]

    return _get


def alarms(findings) -> list[tuple]:
    return [(f["code"], f.get("kind"), f["severity"], f["message"]) for f in findings
            if f["severity"] in ("warn", "error")]


def test_the_suite_covers_modern_recipes():
    assert len(HEALTHY) >= 8
    texts = {n: (DESIGNS / "healthy" / f"{n}.yaml").read_text() for n in HEALTHY}
    joined = "\n".join(texts.values())
    for needed in ("residual", "layernorm", "groupnorm", "batchnorm", "adamw", "weight_decay",
                   "warmup", "schedule: cosine", "dropout", "silu", "tanh", "xavier", "diabetes"):
        assert needed in joined, needed
    assert all(t.lstrip().startswith("#") for t in texts.values())     # each one explains itself


@pytest.mark.parametrize("name", HEALTHY)
def test_healthy_recipe_gets_no_warning(healthy, name):
    result = healthy(name)
    assert not alarms(result.doc["findings"])
    assert result.diagnosis.worst in ("ok", "info")
    # info findings are not actionable: no prescription diff is proposed for them
    assert all(not f["corrections"] for f in result.doc["findings"] if f["severity"] == "info")


def test_regression_is_clean_at_init_with_standardized_targets(healthy):
    """diabetes (target mean ≈ 152, std ≈ 77) with He init: the initial loss is about the
    standardized targets' variance, so INIT — and everything else — is quiet at step 0, and the
    report gives the error back in the targets' own units."""
    result = healthy("diabetes-regression")
    dx = judge(result.records, result.trace, "init")
    assert not [f for f in dx.findings if f.severity in ("warn", "error")]
    assert 0.8 < dx.network["INIT"]["value"] < 1.5
    info = result.records.data_info
    assert 140 < info["target_mean"][0] < 165 and 65 < info["target_std"][0] < 90
    m = result.doc["metrics"]
    assert m["train_rmse"] == pytest.approx((m["train_loss"] * info["target_std"][0] ** 2) ** 0.5, rel=1e-3)
    assert 0 < m["val_r2"] < 1


def test_every_defect_design_declares_its_defect():
    assert set(BUNDLED) == set(DEFECTS) | set(HEALTHY_BUNDLED)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(DEFECTS))
def test_defect_design_still_shows_its_defect(bundled, name):
    code, kind = DEFECTS[name]
    _exit, doc = bundled(name)
    hits = [f for f in doc["findings"] if f["code"] == code and f["severity"] in ("warn", "error")
            and (kind is None or f["kind"] == kind)]
    assert hits, [(f["code"], f["kind"], f["severity"]) for f in doc["findings"]]
