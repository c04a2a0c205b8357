"""What an aberration is, what it reads, and what it reports.

An aberration *judges*: it reads the records of a run (and, where it helps, the paraxial trace)
and returns readings — a value per row, or one for the network — which the generic loop in
`judge.py` compares with the thresholds (`thresholds.py`) to give findings. Nothing here
measures, trains or imports torch: diagnosing a run folder never re-runs anything.

Adding one is one small module: subclass `Aberration`, fill in the catalog fields, write
`readings`, and decorate the class with `@register` (see `netlens/aberrations/__init__.py`).
"""
from __future__ import annotations

import math
import sys
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar, Literal

from netlens.aberrations.thresholds import Limits
from netlens.instruments.records import RowMeta, RunRecords, Snapshot
from netlens.paraxial.trace import Trace, db, pooling_db

Severity = Literal["ok", "info", "warn", "error"]
SEVERITIES: tuple[Severity, ...] = ("ok", "info", "warn", "error")


def rank(severity: str) -> int:
    """ok 0 < info 1 < warn 2 < error 3."""
    return SEVERITIES.index(severity)


@dataclass
class Reading:
    """One measured value. `value` is what the table shows; `judged` is what is compared with the
    thresholds (GAIN shows the row's own gain but is judged on the cumulative one). `kind` splits
    one aberration into cases with their own corrections (vanishing / exploding)."""

    value: float
    row: int | None = None
    judged: float | None = None
    kind: str | None = None
    detail: str = ""
    severity: Severity | None = None     # set by the aberration itself to bypass the thresholds
    shown: bool = True                   # False: judged, but not a cell of the table
    unit: str | None = None              # when it differs from the aberration's unit
    step: int | None = None              # the probe it was read at (set by the judge)
    was: Severity | None = None          # the severity before the outcome weighed it (late, fitted)
    late: bool = False                   # read after the judging window (netlens.aberrations.window)

    @property
    def score(self) -> float:
        return self.value if self.judged is None else self.judged


@dataclass
class Finding:
    code: str
    name: str
    severity: Severity
    row: int | None               # the worst row, or None for a network-level finding
    rows: list[int]               # every row flagged at this severity (worst first)
    value: float
    threshold: float | list[float] | None
    unit: str
    message: str
    explanation: str
    corrections: list[str]
    kind: str | None = None
    step: int | None = None       # the step judged

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code, "name": self.name, "severity": self.severity, "row": self.row,
            "rows": self.rows, "value": self.value, "threshold": self.threshold, "unit": self.unit,
            "kind": self.kind, "step": self.step, "message": self.message,
            "explanation": self.explanation,
            # Issue 4 fills `patch` with the prescription diff of each correction.
            "corrections": [{"name": name, "patch": None} for name in self.corrections],
        }


