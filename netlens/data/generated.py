"""Generated data sets, drawn from the run seed (numpy only, no scikit-learn).

Every set has `n` samples (default 1000) and `dims` input features (default 2).
The planar patterns (moons, circles, spirals, xor) live in the first two features;
`dims > 2` appends label-independent standard-normal features ("distractors") that a
network must learn to ignore. `noise` is the standard deviation of Gaussian noise
added to the pattern's coordinates (blobs: the cluster spread; teacher: added to the
teacher's standardized outputs). Classes are balanced to within one sample.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from netlens.errors import DesignError

from .registry import CLASSIFICATION, REGRESSION, Header, source
from .spec import DataSpec

DEFAULT_N = 1000
DEFAULT_DIMS = 2
PLANE_OPTIONS = ("noise", "dims")


def _opt(spec: DataSpec, name: str, default):
    """A source option, or this source's default when the prescription leaves it out."""
    value = getattr(spec, name)
    return default if value is None else value


def _count(spec: DataSpec) -> int:
    return _opt(spec, "n", DEFAULT_N)


def _dims(spec: DataSpec) -> int:
    return _opt(spec, "dims", DEFAULT_DIMS)


def _needs_plane(spec: DataSpec) -> None:
    if _dims(spec) < 2:
        raise DesignError(f"`{spec.source}` is a 2-D pattern", path="data.dims",
                          expected="dims ≥ 2", found=spec.dims)


def _plane_header(classes):
    """Header of a planar pattern with `classes(spec)` classes."""
    def header(spec: DataSpec, base_dir: Path) -> Header:
        return Header((_dims(spec),), CLASSIFICATION, classes(spec), _count(spec))
    return header


