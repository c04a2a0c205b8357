"""The essay's six phenomena (designs/phenomena/*): each measurable claim, at small scale.

Each test runs the phenomenon's own `measure.py` functions — the ones its page prints — with
fewer steps, seeds or grid points, and asserts what the page claims.
"""
from __future__ import annotations

import importlib.util
import math

import pytest

from conftest import ROOT

PHENOMENA = ROOT / "designs" / "phenomena"


def measure(folder: str):
    path = PHENOMENA / folder / "measure.py"
    spec = importlib.util.spec_from_file_location(f"phenomenon_{folder.split('-')[0]}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_every_phenomenon_has_designs_a_page_and_a_script():
    folders = sorted(p.name for p in PHENOMENA.iterdir() if p.is_dir() and not p.name.startswith("_"))
    assert [f.split("-")[0] for f in folders] == ["1", "2", "3", "4", "5", "6"]
    from netlens.prescription import load_design

    for f in folders:
        page = (PHENOMENA / f / "README.md").read_text()
        for heading in ("## The claim", "## Commands", "## What netlens explains", "## Papers"):
            assert heading in page, (f, heading)
        assert "```console" in page and "$ " in page, f          # real commands with their output
        assert (PHENOMENA / f / "measure.py").is_file()
        designs = list((PHENOMENA / f).glob("*.yaml"))
        assert designs, f
        for d in designs:
            load_design(d)                                        # every design is valid


def test_lanczos_from_the_bottom_finds_the_most_negative_eigenvalue():
    import torch

    from netlens.instruments.hessian import Lanczos

    eig = torch.tensor([-2.0, 0.5, 1.0, 3.0, 0.1, -0.3], dtype=torch.float64)
    q, _ = torch.linalg.qr(torch.randn(6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1)))
    a = q @ torch.diag(eig) @ q.T
    x = torch.randn(6, dtype=torch.float64, requires_grad=True)
    gen = torch.Generator().manual_seed(0)
    low, _ = Lanczos(10, 1e-8, which="bottom").estimate(0.5 * x @ a @ x, [x], gen)
    high, _ = Lanczos(10, 1e-8).estimate(0.5 * x @ a @ x, [x], gen)
    assert low == pytest.approx(-2.0, abs=1e-6) and high == pytest.approx(3.0, abs=1e-6)


def test_bottom_of_the_spectrum_and_gaussian_dropout_do_not_change_training(write):
    import torch

    from test_instruments import DESIGN

    from netlens.prescription import load_design
    from netlens.simulate import simulate

    text = DESIGN.replace("max_products: 5}", "max_products: 5, bottom: true, bottom_products: 8}")
    text = text.replace("- dropout: 0.3", "- gaussian_dropout: 0.3")
    text = text.replace("optimizer: adam", "optimizer: sgd")     # λ_min beside the raw λ_max (Adam's is P⁻¹H)
    design = load_design(write(text))
    probed, bare = simulate(design), simulate(design, instruments=False)
    read = [s for s in probed.records.snapshots if s.hessian is not None]    # the Hessian tier's steps
    assert read and all(s.hessian_min is not None and s.hessian_min <= s.hessian for s in read)
    a, b = probed.net.state_dict(), bare.net.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert probed.records.loss_curve == bare.records.loss_curve


@pytest.mark.slow
def test_1_a_ulp_grows_in_the_chaotic_design_and_a_step_past_2_over_lambda(tmp_path):
    m = measure("1-numerical-instability")
    twins = m.twins(seeds=2, workdir=tmp_path)
    assert twins["stable"]["relative_distance"] < 1e-3
    assert twins["chaotic"]["relative_distance"] > 1e-2 > 1e4 * twins["stable"]["relative_distance"]
    assert twins["chaotic"]["doubling_steps"] is not None and twins["chaotic"]["doubling_steps"] < 50
    lam0, rows = m.step_sizes((0.9, 3.0, 24.0), steps=60)
    below, past, far = rows
    assert not below["diverged"] and below["final_loss"] < below["first_loss"]
    # Past 2/λ₀ the quadratic model predicts divergence; the network instead lowers its own
    # sharpness below 2/η and trains (Cohen et al. 2021) — until the step is far too large.
    assert not past["diverged"] and past["lambda_end"] < past["limit"] < lam0
    assert far["diverged"]


