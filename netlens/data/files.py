"""Data from the user's own files: `.csv` and `.npz`.

csv: a header row, then one sample per row; `target:` names the label column (default
the last); every other column is a numeric feature. npz: arrays `X` (N×features, or
N×C×H×W for images) and `y` (N labels, or N×k regression targets); loaded without
pickle, so a file cannot run code.

Task rule, for both: labels are classes if non-numeric, or integer-valued with at
most 50 distinct values; otherwise the task is regression. Classes are numbered in
sorted order of their label values (so labels 0..C-1 keep their numbers).
"""
from __future__ import annotations

import csv
import zipfile
from pathlib import Path

import numpy as np

from netlens.errors import DesignError

from .registry import CLASSIFICATION, REGRESSION, Header, did_you_mean, source
from .spec import DataSpec

MAX_CLASSES = 50
#: Largest magnitude of a feature: float32, which training uses, holds no more (and squaring for
#: standardization must not overflow).
MAX_VALUE = float(np.finfo(np.float32).max)
MAX_SHOWN = 12            # columns of a header a message lists


def _cells(cells: list[str]) -> str:
    """A header's cells as a message shows them: a few, each short."""
    shown = [c if len(c) <= 24 else c[:24] + "…" for c in cells[:MAX_SHOWN]]
    return ", ".join(shown) + (f" … ({len(cells)} columns)" if len(cells) > MAX_SHOWN else "")


def resolve(spec: DataSpec, base_dir: Path) -> Path:
    """The data file, relative paths taken from the design file's folder."""
    path = Path(spec.source).expanduser()
    if not path.is_absolute():
        path = Path(base_dir) / path
    if path.is_dir():
        raise DesignError(f"the data source is a folder, not a file: {path}", path="data.source",
                          found=spec.source, expected="a .csv or .npz file")
    if path.exists() and not path.is_file():
        raise DesignError(f"the data source is not a regular file (a pipe or device?): {path}",
                          path="data.source", found=spec.source, expected="a .csv or .npz file")
    if not path.is_file():
        raise DesignError(f"data file not found: {path}", path="data.source", found=spec.source,
                          expected="an existing file (relative paths start at the design file's folder)")
    return path


def _unreadable(path: Path, why: object) -> DesignError:
    if isinstance(why, OSError):
        why = why.strerror or why.__class__.__name__
    elif isinstance(why, UnicodeDecodeError):
        why = "not UTF-8 text"
    return DesignError(f"cannot read data file {path}: {why}", path="data.source")


def labels(values: np.ndarray, path: Path) -> tuple[np.ndarray, str, int]:
    """(y, task, n_outputs) from raw labels: class indices (int64) or N×k float targets."""
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim == 2:  # several targets per sample can only be a regression
        return _targets(values, path), REGRESSION, values.shape[1]
    if values.ndim != 1:
        raise _unreadable(path, f"labels must be N or N×k, found shape {values.shape}")
    try:
        numeric = values.astype(np.float64)
    except ValueError:  # text labels: classes
        names, y = np.unique(values.astype(str), return_inverse=True)
        return y.astype(np.int64), CLASSIFICATION, len(names)
    distinct, y = np.unique(numeric, return_inverse=True)
    if np.all(np.isfinite(distinct)) and np.all(distinct == np.round(distinct)) \
            and len(distinct) <= MAX_CLASSES:
        return y.astype(np.int64), CLASSIFICATION, len(distinct)
    return _targets(numeric[:, None], path), REGRESSION, 1


def _targets(values: np.ndarray, path: Path) -> np.ndarray:
    try:
        targets = values.astype(np.float64)
    except ValueError as err:
        raise _unreadable(path, f"regression targets must be numbers ({err})") from None
    bad = ~(np.abs(targets) <= MAX_VALUE)
    if bad.any():
        sample = int(np.flatnonzero(bad.reshape(len(targets), -1).any(axis=1))[0])
        raise _unreadable(path, f"targets hold NaN, infinity or a value beyond ±{MAX_VALUE:.2g} "
                                f"(first in sample {sample}, line {sample + 2} of a csv file)")
    return targets


# ---- csv ----------------------------------------------------------------------------