def _balanced_labels(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    return rng.permutation(np.arange(n) % k)


def _finish(plane: np.ndarray, spec: DataSpec, noise: float, rng: np.random.Generator) -> np.ndarray:
    """Add coordinate noise to a planar pattern and append the distractor features."""
    plane = plane + noise * rng.standard_normal(plane.shape)
    extra = rng.standard_normal((len(plane), _dims(spec) - 2))
    return np.concatenate([plane, extra], axis=1)


def _unit_circle(angle: np.ndarray) -> np.ndarray:
    return np.stack([np.cos(angle), np.sin(angle)], axis=1)


@source("moons", header=_plane_header(lambda s: 2), options=PLANE_OPTIONS, check=_needs_plane)
def moons(spec: DataSpec, rng: np.random.Generator, base_dir: Path):
    """Two interleaving half circles (as sklearn.datasets.make_moons); noise default 0.1."""
    n = _count(spec)
    y = _balanced_labels(n, 2, rng)
    arc = _unit_circle(rng.uniform(0, np.pi, n))
    # The second moon is the first turned upside down and shifted into its hollow.
    plane = np.where(y[:, None] == 0, arc, [1.0, 0.5] - arc)
    return _finish(plane, spec, _opt(spec, "noise", 0.1), rng), y


@source("circles", header=_plane_header(lambda s: 2), options=PLANE_OPTIONS, check=_needs_plane)
def circles(spec: DataSpec, rng: np.random.Generator, base_dir: Path):
    """A circle inside another of twice its radius (as sklearn.datasets.make_circles);
    noise default 0.05."""
    n = _count(spec)
    y = _balanced_labels(n, 2, rng)
    radius = np.where(y == 0, 1.0, 0.5)[:, None]
    plane = radius * _unit_circle(rng.uniform(0, 2 * np.pi, n))
    return _finish(plane, spec, _opt(spec, "noise", 0.05), rng), y


@source("spirals", header=_plane_header(lambda s: _opt(s, "arms", 2)),
        options=(*PLANE_OPTIONS, "arms"), check=_needs_plane)
def spirals(spec: DataSpec, rng: np.random.Generator, base_dir: Path):
    """Interleaved spiral arms, one class each, 1.5 turns (after Lang & Witbrock 1988,
    the two-spirals problem); arms default 2, noise default 0.05."""
    n, arms = _count(spec), _opt(spec, "arms", 2)
    y = _balanced_labels(n, arms, rng)
    t = rng.uniform(0, 1, n)  # position along the arm: radius grows with angle
    plane = t[:, None] * _unit_circle(3 * np.pi * t + 2 * np.pi * y / arms)
    return _finish(plane, spec, _opt(spec, "noise", 0.05), rng), y


@source("xor", header=_plane_header(lambda s: 2), options=PLANE_OPTIONS, check=_needs_plane)
def xor(spec: DataSpec, rng: np.random.Generator, base_dir: Path):
    """Points in the square [-1, 1]², labelled by whether the signs of the two
    coordinates differ (Minsky & Papert 1969); noise default 0."""
    n = _count(spec)
    plane = rng.uniform(-1, 1, (n, 2))
    y = ((plane[:, 0] > 0) != (plane[:, 1] > 0)).astype(np.int64)
    # Noise is added after labelling, so it blurs the boundary instead of moving it.
    return _finish(plane, spec, _opt(spec, "noise", 0.0), rng), y


def _blobs_header(spec: DataSpec, base_dir: Path) -> Header:
    return Header((_dims(spec),), CLASSIFICATION, _opt(spec, "classes", 3), _count(spec))


@source("blobs", header=_blobs_header, options=("noise", "dims", "classes"))
def blobs(spec: DataSpec, rng: np.random.Generator, base_dir: Path):
    """Isotropic Gaussian clusters with centres uniform in [-10, 10]^dims (as
    sklearn.datasets.make_blobs); classes default 3, noise (cluster spread) default 1."""
    n, k = _count(spec), _opt(spec, "classes", 3)
    centres = rng.uniform(-10, 10, (k, _dims(spec)))
    y = _balanced_labels(n, k, rng)
    return centres[y] + _opt(spec, "noise", 1.0) * rng.standard_normal((n, _dims(spec))), y


def _teacher_task(spec: DataSpec) -> str:
    return spec.task or CLASSIFICATION


def _teacher_outputs(spec: DataSpec) -> int:
    return _opt(spec, "classes", 2) if _teacher_task(spec) == CLASSIFICATION else 1


def _teacher_header(spec: DataSpec, base_dir: Path) -> Header:
    # Inputs are standard normal, so their raw power is 1 exactly.
    return Header((_dims(spec),), _teacher_task(spec), _teacher_outputs(spec), _count(spec),
                  raw_power=1.0)


def _teacher_check(spec: DataSpec) -> None:
    if spec.classes is not None and _teacher_task(spec) == REGRESSION:
        raise DesignError("`classes` applies to a classification teacher", path="data.classes",
                          expected="no `classes` with `task: regression`", found=spec.classes)


TEACHER_GAIN = 1.5      # weight std × √fan_in: nonlinear enough to be interesting, not chaotic
TEACHER_REFERENCE = 1024  # inputs that fix the output scale, independent of n


@source("teacher", header=_teacher_header, check=_teacher_check,
        options=("noise", "dims", "classes", "width", "depth", "task"))
def teacher(spec: DataSpec, rng: np.random.Generator, base_dir: Path):
    """Targets from a random tanh network (the teacher-student setup: Gardner & Derrida
    1989; Saad & Solla 1995). Inputs are standard normal; the teacher has `depth`
    hidden tanh layers (default 2) of `width` (default 32), weights N(0, 1.5²/fan_in),
    biases N(0, 0.1²). Its outputs are standardized on a fixed reference sample, then
    `noise` (default 0) is added; classification takes the argmax over `classes`
    (default 2), regression keeps the single output."""
    dims, width, depth = _dims(spec), _opt(spec, "width", 32), _opt(spec, "depth", 2)
    sizes = [dims] + [width] * depth + [_teacher_outputs(spec)]
    layers = [(rng.standard_normal((a, b)) * TEACHER_GAIN / np.sqrt(a), 0.1 * rng.standard_normal(b))
              for a, b in zip(sizes[:-1], sizes[1:])]

    def forward(x: np.ndarray) -> np.ndarray:
        for i, (w, b) in enumerate(layers):
            x = x @ w + b
            if i < len(layers) - 1:
                x = np.tanh(x)
        return x

    reference = forward(rng.standard_normal((TEACHER_REFERENCE, dims)))
    x = rng.standard_normal((_count(spec), dims))
    # Centring each output on the reference also balances the argmax classes roughly.
    out = (forward(x) - reference.mean(0)) / reference.std(0)
    out = out + _opt(spec, "noise", 0.0) * rng.standard_normal(out.shape)
    if _teacher_task(spec) == CLASSIFICATION:
        return x, out.argmax(1)
    return x, out