@pytest.mark.slow
def test_2_sharpness_rises_with_batch_and_rescaling_changes_it_not_the_function():
    m = measure("2-flat-minima")
    rows, runs = m.sweep((16, "full"), steps=800)
    small, large = rows
    assert large["sharpness"] > 1.2 * small["sharpness"]         # Keskar et al.: larger batch, sharper
    assert abs(large["gap"] - small["gap"]) < 0.05                 # … but no resolvable gap difference here
    same = m.rescale(runs[16], alphas=(1.0, 10.0))
    assert same[1]["max_output_change"] < 1e-3                    # Dinh et al.: the same function …
    assert same[1]["loss"] == pytest.approx(same[0]["loss"], rel=1e-4)
    assert same[1]["sharpness"] > 10 * same[0]["sharpness"]        # … at another sharpness


def test_3_batchnorm_widens_the_stable_lr_range_and_reaches_the_target_sooner():
    m = measure("3-batchnorm")
    s = m.summary(m.sweep(lrs=(0.1, 0.3, 1.0, 3.0), steps=150))
    assert s["batchnorm"]["max_stable_lr"] >= 3 * s["plain"]["max_stable_lr"]
    assert s["batchnorm"]["fewest_steps"] < s["plain"]["fewest_steps"]


def test_4_negative_curvature_early_and_a_minimum_late():
    m = measure("4-saddle-points")
    rows = m.trajectory(steps=300, every=50)
    first, last = rows[0], rows[-1]
    assert first["lambda_min"] < 0 and first["ratio"] > 0.5        # at a saddle: |λ_min| ≈ λ_max
    assert any(r["lambda_min"] < 0 for r in rows[1:3])             # still there as the loss falls
    assert last["train_loss"] < 0.1 * first["train_loss"]
    assert last["ratio"] < 0.2                                     # near a minimum


@pytest.mark.slow
def test_5_dropout_against_gaussian_noise_and_none_over_seeds(tmp_path):
    import shutil

    from netlens.tolerance import Settings, compare
    from netlens.tolerance.stats import Stat, difference

    names = ("none", "dropout", "gaussian")
    for n in names:
        shutil.copy(PHENOMENA / "5-dropout" / f"{n}.yaml", tmp_path / f"{n}.yaml")
    doc = compare([tmp_path / f"{n}.yaml" for n in names], Settings(seeds=3, steps=200)).doc
    metrics = {d["name"]: d["metrics"] for d in doc["designs"]}
    for v in doc["verdicts"]:
        assert v["verdict"] in ("better", "worse", "indistinguishable")
        if v["metric"] == "val_loss":
            a, b = (Stat(**{k: metrics[x]["val_loss"][k] for k in ("mean", "sd", "n")}) for x in (v["a"], v["b"]))
            beyond = difference(a, b).beyond
            assert (v["verdict"] != "indistinguishable") == beyond     # the verdict follows the rule
    # Both noises regularize: the network without them fits its training split more tightly.
    assert metrics["reg-none"]["train_loss"]["mean"] < metrics["reg-dropout"]["train_loss"]["mean"]
    assert metrics["reg-none"]["train_loss"]["mean"] < metrics["reg-gaussian"]["train_loss"]["mean"]
    # The page's table of seeds needed reads the same runs (the studies are kept: nothing retrains).
    rows = measure("5-dropout").pairs(seeds=3, steps=200, folder=tmp_path)
    assert len(rows) == 9
    for r in rows:
        if r["resolved"]:
            assert r["seeds_needed"] <= r["n"]
        elif math.isfinite(r["seeds_needed"]):
            assert r["seeds_needed"] > r["n"] - 1


def test_6_random_labels_are_memorized_slower_and_do_not_generalize():
    m = measure("6-memorization")
    true, random = m.measure(steps=300)
    assert true["fit_step"] is not None and random["fit_step"] is not None
    assert random["fit_step"] >= 3 * true["fit_step"]
    assert random["train_accuracy"] > 0.99 and random["val_accuracy"] < 0.3
    assert random["gap"] > 0.6 > 0.1 > true["gap"]
    assert math.isfinite(true["val_loss"])