@dataclass
class Context:
    """Everything an aberration may read: the records, the judged snapshot, the trace."""

    records: RunRecords
    snap: Snapshot
    trace: Trace | None
    top: list[int]                       # indices of the top-level rows (the SUM runs over them)
    limits: dict[str, Limits]
    until: int = 0           # the requested moment; `snap` is earlier only when the run diverged
    notes: list[str] = field(default_factory=list)
    since: int | None = None # a windowed reading (STEP) over the probes from this step to `snap`

    @property
    def rows(self) -> list[RowMeta]:
        return self.records.rows

    @property
    def step(self) -> int:
        return self.snap.step

    def row(self, index: int) -> dict[str, Any]:
        return self.snap.rows[index]

    @cached_property
    def gains_db(self) -> list[tuple[float, float]]:
        """Per-row measured (forward gain, backward gain) in dB at the judged snapshot."""
        return [(_db(g), _db(f)) for g, f in self.records.gains(self.snap)]

    @cached_property
    def cum_gain_db(self) -> list[float]:
        """Forward power at each row's output relative to the network input, dB."""
        q0 = self.snap.input_q
        return [_db(r["q"] / q0) if _pos(q0) and _fin(r.get("q")) else math.nan for r in self.snap.rows]

    @cached_property
    def cum_flow_db(self) -> list[float]:
        """Gradient power reaching each row's input relative to the network output, dB (the
        paraxial Σ flow column's convention)."""
        p_out = self.snap.rows[self.top[-1]].get("p")
        out = []
        for meta in self.rows:
            p_in = self.snap.input_p if meta.prev < 0 else self.snap.rows[meta.prev].get("p")
            out.append(_db(p_in / p_out) if _pos(p_out) and _fin(p_in) else math.nan)
        return out

    @cached_property
    def input_width(self) -> int:
        info = self.records.data_info
        if info:
            return int(math.prod(info["input_shape"]))
        if self.trace is not None:
            return int(math.prod(self.trace.input_shape))
        return self.rows[0].width

    def width_in(self, index: int) -> int:
        prev = self.rows[index].prev
        return self.input_width if prev < 0 else self.rows[prev].width

    @cached_property
    def flow_total_db(self) -> list[float]:
        """Per-row backward gain of the gradient power summed over units, dB: the per-unit gain
        plus 10·log10(width in / width out). A linear row gives σ_w² whatever its widths."""
        return [f + db(self.width_in(m.index) / m.width) for m, (_g, f) in zip(self.rows, self.gains_db)]

    @cached_property
    def cum_flow_total_db(self) -> list[float]:
        """`cum_flow_db` summed over units: the gradient power reaching each row's input over the
        gradient power at the network output, width changes removed, and the top-level pooling
        rows' own gains left out (see `pooling_db`)."""
        out = self.rows[self.top[-1]].width
        pools = [(j, self.flow_total_db[j]) for j in self.top if self.rows[j].kind == "pool"]
        return [c + db(self.width_in(m.index) / out) - pooling_db(m.index, pools)
                for m, c in zip(self.rows, self.cum_flow_db)]

    @cached_property
    def head(self) -> int | None:
        """The last weight row: the network's read-out."""
        layers = [m.index for m in self.rows if m.kind == "layer"]
        return layers[-1] if layers else None

    def snapshots_until(self) -> list[Snapshot]:
        return [s for s in self.records.snapshots if s.step <= self.until]


class Aberration(ABC):
    """Base class of the catalog. Subclasses set the fields below and write `readings`.

    code         four letters, the table column
    name         what a person calls it
    unit         of the value
    scope        "row" (a column of the table) or "network" (the panel below it)
    measures     what is measured, with the formula
    applies      which rows it applies to
    explanation  what it is and why it hurts training, for a junior engineer
    analogy      the optical aberration it resembles, where that helps
    corrections  correction names (docs/corrections.md), most appropriate first; `kinds` may
                 refine them
    judged       when it is judged (the trainability codes share `window.RULE`)
    per_probe    judged at every probe of its window (False: its reading is already a window,
                 like STEP's median, and is read at the window's end and at the judged step)
    """

    code: ClassVar[str]
    name: ClassVar[str]
    unit: ClassVar[str] = ""
    scope: ClassVar[Literal["row", "network"]] = "row"
    measures: ClassVar[str] = ""
    applies: ClassVar[str] = ""
    explanation: ClassVar[str] = ""
    analogy: ClassVar[str] = ""
    corrections: ClassVar[tuple[str, ...]] = ()
    judged: ClassVar[str] = ""
    per_probe: ClassVar[bool] = True
    # A case of the aberration (e.g. "vanishing") → (name, corrections, explanation to add).
    kinds: ClassVar[dict[str, tuple[str, tuple[str, ...], str]]] = {}
    # A column the table shows only when some row has a value (the sequence codes).
    optional_column: ClassVar[bool] = False

    @abstractmethod
    def readings(self, ctx: Context) -> list[Reading]:
        """The measured values this aberration judges: one per row, or one for the network."""

    def message(self, reading: Reading, ctx: Context) -> str:
        """One line: where, the value, and what it means. Subclasses add detail."""
        return reading.detail

    # -- shared by the catalog and reports -------------------------------------------------
    def name_for(self, kind: str | None) -> str:
        return self.kinds[kind][0] if kind in self.kinds else self.name

    def corrections_for(self, kind: str | None) -> list[str]:
        return list(self.kinds[kind][1]) if kind in self.kinds else list(self.corrections)

    def explanation_for(self, kind: str | None) -> str:
        extra = self.kinds[kind][2] if kind in self.kinds else ""
        text = self.explanation + (" " + extra if extra else "")
        return text + (" " + self.analogy if self.analogy else "")

    @classmethod
    def entry(cls, limits: Limits) -> dict[str, Any]:
        """The catalog entry (`netlens catalog CODE`)."""
        return {
            "code": cls.code, "name": cls.name, "scope": cls.scope, "unit": cls.unit,
            "measures": cls.measures, "applies": cls.applies, "thresholds": limits.to_dict(),
            "judged": cls.judged or _rule(cls.code),
            "explanation": cls.explanation, "analogy": cls.analogy,
            "corrections": list(cls.corrections),
            "cases": {k: {"name": n, "corrections": list(c)} for k, (n, c, _) in cls.kinds.items()},
            "doc": (sys.modules[cls.__module__].__doc__ or "").strip(),   # formula and sources
        }


