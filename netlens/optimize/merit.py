"""The merit function: a weighted sum of operands, with optional targets, and constraints.

Written in the prescription's `optimize:` section or on the command line, in one syntax:

    merit: val_loss                          # the default
    merit: val_error + 1e-5*params           # weight*operand, summed
    merit: val_loss + 0.5*params~20000       # `~target`: the operand's distance from the target
    merit: {val_loss: 1, params: {weight: 1.0e-5, target: 20000}}   # the same as a mapping
    constraints: [params <= 50000]           # Optuna's constraint API: feasible when satisfied

A term contributes `weight × value`, or `weight × |value − target|` with a target (as an optical
operand is driven to its target). Lower merit is better. Each objective of a Pareto study
(`objectives: [val_loss, params]`) is a merit of its own.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from netlens.errors import DesignError
from netlens.optimize.operands import Measured, Operand, operand

_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_TERM = re.compile(rf"\s*(?:(?P<w>{_NUM})\s*\*\s*)?(?P<op>[A-Za-z_]\w*)(?:\s*~\s*(?P<t>{_NUM}))?\s*(?P<sep>\+|$)")
_CONSTRAINT = re.compile(rf"^\s*(?P<op>[A-Za-z_]\w*)\s*(?P<cmp><=|>=|<|>)\s*(?P<bound>{_NUM})\s*$")
MERIT_HINT = "Write e.g. `val_loss + 1e-5*params` (weight*operand, `~target` for a target)."


@dataclass(frozen=True)
class Term:
    operand: Operand
    weight: float = 1.0
    target: float | None = None

    @property
    def label(self) -> str:
        w = "" if self.weight == 1 else f"{self.weight:g}*"
        t = "" if self.target is None else f"~{self.target:g}"
        return f"{w}{self.operand.name}{t}"

    def contribution(self, value: float) -> float:
        return self.weight * (value if self.target is None else abs(value - self.target))


@dataclass(frozen=True)
class Merit:
    terms: tuple[Term, ...]

    @property
    def text(self) -> str:
        return " + ".join(t.label for t in self.terms)

    @property
    def operands(self) -> list[Operand]:
        return [t.operand for t in self.terms]

    @property
    def static(self) -> bool:
        return all(t.operand.static for t in self.terms)

    def evaluate(self, m: Measured) -> tuple[float, dict[str, float], dict[str, float]]:
        """(merit, contribution per term, raw value per operand)."""
        raw = {t.operand.name: t.operand(m) for t in self.terms}
        parts = {t.label: t.contribution(raw[t.operand.name]) for t in self.terms}
        total = sum(parts.values())
        return (total if math.isfinite(total) else math.nan), parts, raw


@dataclass(frozen=True)
class Constraint:
    operand: Operand
    cmp: str               # <= or >=
    bound: float

    @property
    def text(self) -> str:
        return f"{self.operand.name} {self.cmp} {self.bound:g}"

    def violation(self, value: float) -> float:
        """Optuna's convention: ≤ 0 when satisfied, else by how much it is violated."""
        if not math.isfinite(value):
            return math.inf
        return value - self.bound if self.cmp == "<=" else self.bound - value


def parse_merit(spec: Any, task: str | None = None, path: str = "optimize.merit") -> Merit:
    """A merit from a string (`val_loss + 1e-5*params`) or a mapping {operand: weight or
    {weight, target}}."""
    if isinstance(spec, dict):
        terms = []
        for name, w in spec.items():
            here = f"{path}.{name}"
            if isinstance(w, dict):
                extra = set(w) - {"weight", "target"}
                if extra:
                    raise DesignError(f"unknown option `{sorted(extra)[0]}` of a merit term", path=here,
                                      expected="weight, target")
                weight, target = w.get("weight", 1.0), w.get("target")
            else:
                weight, target = w, None
            for label, v in (("weight", weight), ("target", target)):
                if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
                    raise DesignError(f"a term's {label} is a number", path=here, found=v)
            terms.append(Term(operand(str(name), task, here), float(weight),
                              None if target is None else float(target)))
        if not terms:
            raise DesignError("the merit has no terms", path=path, suggestion=MERIT_HINT)
        return Merit(tuple(terms))
    if not isinstance(spec, str) or not spec.strip():
        raise DesignError("invalid merit", path=path, found=spec, suggestion=MERIT_HINT)
    terms, pos, text = [], 0, spec.strip()
    while pos < len(text):
        m = _TERM.match(text, pos)
        if m is None or m.end() == pos:
            raise DesignError("cannot read the merit", path=path, found=text[pos:] or text,
                              suggestion=MERIT_HINT)
        w, t = m.group("w"), m.group("t")
        terms.append(Term(operand(m.group("op"), task, path), float(w) if w else 1.0,
                          float(t) if t else None))
        pos = m.end()
        if m.group("sep") == "+" and pos >= len(text):
            raise DesignError("the merit ends with `+`", path=path, found=text, suggestion=MERIT_HINT)
    return Merit(tuple(terms))


def parse_constraint(text: Any, task: str | None = None, path: str = "optimize.constraints") -> Constraint:
    m = _CONSTRAINT.match(text) if isinstance(text, str) else None
    if m is None:
        raise DesignError("cannot read the constraint", path=path, expected="`OPERAND <= NUMBER` "
                          "or `OPERAND >= NUMBER`", found=text,
                          suggestion="Write e.g. `params <= 50000`.")
    cmp = "<=" if m.group("cmp").startswith("<") else ">="
    return Constraint(operand(m.group("op"), task, path), cmp, float(m.group("bound")))
