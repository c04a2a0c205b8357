"""`netlens optimize`: Optuna over the prescription's variable cells against a merit function.

The pieces, one idea per file: `space` (variable cells ↔ Optuna distributions), `operands` and
`merit` (what is minimized), `aberrations` (the seam to diagnose's catalog), `objective` (one
trial, with pruning at each probe), `storage` (where the study lives and how workers take turns),
`study` (the plan every process agrees on), `workers` (the processes), `summary` and `plots`
(what the study found), `run` (all of it as one function).
"""
from netlens.optimize.run import Result, optimize
from netlens.optimize.settings import Settings, settings_for

__all__ = ["Result", "Settings", "optimize", "settings_for"]

from netlens._callable import callable_module  # noqa: E402  `netlens.optimize(...)` is the API call

callable_module(__name__, "optimize")