def _rule(code: str) -> str:
    from netlens.aberrations.window import RULE, TRAINABILITY

    return RULE if code in TRAINABILITY else ""


def _fin(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


def _pos(x: float | None) -> bool:
    return _fin(x) and x > 0


def _db(ratio: float | None) -> float:
    return db(ratio) if _fin(ratio) and ratio >= 0 else math.nan


def finite(x: float | None) -> bool:
    return _fin(x)


def training_loss(snap: Snapshot) -> float | None:
    """The loss as training sees it: train mode on the fixed probe batch (batchnorm with batch
    statistics; early in a run its running averages still lag, so the eval-mode loss can read 20×
    higher in a deep batchnorm stack). Records without it fall back to the eval-mode train loss."""
    probe = getattr(snap, "probe_loss", None)
    return probe if _fin(probe) else snap.train_loss


def row_name(meta: RowMeta) -> str:
    """`#3 linear 64 (design.yaml:14 repeat 2/8)`: how findings name a row."""
    name = f" `{meta.name}`" if meta.name else ""
    return f"#{meta.index} {meta.label}{name} ({meta.source})"


def telescoping(ctx: Context, code: str, per_row_db: list[float], cumulative_db: list[float],
                kinds: tuple[str, str], exempt: set[int], series: list[float]) -> list[Reading]:
    """Readings of an aberration whose per-row dB values add up along the stack (GAIN, FLOW):
    each row shows its own value and is judged on the cumulative one (`kinds` names the case
    below / above 0 dB); `exempt` rows are shown but not judged, and are left out of the
    fragile-design check on `series`."""
    out = [Reading(v, meta.index, judged=cum, kind=kinds[cum >= 0],
                   severity="ok" if meta.index in exempt else None)
           for meta, v, cum in zip(ctx.rows, per_row_db, cumulative_db) if finite(cum)]
    level = ctx.limits[code].warn
    pair = fragile(ctx, series, level, skip=exempt) if level is not None else None
    return out + ([pair] if pair is not None else [])


def fragile(ctx: Context, per_row_db: list[float], level: float, skip: set[int]) -> Reading | None:
    """Large opposing per-row contributions among the top-level rows: a +25 dB row cancelled by a
    −25 dB row. The sum looks fine but rests on two large numbers, so a small change to either
    (an init, a width, training itself) moves it a lot — what a lens designer calls a sensitive,
    hard-to-tolerance design. Normalization rows are left out: they cancel by construction,
    adapting to whatever arrives."""
    cand = [(per_row_db[i], i) for i in ctx.top
            if i not in skip and ctx.rows[i].kind != "norm" and finite(per_row_db[i])]
    if not cand:
        return None
    (up, a), (down, b) = max(cand), min(cand)
    if up < level or -down < level:
        return None
    return Reading(min(up, -down), row=a if up >= -down else b, kind="fragile", severity="warn",
                   shown=False,
                   detail=f"#{a} {ctx.rows[a].label} gives {up:+.1f} dB and #{b} "
                          f"{ctx.rows[b].label} {down:+.1f} dB")


def fmt(value: float | None, unit: str) -> str:
    """A value in its unit, for messages and tables."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if math.isinf(value):
        return ("+∞" if value > 0 else "−∞") + (" dB" if unit == "dB" else "")
    if unit == "dB":
        return f"{value:+.1f} dB".replace("-", "−")
    if unit == "fraction":
        return f"{value:.0%}"
    if unit == "×":
        return f"{value:.3g}×"
    if unit == "λ":
        return f"λ {value:.4g}"
    if unit == "log10":
        return f"{value:+.2f}".replace("-", "−")
    return f"{value:.3g}".replace("-", "−")
