"""netlens: the optical lens-design loop for neural networks.

    import netlens
    trace = netlens.paraxial("designs/deep-tanh.yaml")        # closed form, no training
    run = netlens.simulate("designs/quickstart.yaml")         # instrumented training
    result = netlens.diagnose("designs/default-init-relu.yaml")
    study = netlens.optimize("designs/quickstart.yaml", trials=10)

`netlens.watch(model, optimizer, loss_fn, probe=(x, y))` watches your own model in your own
training loop (netlens.watch).

Each returns a documented result object (`netlens.api`): `.doc` is the command's `--json`
document. Nothing is written unless `out=` is given. Importing netlens is light: torch is
imported by the calls that train.
"""
from __future__ import annotations

import importlib

__all__ = ["__version__", "paraxial", "simulate", "diagnose", "optimize", "watch"]

_API = {"paraxial", "simulate", "diagnose", "optimize", "watch"}


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("netlens")
    except PackageNotFoundError:        # a source tree that was never installed
        return "0+unknown"


def __getattr__(name: str):
    if name == "__version__":
        return _version()
    if name in _API:
        # the module is callable: netlens.paraxial(...) calls netlens.api.paraxial (netlens._callable);
        # netlens.watch(...) is netlens.watch.watch(...)
        return importlib.import_module(f"netlens.{name}")
    raise AttributeError(f"module 'netlens' has no attribute {name!r}")
