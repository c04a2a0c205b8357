"""The data layer: sources, splits, label noise, standardization, files, errors."""
from __future__ import annotations

import subprocess
import sys
from itertools import islice
from pathlib import Path

import numpy as np
import pytest

from netlens.data import SOURCES, DataSpec, batches, describe, load
from netlens.errors import DesignError

GENERATED = ["moons", "circles", "spirals", "xor", "blobs", "teacher"]


def spec(**fields) -> DataSpec:
    return DataSpec.parse(fields)


@pytest.fixture(scope="module")
def digits():
    return load(spec(source="digits"), seed=0, base_dir=Path("."))


def test_digits_shape(digits):
    assert len(digits.x_train) + len(digits.x_val) == 1797
    assert digits.x_train.shape[1:] == (1, 8, 8) and digits.x_val.shape[1:] == (1, 8, 8)
    assert digits.x_train.dtype == np.float32 and digits.y_train.dtype == np.int64
    assert digits.info.n_classes == 10 and digits.info.n_outputs == 10
    assert set(np.unique(digits.y_train)) == set(range(10))
    assert len(digits.x_val) == round(0.2 * 1797)


def test_digits_standardized(digits):
    x = digits.x_train.astype(np.float64)
    std = x.std(0)
    constant = std < 1e-6
    assert constant.any(), "digits has pixels that are always blank"
    assert np.all(x[:, constant] == 0)
    np.testing.assert_allclose(x.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(std[~constant], 1, atol=1e-4)
    # Power per feature: 1 for each informative pixel, 0 for each constant one.
    assert digits.info.input_power == pytest.approx((~constant).mean(), abs=1e-6)


def test_describe_digits_agrees_with_load(digits):
    info = describe(spec(source="digits"), Path("."))
    assert info.input_shape == digits.info.input_shape
    assert (info.task, info.n_classes, info.n_samples, info.n_outputs) == \
        (digits.info.task, digits.info.n_classes, digits.info.n_samples, digits.info.n_outputs)
    assert info.input_power == 1.0


def test_describe_does_not_import_sklearn():
    code = ("import sys; from pathlib import Path; from netlens.data import DataSpec, describe; "
            "info = describe(DataSpec.parse({'source': 'digits'}), Path('.')); "
            "assert info.input_shape == (1, 8, 8) and info.n_samples == 1797, info; "
            "assert not any(m.split('.')[0] == 'sklearn' for m in sys.modules); "
            "assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])


def test_stratified_split_keeps_class_proportions(digits):
    total = np.bincount(np.concatenate([digits.y_train, digits.y_val]), minlength=10)
    val = np.bincount(digits.y_val, minlength=10)
    assert np.all(np.abs(val - 0.2 * total) <= 1)


def test_stratified_subsample():
    data = load(spec(source="breast_cancer", n=200, val=0.25), seed=3)
    y = np.concatenate([data.y_train, data.y_val])
    assert len(y) == 200 and len(data.y_val) == 50
    # breast_cancer is 212 malignant : 357 benign.
    assert abs(np.sum(y == 0) - 200 * 212 / 569) <= 1
    assert abs(np.sum(data.y_val == 0) - 50 * 212 / 569) <= 1


def test_label_noise_only_on_train(digits):
    noisy = load(spec(source="digits", label_noise=0.3), seed=0)
    np.testing.assert_array_equal(noisy.y_val, digits.y_val)
    np.testing.assert_array_equal(noisy.x_train, digits.x_train)
    changed = np.mean(noisy.y_train != digits.y_train)
    assert changed == pytest.approx(0.3 * (1 - 1 / 10), abs=0.03)


def test_label_noise_is_for_classes_only():
    with pytest.raises(DesignError) as err:
        load(spec(source="diabetes", label_noise=0.1), seed=0)
    assert err.value.path == "data.label_noise"


def test_deterministic_by_seed():
    a, b, c = (load(spec(source="spirals", label_noise=0.1), seed=s) for s in (5, 5, 6))
    for field in ("x_train", "y_train", "x_val", "y_val"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert not np.array_equal(a.x_train, c.x_train)


@pytest.mark.parametrize("name", GENERATED)
def test_generated_sizes(name):
    dims = 5
    data = load(spec(source=name, n=300, dims=dims, val=0.1), seed=1)
    assert len(data.x_train) + len(data.x_val) == 300
    assert data.x_train.shape[1:] == (dims,) and data.info.input_shape == (dims,)
    assert describe(spec(source=name, n=300, dims=dims)).input_shape == (dims,)
    assert data.y_train.max() < data.info.n_classes


def test_generated_options():
    assert load(spec(source="spirals", arms=4, n=400), seed=0).info.n_classes == 4
    assert load(spec(source="blobs", classes=5, n=400), seed=0).info.n_classes == 5
    reg = load(spec(source="teacher", task="regression", width=8, depth=3, n=100), seed=0)
    assert reg.info.task == "regression" and reg.y_train.shape == (80, 1)
    assert reg.y_train.dtype == np.float32


def test_regression_bundled():
    data = load(spec(source="diabetes"), seed=0)
    assert data.info.task == "regression" and data.y_train.shape[1] == 1


def test_val_zero_gives_empty_validation():
    data = load(spec(source="iris", val=0), seed=0)
    assert len(data.x_train) == 150
    assert data.x_val.shape == (0, 4) and data.y_val.shape == (0,)


def test_unstandardized_power():
    data = load(spec(source="iris", standardize=False), seed=0)
    assert data.info.input_power == pytest.approx(np.mean(data.x_train.astype(np.float64) ** 2))
    assert describe(spec(source="iris", standardize=False)).input_power == pytest.approx(15.9, rel=0.01)


def test_csv_round_trip(tmp_path):
    x = np.random.default_rng(0).normal(size=(60, 2))
    names = np.array(["emu", "cat", "dog"])[np.arange(60) % 3]
    # Column `a` holds the row number, so each loaded sample can be traced to its line.
    lines = ["a,species,b,c"] + [f"{i},{names[i]},{x[i, 0]},{x[i, 1]}" for i in range(60)]
    (tmp_path / "pets.csv").write_text("\n".join(lines) + "\n")
    s = spec(source="pets.csv", target="species", val=0, standardize=False)
    info = describe(s, tmp_path)
    assert (info.input_shape, info.task, info.n_classes, info.n_samples) == ((3,), "classification", 3, 60)
    data = load(s, seed=0, base_dir=tmp_path)
    rows = data.x_train[:, 0].astype(int)
    assert sorted(rows) == list(range(60))
    np.testing.assert_allclose(data.x_train[:, 1:], x[rows], rtol=1e-6)
    # Classes are numbered in sorted order of the label text.
    expected = np.array([{"cat": 0, "dog": 1, "emu": 2}[n] for n in names[rows]])
    np.testing.assert_array_equal(data.y_train, expected)


def test_csv_regression_default_target(tmp_path):
    rows = ["u,v,price"] + [f"{i},{i % 7},{i * 1.5 + 0.25}" for i in range(40)]
    (tmp_path / "t.csv").write_text("\n".join(rows))
    data = load(spec(source="t.csv"), seed=0, base_dir=tmp_path)
    assert data.info.task == "regression" and data.y_train.shape == (32, 1)


def test_csv_unknown_target_suggests(tmp_path):
    (tmp_path / "d.csv").write_text("x1,x2,label\n1,2,0\n3,4,1\n")
    with pytest.raises(DesignError) as err:
        describe(spec(source="d.csv", target="lable"), tmp_path)
    assert err.value.path == "data.target" and "label" in err.value.suggestion


def test_missing_file(tmp_path):
    with pytest.raises(DesignError) as err:
        load(spec(source="nowhere/d.csv"), seed=0, base_dir=tmp_path)
    assert err.value.path == "data.source"
    assert str(tmp_path / "nowhere" / "d.csv") in str(err.value)


def test_npz_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(50, 2, 4, 4))
    y = np.arange(50) % 5
    np.savez(tmp_path / "img.npz", X=x, y=y)
    s = spec(source="img.npz", val=0.2)
    info = describe(s, tmp_path)
    assert (info.input_shape, info.task, info.n_classes, info.n_samples) == ((2, 4, 4), "classification", 5, 50)
    data = load(s, seed=0, base_dir=tmp_path)
    assert data.x_train.shape == (40, 2, 4, 4) and data.x_val.shape == (10, 2, 4, 4)
    assert np.all(np.bincount(data.y_val) == 2)


def test_npz_regression_targets(tmp_path):
    np.savez(tmp_path / "r.npz", X=np.ones((20, 3)) * np.arange(20)[:, None], y=np.linspace(0, 1, 40).reshape(20, 2))
    data = load(spec(source="r.npz", val=0), seed=0, base_dir=tmp_path)
    assert data.info.task == "regression" and data.info.n_outputs == 2 and data.y_train.shape == (20, 2)


def test_unknown_source_suggests_digits():
    with pytest.raises(DesignError) as err:
        spec(source="digit")
    assert err.value.path == "data.source" and "`digits`" in err.value.suggestion


@pytest.mark.parametrize("fields, path", [
    ({"source": "digits", "arms": 3}, "data.arms"),
    ({"source": "moons", "classes": 3}, "data.classes"),
    ({"source": "digits", "lable_noise": 0.1}, "data.lable_noise"),
    ({"source": "digits", "batch": "ful"}, "data.batch"),
    ({"source": "digits", "val": 1.0}, "data.val"),
    ({"source": "teacher", "task": "regresion"}, "data.task"),
])
def test_invalid_options(fields, path):
    with pytest.raises(DesignError) as err:
        DataSpec.parse(fields)
    assert err.value.path == path


def test_option_error_lists_accepted_options():
    with pytest.raises(DesignError) as err:
        spec(source="spirals", width=3)
    assert "arms" in str(err.value) and "noise" in str(err.value)


def test_subsample_larger_than_set():
    with pytest.raises(DesignError) as err:
        describe(spec(source="iris", n=1000))
    assert err.value.path == "data.n"


def test_batches_reproducible_epochs():
    first = list(islice(batches(10, 4, seed=7), 6))
    again = list(islice(batches(10, 4, seed=7), 6))
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert all(len(b) == 4 for b in first)
    # Two batches per epoch (the remainder is dropped), never repeating an index.
    for epoch in (first[0:2], first[2:4]):
        assert len(np.unique(np.concatenate(epoch))) == 8
    assert not np.array_equal(np.concatenate(first[0:2]), np.concatenate(first[2:4]))


def test_full_batch():
    steps = list(islice(batches(5, "full", seed=0), 3))
    assert all(np.array_equal(s, np.arange(5)) for s in steps)


def test_registry_names():
    assert {"digits", "iris", "wine", "breast_cancer", "diabetes", *GENERATED} <= set(SOURCES)
