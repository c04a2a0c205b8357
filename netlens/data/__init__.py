"""The data layer: bundled, generated and file data sets.

numpy, scikit-learn (imported only when a bundled set is read) and pydantic; no torch.
It hands numpy arrays to the training code, which converts them.

    spec = DataSpec.parse({"source": "digits", "val": 0.2})
    info = describe(spec, base_dir)          # shapes and task, fast
    data = load(spec, seed, base_dir)        # split, corrupted, standardized arrays
    for idx in batches(len(data.x_train), spec.batch, seed): ...
"""
from . import bundled, files, generated  # noqa: F401  (registers the sources)
from .pipeline import DataInfo, Dataset, batches, describe, load
from .registry import FORMATS, SOURCES, Header, Source, source
from .spec import DataSpec

__all__ = ["DataSpec", "DataInfo", "Dataset", "SOURCES", "FORMATS", "Source", "Header",
           "source", "describe", "load", "batches"]
