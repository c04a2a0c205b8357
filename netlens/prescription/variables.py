"""Variable cells — the lens designer's "V" marks.

Any scalar may be written `{vary: [low, high]}` (options `log`, `step`, `start`) and any choice
`{choose: [a, b, c]}` (option `start`). A row written as `choose: [...]` is a variable element.
`simulate` and `diagnose` use each cell's start value; `optimize` supplies trial values by path.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from netlens.errors import DesignError, suggest
from netlens.prescription.yamlio import line_of, path_str, plain

VARY_KEYS = ("vary", "log", "step", "start")
CHOOSE_KEYS = ("choose", "start")


@dataclass(frozen=True)
class Variable:
    path: str                      # `train.lr`, `layers[2].linear.width`
    keys: tuple                    # the same path as keys and indices into the tree
    kind: str                      # float | int | choice
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple = ()
    start: Any = None

    def describe(self) -> str:
        if self.kind == "choice":
            return "one of " + ", ".join(_label(c) for c in self.choices)
        rng = f"[{self.low:g}, {self.high:g}]"
        return f"{self.kind} in {rng}" + (" (log)" if self.log else "") + \
            (f" step {self.step:g}" if self.step else "")


def _label(choice: Any) -> str:
    if isinstance(choice, dict) and len(choice) == 1:
        k, v = next(iter(choice.items()))
        return f"{k}: {v}"
    return str(choice)


def is_variable(node: Any) -> bool:
    return isinstance(node, dict) and ("vary" in node or "choose" in node)


def find_variables(tree: Any, file: str | None = None) -> list[Variable]:
    """Every variable cell in the tree, in document order."""
    found: list[Variable] = []

    def walk(node: Any, keys: tuple) -> None:
        if is_variable(node):
            found.append(_read(node, keys, tree, file))
            return
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, keys + (str(k),))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, keys + (i,))

    walk(tree, ())
    return found


def _read(node: dict, keys: tuple, tree: Any, file: str | None) -> Variable:
    path = path_str(keys)

    def fail(msg: str, expected: str, found: Any, hint: str | None = None) -> DesignError:
        return DesignError(msg, file=file, line=line_of(tree, keys), path=path, expected=expected,
                           found=found, suggestion=hint)

    if "vary" in node and "choose" in node:
        raise fail("a cell is either `vary` or `choose`", "one of them", "both")
    allowed = VARY_KEYS if "vary" in node else CHOOSE_KEYS
    for k in node:
        if k not in allowed:
            hint = suggest(k, allowed)
            raise fail(f"unknown option `{k}` of a variable cell", "one of " + ", ".join(allowed), k,
                       f"Did you mean `{hint}`?" if hint else None)
    if "choose" in node:
        choices = tuple(node["choose"]) if isinstance(node["choose"], list) else ()
        if len(choices) < 1:
            raise fail("`choose` needs a list of options", "[a, b, …]", node["choose"])
        start = node.get("start", choices[0])
        if start not in choices:
            raise fail("`start` must be one of the choices", ", ".join(map(_label, choices)), start)
        return Variable(path, keys, "choice", choices=choices, start=start)

    bounds = node["vary"]
    if (not isinstance(bounds, list) or len(bounds) != 2
            or not all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in bounds)):
        raise fail("`vary` takes two numbers", "[low, high]", bounds, "Write e.g. `{vary: [1e-4, 1e-1], log: true}`.")
    if not all(math.isfinite(b) for b in bounds):
        raise fail("`vary` takes two finite numbers", "[low, high], no .inf or .nan", bounds)
    low, high = bounds
    if not low < high:
        raise fail("`vary` needs low < high", "low < high", bounds)
    kind = "int" if all(isinstance(b, int) for b in bounds) else "float"
    log = node.get("log", False)
    if not isinstance(log, bool):
        raise fail("`log` is true or false", "true or false", log)
    if log and low <= 0:
        raise fail("a log range must be positive", "low > 0", low)
    step = node.get("step")
    if step is not None and (isinstance(step, bool) or not isinstance(step, (int, float))
                             or not math.isfinite(step) or step <= 0):
        raise fail("`step` must be a positive number", "step > 0", step)
    if step is not None and kind == "int" and not isinstance(step, int):
        raise fail("an integer range takes a whole-number `step`", "e.g. `step: 16`", step)
    if "start" in node:
        start = node["start"]
        if (isinstance(start, bool) or not isinstance(start, (int, float))
                or not low <= start <= high):
            raise fail("`start` must lie in the range", f"a number in [{low}, {high}]", start)
    else:
        start = math.sqrt(low * high) if log else (low + high) / 2
    if kind == "int":
        start = int(round(start))
    return Variable(path, keys, kind, float(low), float(high), log, float(step) if step else None,
                    start=start)


def resolve(tree: Any, values: dict[str, Any] | None = None) -> Any:
    """A copy of the tree with every variable cell replaced by its value (`values` by path, else
    the start). The copy is plain Python (dicts, lists, scalars)."""
    values = values or {}

    def walk(node: Any, keys: tuple) -> Any:
        if is_variable(node):
            var = _read(node, keys, tree, None)
            return walk(values.get(var.path, var.start), keys)
        if isinstance(node, dict):
            return {str(k): walk(v, keys + (str(k),)) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v, keys + (i,)) for i, v in enumerate(node)]
        return plain(node)

    return walk(tree, ())
