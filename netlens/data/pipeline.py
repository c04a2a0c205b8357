"""From a `DataSpec` to arrays: describe, load (subsample, split, corrupt, scale), batch.

Every random step draws from its own stream of the run seed, so changing one option
(say `label_noise`) does not reshuffle the split, and the same seed gives the same data.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from math import prod
from pathlib import Path
from typing import Literal

import numpy as np

from netlens.errors import DesignError

from .registry import CLASSIFICATION, Header, Source, lookup
from .spec import DataSpec

# Independent random streams of one run seed.
GENERATE, SUBSAMPLE, SPLIT, LABEL_NOISE, POWER_ESTIMATE = range(5)
#: Samples generated to estimate the raw input power in `describe()`.
POWER_SAMPLES = 512


@dataclass(frozen=True)
class DataInfo:
    """What the network sees: per-sample input shape, task and output width.

    `n_classes` is 1 for regression; `n_outputs` is the class count for
    classification, the target width for regression. `input_power` is the mean square
    of the network input per feature after preprocessing (1.0 when standardized,
    less when some features are constant, which become 0).
    """

    input_shape: tuple[int, ...]
    task: Literal["classification", "regression"]
    n_classes: int
    n_samples: int
    n_outputs: int
    input_power: float
    # Regression targets standardized with these training-split statistics (per output), so a
    # loss converts back to the original units: mse_original = mse · std². None: not standardized.
    target_mean: tuple[float, ...] | None = None
    target_std: tuple[float, ...] | None = None

    @property
    def n_features(self) -> int:
        return prod(self.input_shape)


@dataclass(frozen=True, eq=False)
class Dataset:
    """Split, preprocessed arrays: float32 inputs; int64 class indices (N,) or float32
    targets (N, n_outputs). With `val: 0` the validation arrays are empty."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    info: DataInfo
    source: str


def _rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed % 2**64, spawn_key=(stream,)))


def _sample_count(spec: DataSpec, head: Header) -> int:
    """Samples used: `n` when subsampling (at most what the source has), else all."""
    if spec.n is not None and spec.n > head.n_samples:
        raise DesignError(f"`{spec.source}` has only {head.n_samples} samples", path="data.n",
                          expected=f"at most {head.n_samples}", found=spec.n)
    return head.n_samples if spec.n is None else spec.n


def _check_task(spec: DataSpec, head: Header) -> None:
    if spec.label_noise and head.task != CLASSIFICATION:
        raise DesignError(f"`label_noise` applies to classes only; `{spec.source}` is a regression",
                          path="data.label_noise", expected="0 or no label_noise", found=spec.label_noise)
    if spec.standardize_targets and head.task == CLASSIFICATION:
        raise DesignError(f"`standardize_targets` applies to regressions; `{spec.source}` has classes",
                          path="data.standardize_targets", expected="no standardize_targets",
                          found=spec.standardize_targets)


def _info(head: Header, n_samples: int, input_power: float,
          targets: tuple[np.ndarray, np.ndarray] | None = None) -> DataInfo:
    classify = head.task == CLASSIFICATION
    mean, std = (None, None) if targets is None else (
        tuple(float(v) for v in targets[0]), tuple(float(v) for v in targets[1]))
    return DataInfo(tuple(head.input_shape), head.task, head.n_outputs if classify else 1,
                    n_samples, head.n_outputs, float(input_power), mean, std)


def _prepared(spec: DataSpec, base_dir: Path) -> tuple[Source, Header, int]:
    src = lookup(spec.source)
    head = src.header(spec, Path(base_dir))
    n = _sample_count(spec, head)
    _check_task(spec, head)
    return src, head, n


def describe(spec: DataSpec, base_dir: Path = Path(".")) -> DataInfo:
    """Shapes and task without loading the data (bundled sets: no scikit-learn import)."""
    src, head, n = _prepared(spec, base_dir)
    return _info(head, n, 1.0 if spec.standardize else _raw_power(src, spec, head, Path(base_dir)))


def _raw_power(src: Source, spec: DataSpec, head: Header, base_dir: Path) -> float:
    """Mean square of the unscaled features: declared, or measured on a small draw."""
    if head.raw_power is not None:
        return head.raw_power
    # Generated sources make POWER_SAMPLES fresh samples; files are read whole.
    small = spec.model_copy(update={"n": min(head.n_samples, POWER_SAMPLES)})
    x, _ = src.read(small, _rng(0, POWER_ESTIMATE), base_dir)
    return float(np.mean(np.square(x, dtype=np.float64)))


def load(spec: DataSpec, seed: int, base_dir: Path = Path(".")) -> Dataset:
    """Read, subsample `n`, split off `val`, corrupt training labels, standardize."""
    src, head, n = _prepared(spec, base_dir)
    x, y = _conform(*src.read(spec, _rng(seed, GENERATE), Path(base_dir)), head)
    strata = y if head.task == CLASSIFICATION else None

    keep, _ = _take(len(y), n, strata, _rng(seed, SUBSAMPLE))
    x, y = x[keep], y[keep]
    strata = None if strata is None else y
    val, train = _take(n, _val_count(spec, n), strata, _rng(seed, SPLIT))
    x_train, y_train, x_val, y_val = x[train], y[train], x[val], y[val]

    if spec.label_noise:
        y_train = _corrupt(y_train, spec.label_noise, head.n_outputs, _rng(seed, LABEL_NOISE))
    if spec.standardize:
        x_train, x_val = _standardize(x_train, x_val)
    targets = None
    if head.task != CLASSIFICATION and spec.standardize_targets is not False:
        y_train, y_val, targets = _standardize_targets(y_train, y_val)
    power = float(np.mean(np.square(x_train, dtype=np.float64)))
    return Dataset(x_train.astype(np.float32), y_train, x_val.astype(np.float32), y_val,
                   _info(head, n, power, targets), src.name)