def _csv_rows(path: Path):
    """Header and the data rows (stripped, blank lines skipped)."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            rows = [[cell.strip() for cell in row] for row in csv.reader(handle) if any(row)]
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise _unreadable(path, err) from None
    if len(rows) < 2:
        raise _unreadable(path, "expected a header row and at least one data row")
    header, body = rows[0], rows[1:]
    for number, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise _unreadable(path, f"line {number} has {len(row)} cells, the header {len(header)}")
    return header, body


def _target_column(spec: DataSpec, header: list[str]) -> int:
    if len(header) < 2:
        raise DesignError("a csv data file needs at least one feature and one label column",
                          path="data.source", found=f"{len(header)} column",
                          expected="a header row of comma-separated column names")
    if spec.target is None:
        return len(header) - 1
    if spec.target not in header:
        raise DesignError("no such column in the data file", path="data.target",
                          expected=f"one of {_cells(header)}", found=spec.target,
                          suggestion=did_you_mean(spec.target, header))
    return header.index(spec.target)


def _csv_table(spec: DataSpec, base_dir: Path):
    """(path, header, body, target column index, labels as `labels()` returns them)."""
    path = resolve(spec, base_dir)
    header, body = _csv_rows(path)
    column = _target_column(spec, header)
    return path, header, body, column, labels(np.array([row[column] for row in body]), path)


def _csv_header(spec: DataSpec, base_dir: Path) -> Header:
    path, header, body, column, (_, task, outputs) = _csv_table(spec, base_dir)
    _features(path, header, body, column)      # every cell checked, so paraxial refuses bad ones
    return Header((len(header) - 1,), task, outputs, len(body))


@source("csv", suffix=".csv", header=_csv_header, options=("target",))
def read_csv(spec: DataSpec, rng: np.random.Generator, base_dir: Path):
    """A .csv file with a header row; `target:` names the label column (default last)."""
    path, header, body, column, (y, _, _) = _csv_table(spec, base_dir)
    return _features(path, header, body, column), y


def _features(path: Path, header: list[str], body: list[list[str]], column: int) -> np.ndarray:
    """The feature cells as numbers; the first bad one is reported with its line and column."""
    features = [i for i in range(len(header)) if i != column]
    x = np.empty((len(body), len(features)))
    for r, row in enumerate(body):
        for c, i in enumerate(features):
            try:
                v = float(row[i])
            except ValueError:
                raise _unreadable(path, f"line {r + 2}, column `{_cells([header[i]])}`: "
                                        f"{_cells([row[i]])!r} is not a number") from None
            if not abs(v) <= MAX_VALUE:
                what = "NaN" if v != v else ("infinite" if abs(v) == float("inf") else
                                            f"beyond ±{MAX_VALUE:.2g}, what float32 holds")
                raise _unreadable(path, f"line {r + 2}, column `{_cells([header[i]])}`: "
                                        f"{_cells([row[i]])!r} is {what}; features must be finite numbers")
            x[r, c] = v
    return x


# ---- npz ----------------------------------------------------------------------------

def _npz_check(path: Path) -> None:
    try:
        with zipfile.ZipFile(path) as archive:
            members = {name.removesuffix(".npy") for name in archive.namelist()}
    except (OSError, zipfile.BadZipFile) as err:
        raise _unreadable(path, err) from None
    missing = [name for name in ("X", "y") if name not in members]
    if missing:
        raise _unreadable(path, f"needs arrays `X` and `y`, found {_cells(sorted(members)) or 'none'}")


def _npz_shape(path: Path, name: str) -> tuple[int, ...]:
    """Shape of one array read from its .npy header alone (no data read); `X` must be numeric."""
    readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
    try:
        with zipfile.ZipFile(path) as archive, archive.open(f"{name}.npy") as member:
            version = np.lib.format.read_magic(member)
            head = readers[version](member) if version in readers else None
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as err:
        raise _unreadable(path, f"`{name}` is not a readable array ({err.__class__.__name__})") from None
    if head is None:
        return _npz_array(path, name).shape
    shape, _, dtype = head
    if dtype.kind not in "biuf":
        raise _unreadable(path, f"`{name}` must be numeric, found dtype {dtype}")
    return tuple(shape)


def _npz_array(path: Path, name: str) -> np.ndarray:
    try:
        with np.load(path, allow_pickle=False) as arrays:
            return arrays[name]
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise _unreadable(path, err) from None


def _npz_labels(spec: DataSpec, base_dir: Path):
    path = resolve(spec, base_dir)
    _npz_check(path)
    y, task, outputs = labels(_npz_array(path, "y"), path)
    return path, y, task, outputs


def _npz_header(spec: DataSpec, base_dir: Path) -> Header:
    path, y, task, outputs = _npz_labels(spec, base_dir)
    shape = _npz_shape(path, "X")
    if len(shape) not in (2, 4):
        raise _unreadable(path, f"`X` has shape {shape}; expected N×features or N×C×H×W (2 or 4 axes)")
    if shape[0] != len(y):
        raise _unreadable(path, f"`X` of shape {shape} does not hold one sample per label ({len(y)})")
    return Header(shape[1:], task, outputs, shape[0])


@source("npz", suffix=".npz", header=_npz_header)
def read_npz(spec: DataSpec, rng: np.random.Generator, base_dir: Path):
    """A .npz file with arrays `X` (N×features or N×C×H×W) and `y`."""
    path, y, task, outputs = _npz_labels(spec, base_dir)
    x = _npz_array(path, "X")
    if x.dtype.kind not in "biuf":
        raise _unreadable(path, f"`X` must be numeric, found dtype {x.dtype}")
    x = x.astype(np.float64)
    bad = ~(np.abs(x) <= MAX_VALUE)
    if bad.any():
        sample = int(np.flatnonzero(bad.reshape(len(x), -1).any(axis=1))[0])
        raise _unreadable(path, f"`X` holds NaN, infinity or a value beyond ±{MAX_VALUE:.2g} "
                                f"(first in sample {sample}); features must be finite numbers")
    return x, y
