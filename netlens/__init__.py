"""netlens: the optical lens-design loop for neural networks.

`netlens.watch(model, optimizer, loss_fn, probe=(x, y))` watches your own model in your own
training loop (netlens.watch); it is imported on first use, so `import netlens` stays light.
"""
from __future__ import annotations


def __getattr__(name: str):
    if name == "watch":       # the package is callable: netlens.watch(...) is netlens.watch.watch(...)
        import importlib

        return importlib.import_module("netlens.watch")
    raise AttributeError(f"module 'netlens' has no attribute {name!r}")
