"""Operands: the named measurements a merit function weighs (README, "netlens optimize").

A registry, as in a lens designer's merit editor: each operand has a name, a unit and one small
function from a trial's measurements to a number, lower being better. The built-in ones are the
losses, the error rate, the parameter count and the wall time; every aberration code diagnose
reports is an operand too (its findings' severities summed over rows), so the codes diagnose
prints are the names optimize accepts. Register your own with `register(Operand(...))`.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from netlens.errors import DesignError, suggest
from netlens.instruments.records import RunRecords
from netlens.optimize import aberrations


@dataclass
class Measured:
    """What one trial measured: its design, its records (possibly only up to a probe), its
    parameter count. The aberrations are judged once, on first use."""

    design: Any
    records: RunRecords
    params: int
    trace: Any = None
    _diagnosis: Any = field(default=None, repr=False)

    def score(self, code: str) -> float:
        """An aberration code's severity summed over rows and the network (warn 1, error 2)."""
        if self._diagnosis is None:
            self._diagnosis = aberrations.judge(self.records, self.design, self.trace)
        return float(self._diagnosis.score(code))


@dataclass(frozen=True)
class Operand:
    name: str
    unit: str
    about: str
    measure: Callable[[Measured], float]
    static: bool = False                      # known before training (from the prescription)
    tasks: tuple[str, ...] = ("classification", "regression")

    def __call__(self, m: Measured) -> float:
        v = self.measure(m)
        return float(v) if v is not None else math.nan


OPERANDS: dict[str, Operand] = {}


def register(op: Operand) -> Operand:
    OPERANDS[op.name] = op
    return op


def _end(m: Measured, name: str) -> float | None:
    return getattr(m.records.at("end"), name) if m.records.snapshots else None


def _val_error(m: Measured) -> float:
    acc = _end(m, "val_accuracy")
    return math.nan if acc is None else 1.0 - acc


register(Operand("val_loss", "loss", "validation loss at the end of training",
                 lambda m: _end(m, "val_loss")))
register(Operand("val_error", "fraction", "validation error rate, 1 − accuracy, at the end",
                 _val_error, tasks=("classification",)))
register(Operand("train_loss", "loss", "training loss at the end (evaluation split of the training set)",
                 lambda m: _end(m, "train_loss")))
register(Operand("params", "count", "trainable parameters of the network",
                 lambda m: m.params, static=True))
register(Operand("time", "s", "wall-clock seconds of training, instruments included",
                 lambda m: m.records.seconds))


def aberration_operand(code: str) -> Operand:
    return Operand(code, "severity", f"aberration {code} as diagnose judges it: severities summed "
                   "over rows and the network (warn 1, error 2)", lambda m: m.score(code))


def operand(name: str, task: str | None = None, path: str = "optimize") -> Operand:
    """The operand called `name`, checked against the task (classification or regression)."""
    op = OPERANDS.get(name)
    if op is None and name in aberrations.codes():
        op = aberration_operand(name)
    if op is None:
        known = names()
        hint = suggest(name, known)
        raise DesignError(f"unknown merit operand `{name}`", path=path,
                          expected="one of " + ", ".join(known),
                          suggestion=f"Did you mean `{hint}`?" if hint else None)
    if task is not None and task not in op.tasks:
        raise DesignError(f"the operand `{name}` needs a {' or '.join(op.tasks)} task; this design "
                          f"is {task}", path=path, suggestion="Use `val_loss` instead.")
    return op


def names() -> list[str]:
    return list(OPERANDS) + aberrations.codes()
