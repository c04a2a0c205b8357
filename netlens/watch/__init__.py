"""Your own model: `netlens.watch` around any training loop, and paraxial for a module tree.

    import netlens.watch
    with netlens.watch(model, optimizer, loss_fn, probe=(x, y), every=20) as lens:
        ...                                   # your training loop, unchanged
    lens.diagnose()                           # the same Result as `netlens diagnose RUN`

    netlens.watch.paraxial_model(model, (1, 8, 8))   # the paraxial table of a module tree

The package is callable: `netlens.watch(...)` is `netlens.watch.watch(...)`.
"""
from __future__ import annotations

import sys
import types

from netlens.watch.lens import Lens, watch
from netlens.watch.paraxial import ModelParaxial, paraxial_model

__all__ = ["Lens", "ModelParaxial", "paraxial_model", "watch"]


class _CallableModule(types.ModuleType):
    def __call__(self, *args, **kwargs) -> Lens:
        return watch(*args, **kwargs)


_CallableModule.__call__.__doc__ = watch.__doc__
sys.modules[__name__].__class__ = _CallableModule
