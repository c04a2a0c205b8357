"""`paraxial_model(model, input_shape)`: the paraxial table of a user's `nn.Module`.

One forward on a random input of `input_shape` (per sample; no gradients, random state and
buffers restored) finds the module calls and their shapes; the prediction itself is the
closed-form trace of `netlens.paraxial.modules`, with each weight's σ_w² read from the weights
as they are. The input is taken at power q = 1 (standardized data) unless `input_q` says
otherwise. Token models take an `example` input instead of a shape.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from netlens.errors import DesignError
from netlens.paraxial.modules import ModelDesign, ModelSpec, model_design, trace_model
from netlens.paraxial.trace import Trace


@dataclass
class ModelParaxial:
    """The trace of a module tree: `.doc` is the `netlens paraxial --json` document."""

    design: ModelDesign
    trace: Trace
    doc: dict[str, Any]
    spec: ModelSpec


def parse_shape(text: str | tuple | list, what: str = "--input-shape") -> tuple[int, ...]:
    if isinstance(text, (tuple, list)):
        parts = list(text)
    else:
        parts = [p for p in str(text).replace("x", ",").replace("×", ",").split(",") if p.strip()]
    try:
        shape = tuple(int(p) for p in parts)
    except (TypeError, ValueError):
        shape = ()
    if not shape or any(s <= 0 for s in shape):
        raise DesignError(f"`{what}` is one sample's shape", path=what,
                          expected="whole numbers > 0, e.g. 1,8,8 for an 8×8 image or 64 for "
                                   "64 features", found=text)
    return shape


def paraxial_model(model: Any, input_shape: Any = None, *, example: Any = None,
                   rows: list[str] | None = None, input_q: float = 1.0,
                   name: str | None = None) -> ModelParaxial:
    """The paraxial trace of `model` (an nn.Module) for inputs of `input_shape` (one sample's)."""
    import torch

    from netlens.report.documents import paraxial_doc
    from netlens.watch.tree import describe

    if not isinstance(model, torch.nn.Module):
        raise DesignError("the paraxial trace of a model takes a torch.nn.Module",
                          expected="an nn.Module (or a prescription file for netlens.paraxial)",
                          found=type(model).__name__)
    if example is None:
        if input_shape is None:
            raise DesignError("the module tree needs an input shape to be traced",
                              path="input_shape", expected="e.g. (1, 8, 8)",
                              suggestion="Pass input_shape=(C, H, W) or (features,), or example=tensor.")
        shape = parse_shape(input_shape, "input_shape")
        p = next(iter(model.parameters()), None)
        gen = torch.Generator().manual_seed(0)
        example = torch.randn((2, *shape), generator=gen, dtype=p.dtype if p is not None else torch.float32)
        if p is not None:
            example = example.to(p.device)
        example = example * input_q ** 0.5
    spec, _sites = describe(model, example, rows, name, input_q=input_q)
    design, tr = model_design(spec), trace_model(spec)
    return ModelParaxial(design, tr, paraxial_doc(design, tr), spec)


def load_factory(target: str) -> Any:
    """`pkg.module:factory` → the model it returns (a class or a function without arguments);
    user code is imported only here, when named on the command line."""
    import sys
    from pathlib import Path

    if ":" not in target:
        raise DesignError("`--model` names a factory as module:function", path="--model",
                          expected="pkg.module:factory, e.g. mymodels:make_net", found=target)
    mod_name, attr = target.split(":", 1)
    cwd = str(Path.cwd())
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        mod = importlib.import_module(mod_name)
    except Exception as e:   # the user's import error, as one paragraph
        raise DesignError(f"cannot import `{mod_name}`: {type(e).__name__}: {e}", path="--model",
                          found=target,
                          suggestion="Run from the folder that holds the module, or install it.") from None
    obj = mod
    for part in attr.split("."):
        if not hasattr(obj, part):
            names = [n for n in dir(mod) if not n.startswith("_")][:10]
            raise DesignError(f"`{mod_name}` has no `{attr}`", path="--model", found=target,
                              expected="one of " + ", ".join(names))
        obj = getattr(obj, part)
    try:
        model = obj() if callable(obj) else obj
    except Exception as e:
        raise DesignError(f"`{target}()` failed: {type(e).__name__}: {e}", path="--model",
                          suggestion="The factory must build the model without arguments.") from None
    return model
