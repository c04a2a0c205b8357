"""The search space: the prescription's variable cells as Optuna distributions, and back.

Each `vary`/`choose` cell is one Optuna parameter named by its path in the prescription
(`train.lr`, `layers[2].linear.width`):
  `{vary: [a, b]}` floats (`log: true` → log scale, `step:` → a grid), integers when both bounds
  are integers; `{choose: [...]}` a categorical. Optuna stores categorical choices as plain
  scalars, so a choice that is a row or a mapping (`choose: [{linear: 64}, {linear: 128}]`) is
  stored by its label (`linear: 64`) and mapped back here.
The best values go back into the prescription as each cell's `start:`, markers kept, so the
written file is still a design to optimize further.
"""
from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass
from typing import Any

from netlens.errors import DesignError
from netlens.prescription.variables import Variable

_SCALARS = (str, int, float, bool, type(None))


@dataclass(frozen=True)
class Space:
    variables: tuple[Variable, ...]

    @classmethod
    def of(cls, design) -> "Space":
        if not design.variables:
            raise DesignError(
                "there is nothing to optimize: the prescription has no variable cells",
                file=str(design.file),
                suggestion="Mark a cell as a variable, e.g. `lr: {vary: [1.0e-4, 1.0e-1], log: true}` "
                           "or `width: {vary: [16, 256], step: 16}` for a number, "
                           "`init: {choose: [he, xavier]}` for a choice, or a row "
                           "`- choose: [relu, tanh, gelu]` for a variable element.")
        for v in design.variables:
            if v.log and v.step:
                raise design.locate(DesignError(
                    "a variable cell cannot have both `log` and `step`", path=v.path,
                    suggestion="Drop `step:` to search on a log scale, or `log:` to search a grid."))
            if v.kind == "int" and v.step and v.step != int(v.step):
                raise design.locate(DesignError("an integer range needs a whole `step`", path=v.path,
                                                found=v.step))
        return cls(tuple(design.variables))

    @property
    def paths(self) -> list[str]:
        return [v.path for v in self.variables]

    # -- choices as scalars Optuna can store ---------------------------------------------------
    @staticmethod
    def labels(v: Variable) -> list[Any]:
        if all(isinstance(c, _SCALARS) for c in v.choices):
            return list(v.choices)
        out: list[str] = []
        for c in v.choices:
            label = c if isinstance(c, str) else _flow(c, top=True)
            while label in out:
                label += "′"
            out.append(label)
        return out

    def suggest(self, trial) -> dict[str, Any]:
        """Ask the trial for every variable; returns prescription values by path."""
        with warnings.catch_warnings():
            # The start as written may sit off a `step:` grid (the midpoint of [8, 64] is 36);
            # Optuna uses it as given and says so — the prescription's own choice, not news.
            warnings.filterwarnings("ignore", message="Fixed parameter")
            return self._suggest(trial)

    def _suggest(self, trial) -> dict[str, Any]:
        params = {}
        for v in self.variables:
            if v.kind == "choice":
                params[v.path] = trial.suggest_categorical(v.path, self.labels(v))
            elif v.kind == "int":
                params[v.path] = trial.suggest_int(v.path, int(v.low), int(v.high),
                                                   step=int(v.step or 1), log=v.log)
            else:
                params[v.path] = trial.suggest_float(v.path, v.low, v.high, step=v.step, log=v.log)
        return self.values(params)

    def values(self, params: dict[str, Any]) -> dict[str, Any]:
        """Optuna parameters → prescription values (labels back to their choices)."""
        out = {}
        for v in self.variables:
            if v.path not in params:
                continue
            p = params[v.path]
            if v.kind == "choice":
                labels = self.labels(v)
                p = v.choices[labels.index(p)] if p in labels else p
            out[v.path] = p
        return out

    def params(self, values: dict[str, Any]) -> dict[str, Any]:
        """Prescription values → Optuna parameters (for enqueuing the start point)."""
        out = {}
        for v in self.variables:
            x = values.get(v.path, v.start)
            if v.kind == "choice":
                x = self.labels(v)[list(v.choices).index(x)]
            out[v.path] = x
        return out

    def start(self) -> dict[str, Any]:
        return self.params({v.path: v.start for v in self.variables})

    def signature(self) -> dict[str, str]:
        """What a study remembers of its space, to refuse resuming with a different one: the
        cells, their kinds and choices. Numeric ranges may change between runs (widening a range
        whose best value sits at its edge is the usual next step); Optuna samples the new range."""
        return {v.path: v.describe() if v.kind == "choice" else v.kind for v in self.variables}


def _flow(x: Any, top: bool = False) -> str:
    """A choice as it reads in YAML flow style: `linear: {width: 64, init: he}`."""
    if isinstance(x, dict):
        inner = ", ".join(f"{k}: {_flow(v)}" for k, v in x.items())
        return inner if top and len(x) == 1 else "{" + inner + "}"
    if isinstance(x, list):
        return "[" + ", ".join(_flow(v) for v in x) + "]"
    return "null" if x is None else str(x).lower() if isinstance(x, bool) else str(x)


def with_starts(tree: Any, space: Space, values: dict[str, Any]) -> Any:
    """A copy of the round-trip tree with each variable cell's `start:` set to `values[path]`
    (prescription values); the `vary`/`choose` markers, comments and order are kept."""
    tree = copy.deepcopy(tree)
    for v in space.variables:
        if v.path not in values:
            continue
        cell = tree
        for k in v.keys:
            cell = cell[k]
        value = values[v.path]
        if v.kind == "choice":
            value = copy.deepcopy(v.choices[list(v.choices).index(value)])
            value = _matching_node(cell["choose"], value)
        elif v.kind == "int":
            value = int(value)
        else:
            value = float(value)
        cell["start"] = value
    return tree


def _matching_node(options: list, value: Any) -> Any:
    """The option node equal to `value`, deep-copied so the file has no YAML aliases."""
    for node in options:
        if node == value:
            return copy.deepcopy(node)
    return value
