"""The registry of data sources.

A source is one reading function registered by name with `@source(...)`, which also
declares the options it accepts and a cheap `header` (shape, task, outputs, count)
that `describe()` answers from without reading the data. Adding a data set is adding
one decorated function.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from netlens.errors import DesignError, suggest

if TYPE_CHECKING:
    from .spec import DataSpec

CLASSIFICATION = "classification"
REGRESSION = "regression"

#: Options every source accepts (the rest of `DataSpec` is source-specific).
COMMON_OPTIONS = ("source", "n", "val", "batch", "label_noise", "standardize", "standardize_targets")
#: Source-specific options; each source declares which of these it reads.
SOURCE_OPTIONS = ("noise", "dims", "classes", "arms", "width", "depth", "task", "target")


@dataclass(frozen=True)
class Header:
    """What a source knows about its data before reading it.

    `n_outputs` is the number of classes for classification, the target width for
    regression; `n_samples` the count before subsampling; `raw_power` the mean square
    of the raw features when known without reading (else None: measured on demand).
    """

    input_shape: tuple[int, ...]
    task: str
    n_outputs: int
    n_samples: int
    raw_power: float | None = None


#: read(spec, rng, base_dir) -> (X, y): X is N×(sample shape), y N labels or N×k targets.
Reader = Callable[["DataSpec", np.random.Generator, Path], tuple[np.ndarray, np.ndarray]]
HeaderFn = Callable[["DataSpec", Path], Header]


@dataclass(frozen=True)
class Source:
    name: str
    read: Reader
    header: HeaderFn
    options: tuple[str, ...] = ()
    check: Callable[["DataSpec"], None] | None = None
    suffix: str | None = None

    @property
    def about(self) -> str:
        """First line of the reader's docstring, for catalogs and help."""
        doc = (self.read.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else ""


#: Named sources (`source: digits`).
SOURCES: dict[str, Source] = {}
#: File formats by suffix (`source: path/to.csv`).
FORMATS: dict[str, Source] = {}


def source(name: str, *, header: Header | HeaderFn, options: tuple[str, ...] = (),
           check: Callable[["DataSpec"], None] | None = None,
           suffix: str | None = None) -> Callable[[Reader], Reader]:
    """Register a reader as data source `name` (or as the reader of files ending `suffix`).

    `header` is a constant `Header` for sets of fixed shape, or a function of the spec
    and base folder for those whose shape depends on options or on a file.
    """
    def register(read: Reader) -> Reader:
        head = header if callable(header) else (lambda spec, base_dir: header)
        table, key = (FORMATS, suffix.lower()) if suffix else (SOURCES, name)
        if key in table:
            raise ValueError(f"data source {key!r} registered twice")
        unknown = set(options) - set(SOURCE_OPTIONS)
        if unknown:
            raise ValueError(f"{name}: unknown options {sorted(unknown)}")
        table[key] = Source(name, read, head, tuple(options), check, suffix)
        return read
    return register


def did_you_mean(word: str, options) -> str | None:
    """'Did you mean `x`?' for the closest option, or None."""
    close = suggest(word, options)
    return f"Did you mean `{close}`?" if close else None


def lookup(name: str) -> Source:
    """The source for a `data.source` value: a registered name or a .csv/.npz path."""
    suffix = Path(name).suffix.lower()
    if suffix in FORMATS:
        return FORMATS[suffix]
    if name in SOURCES:
        return SOURCES[name]
    files = " or ".join(FORMATS)
    if suffix or "/" in name or "\\" in name:
        raise DesignError(f"unsupported data file type `{suffix or name}`", path="data.source",
                          expected=f"a {files} file", found=name)
    raise DesignError("unknown data source", path="data.source",
                      expected=f"one of {', '.join(SOURCES)}, or a path to a {files} file",
                      found=name, suggestion=did_you_mean(name, SOURCES))