def _conform(x: np.ndarray, y: np.ndarray, head: Header) -> tuple[np.ndarray, np.ndarray]:
    """Float64 inputs of the declared shape; int64 classes or float32 N×k targets."""
    x = np.asarray(x, dtype=np.float64)
    if x.shape[1:] != tuple(head.input_shape) or len(y) != len(x):
        raise RuntimeError(f"source gave X {x.shape}, y {np.shape(y)}; "
                           f"declared {head.input_shape} per sample")  # a bug, not a user error
    if head.task == CLASSIFICATION:
        return x, np.asarray(y, dtype=np.int64)
    return x, np.asarray(y, dtype=np.float32).reshape(len(x), -1)


def _val_count(spec: DataSpec, n: int) -> int:
    if spec.val == 0:
        return 0
    if n < 2:
        raise DesignError("a validation split needs at least 2 samples", path="data.val",
                          expected="val: 0, or n ≥ 2", found=spec.val)
    # At least one sample on each side of the split.
    return min(max(round(spec.val * n), 1), n - 1)


def _take(n: int, k: int, strata: np.ndarray | None, rng: np.random.Generator):
    """Split range(n) into k taken and n−k kept indices, both shuffled.

    With `strata` (class labels) each class contributes in proportion to its size,
    the rounding remainders going to the classes with the largest fractions.
    """
    if strata is None:
        order = rng.permutation(n)
        return order[:k], order[k:]
    classes, inverse = np.unique(strata, return_inverse=True)
    counts = np.bincount(inverse)
    quota = counts * k / n
    share = np.floor(quota).astype(int)
    share[np.argsort(share - quota, kind="stable")[: k - share.sum()]] += 1
    taken, kept = [], []
    for c, m in enumerate(share):
        members = rng.permutation(np.flatnonzero(inverse == c))
        taken.append(members[:m])
        kept.append(members[m:])
    return rng.permutation(np.concatenate(taken)), rng.permutation(np.concatenate(kept))


def _corrupt(y: np.ndarray, fraction: float, n_classes: int, rng: np.random.Generator) -> np.ndarray:
    """Replace `fraction` of the labels by uniform random classes (which may equal the
    true one, so about fraction·(1 − 1/C) change)."""
    y = y.copy()
    chosen = rng.choice(len(y), size=round(fraction * len(y)), replace=False)
    y[chosen] = rng.integers(0, n_classes, size=len(chosen))
    return y


def _standardize(x_train: np.ndarray, x_val: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Zero mean, unit variance per feature (per pixel) from training statistics;
    features constant over the training split carry no information and become 0."""
    mean, std = x_train.mean(axis=0), x_train.std(axis=0)
    constant = np.ptp(x_train, axis=0) == 0  # exact, unlike a threshold on std
    scale = np.where(constant, 0.0, 1.0 / np.where(constant, 1.0, std))
    return (x_train - mean) * scale, (x_val - mean) * scale


def _standardize_targets(y_train: np.ndarray, y_val: np.ndarray):
    """Regression targets to zero mean and unit variance per output, from training statistics
    (a constant target keeps its scale: only its mean is removed). A network starts with outputs
    near 0, so unscaled targets (diabetes: mean ≈ 152, std ≈ 77) would make its initial loss
    the targets' mean² + variance — a 'hot' start that has nothing to do with its init."""
    mean = y_train.astype(np.float64).mean(axis=0) if len(y_train) else np.zeros(y_train.shape[1])
    std = y_train.astype(np.float64).std(axis=0) if len(y_train) else np.ones(y_train.shape[1])
    std = np.where(std > 0, std, 1.0)
    scale = lambda y: ((y - mean) / std).astype(np.float32)   # noqa: E731
    return scale(y_train), scale(y_val), (mean, std)


def batches(n_train: int, batch: int | Literal["full"], seed: int) -> Iterator[np.ndarray]:
    """Endless index batches: `full` → all indices every step; otherwise a fresh
    permutation each epoch cut into batches of `batch` (min n_train), the last
    incomplete batch dropped so every step sees the same batch size."""
    if n_train < 1:
        raise ValueError("batches() needs at least one training sample")
    if batch == "full":
        everything = np.arange(n_train)
        everything.setflags(write=False)  # the same array every step: keep it intact
        while True:
            yield everything
    size = min(int(batch), n_train)
    if size < 1:
        raise ValueError(f"batch size must be positive, got {batch!r}")
    rng = np.random.default_rng(seed)
    while True:
        order = rng.permutation(n_train)
        for start in range(0, n_train - size + 1, size):
            yield order[start:start + size]
