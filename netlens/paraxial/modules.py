"""The paraxial trace of a module tree: a user's own `nn.Module`, described as rows.

A prescription's rows come from YAML; a module tree's come from `netlens.watch.tree.describe`,
which runs one forward and records each leaf module call in order: its torch type, the element
it is (`nn.Linear` → `linear`, `nn.ReLU` → `relu`, …) with its options, its shapes, its weight
statistics σ_w² = fan_in·E[W²] and σ_b² = E[b²] read from the weights as they are, and which
call's output it takes as input. This module is torch-free: it turns that description
(`model.json` in a watched run folder) into the same `Row`s and `Trace` a prescription gives, so
the paraxial table, `simulate` and `diagnose` documents and every aberration read a watched model
exactly as they read a prescription.

A module without a rule (a custom block, attention where no element exists) is a row with
element `module`: measured like any other, shown "no paraxial rule", and traced as if it passed
its input power through unchanged. Operations written in `forward()` itself (`F.relu`, `x + y`,
`view`) are invisible to module hooks; a row whose input is not the previous row's output is
marked approximate.
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from netlens.elements import ELEMENTS, Beam, Context, Element, Optics
from netlens.elements.base import NoOptions
from netlens.elements.layers import Weighted
from netlens.errors import DesignError
from netlens.paraxial.trace import HEAD_NOTE, RowTrace, Trace
from netlens.prescription.rows import Row
from netlens.prescription.sections import DiagnoseSpec

MODEL_VERSION = 1
NO_RULE = "no paraxial rule"
UNTRACED = ("the input of a row marked ~ is not the previous row's output (an operation in "
            "forward(), such as F.relu, x + y or view, sits between them); it is traced from the "
            "previous row's output")
PASSED = "a module without a paraxial rule is traced as if it passed its input power unchanged"


@dataclass
class Call:
    """One module call of the forward, as `describe` saw it."""

    index: int
    path: str                    # module path, `encoder.layers.3.fc1` ("" for the root)
    call: int                    # 1 for the module's first call in a forward, 2 for its second …
    type: str                    # the torch class, `Linear`
    element: str | None          # the netlens element it is; None: no paraxial rule
    options: dict[str, Any]      # that element's options (`{width: 64, bias: true}`)
    in_shape: list[int]          # per sample
    out_shape: list[int]
    params: int                  # parameters of the module, each tensor counted once overall
    sigma_w2: float | None = None
    sigma_b2: float | None = None
    prev: int = -1               # the call whose output is this call's input (−1: the input)
    follows: bool = True         # False: that input passed through an operation in forward()
    note: str | None = None      # why it has no rule, when it could have had one
    leaf: bool = True
    first: int | None = None     # a container row: the first and last leaf call it spans
    last: int | None = None

    @property
    def source(self) -> str:
        where = self.path or "(root)"
        return f"module {where}" + (f" (call {self.call})" if self.call > 1 else "")


@dataclass
class ModelSpec:
    """A described module tree: the rows the tables show (`rows`) and the leaf calls (`calls`)
    the trace walks (for the default leaf rows they are the same)."""

    name: str
    type: str
    input_shape: list[int]
    input_q: float
    calls: list[Call]
    rows: list[Call]
    about: str = ""
    input_dtype: str = "float32"
    diagnose: dict[str, Any] = field(default_factory=dict)     # thresholds, fail_on

    def to_dict(self) -> dict:
        return {"netlens": MODEL_VERSION, "kind": "module tree", **asdict(self)}

    @classmethod
    def from_dict(cls, d: dict) -> "ModelSpec":
        d = {k: v for k, v in d.items() if k not in ("netlens", "kind")}
        d["calls"] = [Call(**c) for c in d["calls"]]
        d["rows"] = [Call(**c) for c in d["rows"]]
        return cls(**d)

    def save(self, path: Path) -> None:
        from netlens.report.files import write_json

        write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: Path) -> "ModelSpec":
        import json

        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except (OSError, ValueError, TypeError, KeyError) as e:
            raise DesignError(f"cannot read `{path}`: {e}",
                              suggestion="A watched run folder's model.json is written by "
                                         "`netlens.watch`; re-run the watched script.") from None


class NoRule(Element):
    """A module netlens has no paraxial rule for: measured, shown, not predicted."""

    name = "module"
    kind = "module"
    summary = "a module without a paraxial rule"
    options = NoOptions

    def __init__(self, type_name: str, note: str | None = None):
        super().__init__(NoOptions())
        self.type_name = type_name
        self.note = note

    def build(self, shape, ctx):   # pragma: no cover - never built from a prescription
        raise DesignError(f"`{self.type_name}` is the user's own module; netlens does not build it")

    def describe(self) -> str:
        return f"{self.type_name} ({NO_RULE})"


def element_of(c: Call) -> Element:
    """The element a call is, with its options; `NoRule` when there is none."""
    if c.element is None or c.element not in ELEMENTS:
        return NoRule(c.type, c.note)
    cls = ELEMENTS[c.element]
    try:
        return cls(cls.options(**c.options))
    except Exception as e:          # options this version's element does not accept
        return NoRule(c.type, f"{c.element}: {e}")


@dataclass
class ModelDesign:
    """What reports and diagnosis read from a design, for a module tree. Stands where a
    `Design` stands (name, about, rows, top_rows, diagnose, blame); `watched` tells the
    corrections to give advice instead of prescription patches."""

    name: str
    about: str
    rows: list[Row]
    spec: ModelSpec
    diagnose: DiagnoseSpec
    file: Path | None = None
    watched: bool = True

    def top_rows(self) -> list[Row]:
        return [r for r in self.rows if r.parent is None]

    @contextmanager
    def blame(self):
        yield


def model_design(spec: ModelSpec, file: Path | None = None) -> ModelDesign:
    rows = []
    for c in spec.rows:
        el = element_of(c) if c.leaf else NoRule(c.type)
        if not c.leaf and _container_rule(spec, c) is not None:
            el = Container(c.type)
        rows.append(Row(index=c.index, element=el, path=c.path, line=None, source=c.source))
    try:
        diag = DiagnoseSpec(**spec.diagnose)
    except Exception as e:
        raise DesignError(f"invalid diagnose settings in the watched model: {e}",
                          expected="thresholds: {CODE: [warn, error]}, fail_on: error") from None
    return ModelDesign(spec.name, spec.about, rows, spec, diag, file)


class Container(NoRule):
    """A chosen container (`rows=["blocks.*"]`) whose leaves all have rules: the trace composes
    them."""

    def describe(self) -> str:
        return self.type_name


def _container_rule(spec: ModelSpec, c: Call) -> list[Call] | None:
    if c.first is None or c.last is None:
        return None
    leaves = spec.calls[c.first: c.last + 1]
    if not leaves or any(element_of(x).name == "module" for x in leaves):
        return None
    return leaves


# --- the trace -----------------------------------------------------------------------------

def _rule_shape(el: Element, shape: tuple) -> tuple:
    """The shape a rule expects: a linear layer acts on the last axis of whatever arrives."""
    if el.name == "linear" and shape:
        return (shape[-1],)
    return shape


def _optics(c: Call, el: Element, beam: Beam) -> Optics | None:
    if el.name == "module":
        return None
    ctx = Context(sigma_w2=c.sigma_w2, sigma_b2=c.sigma_b2)
    try:
        b = Beam(_rule_shape(el, beam.shape), beam.q, beam.m)
        if isinstance(el, Weighted) and c.sigma_w2 is None:
            return None
        return el.paraxial(b, ctx)
    except (DesignError, ValueError, ZeroDivisionError, TypeError):
        return None


def trace_model(spec: ModelSpec) -> Trace:
    """The paraxial trace of the described calls, then the rows as chosen."""
    after: dict[int, Beam] = {}
    by_call: dict[int, RowTrace] = {}
    notes: set[str] = set()
    last = Beam(tuple(spec.input_shape), spec.input_q, 0.0)
    for c in spec.calls:
        src = after.get(c.prev) if c.prev >= 0 else Beam(tuple(spec.input_shape), spec.input_q, 0.0)
        src = src or last
        beam = Beam(tuple(c.in_shape), src.q, src.m)
        el = element_of(c)
        optics = _optics(c, el, beam)
        approx = None if c.follows else "input is not the previous row's output"
        if optics is None:
            out = Beam(tuple(c.out_shape), beam.q, beam.m)
            why = c.note or NO_RULE
            approx = f"{c.type}: {why}"
            notes.add(PASSED)
            t = RowTrace(c.index, tuple(c.in_shape), tuple(c.out_shape), c.params, out.q, out.m,
                         math.nan, math.nan, 0.0, approx)
        else:
            out = Beam(tuple(c.out_shape), optics.beam.q, optics.beam.m)
            if optics.approx:
                approx = optics.approx if approx is None else f"{optics.approx}; {approx}"
            t = RowTrace(c.index, tuple(c.in_shape), tuple(c.out_shape), c.params, out.q, out.m,
                         optics.gain, optics.flow, optics.cond, approx, c.sigma_w2, c.sigma_b2)
        if not c.follows:
            notes.add(UNTRACED)
        elif optics is not None and optics.approx:
            notes.add(optics.approx)
        after[c.index] = out
        last = out
        by_call[c.index] = t
    rows = [_row_trace(r, by_call) for r in spec.rows]
    tr = Trace(rows, tuple(spec.input_shape), spec.input_q, sorted(notes) + [HEAD_NOTE])
    _cumulate(tr)
    return tr


def _row_trace(r: Call, by_call: dict[int, RowTrace]) -> RowTrace:
    """A chosen row's trace: its leaf call's, or its leaves' composed (NaN if one lacks a rule)."""
    first = r.first if r.first is not None else r.index
    last = r.last if r.last is not None else r.index
    span = [by_call[i] for i in range(first, last + 1)]
    one = span[0] if len(span) == 1 else None
    approx = "; ".join(sorted({t.approx for t in span if t.approx})) or None
    return RowTrace(r.index, tuple(r.in_shape), tuple(r.out_shape), r.params, span[-1].q,
                    span[-1].m, math.prod(t.gain for t in span), math.prod(t.flow for t in span),
                    sum(t.cond for t in span), approx,
                    one.sigma_w2 if one else None, one.sigma_b2 if one else None)


def _cumulate(tr: Trace) -> None:
    """Σ gains along the rows, a row without a rule counted as 0 dB (its own cell stays —)."""
    g = 1.0
    for t in tr.rows:
        if math.isfinite(t.gain):
            g *= t.gain
        t.cum_gain = g if math.isfinite(t.gain) else math.nan
    f = 1.0
    for t in reversed(tr.rows):
        if math.isfinite(t.flow):
            f *= t.flow
        t.cum_flow = f if math.isfinite(t.flow) else math.nan


def paraxial_spec(spec: ModelSpec) -> dict:
    """The paraxial document of a module tree: the same keys as a prescription's."""
    from netlens.report.documents import paraxial_doc

    return paraxial_doc(model_design(spec), trace_model(spec))
