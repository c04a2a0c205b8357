"""The generic loop: records → readings → severities → findings, one aberration at a time.

`judge` picks the moment (`init`, `end` or a step), asks every aberration in the catalog for its
readings, compares them with the thresholds, and groups the flagged rows of each aberration into
findings: one per (case, severity), naming the worst row and listing the others. Findings come
out most severe first, and within a severity causes before symptoms (a divergence before the
stall it causes).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from netlens.aberrations.base import Aberration, Context, Finding, Reading, finite, fmt, rank, row_name
from netlens.aberrations.thresholds import TABLE, Limits
from netlens.errors import DesignError, RunError
from netlens.instruments.records import RunRecords, Snapshot
from netlens.paraxial.trace import Trace

# Causes first, symptoms last, within one severity.
PRIORITY = ("DIVG", "FLOW", "GAIN", "SHRP", "DEAD", "SATR", "RANK", "COND", "MEAN", "STEP",
            "INIT", "STAL", "GAP", "NOIS")
FAIL_LEVELS = ("info", "warn", "error", "never")
SCORE = {"ok": 0, "info": 0, "warn": 1, "error": 2}    # what `optimize` sums per code
AT_INIT_TOO = ("GAIN", "FLOW")    # also judged at step 0 when a later step is judged


@dataclass
class Diagnosis:
    requested: str                         # `init`, `end` or a step, as asked
    step: int                              # the probe the per-row aberrations were read at
    until: int                             # the moment asked for (later than `step` only after
    #                                        a divergence: rows are read at the last finite probe)
    findings: list[Finding]
    values: dict[int, dict[str, float]]    # row → code → the table's value
    judged: dict[int, dict[str, float]]    # row → code → the judged value where it differs (Σ)
    severity: dict[int, dict[str, str]]    # row → code → ok | info | warn | error
    sums: dict[str, dict[str, Any]]        # code → the SUM row's judged value (COND)
    network: dict[str, dict[str, Any]]     # code → the network panel's entry
    limits: dict[str, Limits]
    notes: list[str] = field(default_factory=list)

    @property
    def worst(self) -> str:
        return max((f.severity for f in self.findings), key=rank, default="ok")

    def reaches(self, level: str) -> bool:
        """Whether a finding is at or above `level` (`never` is never reached)."""
        if level == "never":
            return False
        return any(rank(f.severity) >= rank(level) for f in self.findings)

    def score(self, code: str) -> int:
        """An aberration's severity summed over rows and the network (warn 1, error 2): the
        operand `optimize` can weight."""
        total = sum(SCORE[s.get(code, "ok")] for s in self.severity.values())
        total += SCORE[self.sums.get(code, {}).get("severity", "ok")]
        total += SCORE[self.network.get(code, {}).get("severity", "ok")]
        fragile = [f for f in self.findings if f.code == code and f.kind == "fragile"]
        return total + sum(SCORE[f.severity] for f in fragile)


def judge(records: RunRecords, trace: Trace | None = None, at: str | int = "end",
          limits: dict[str, Limits] | None = None, codes: list[str] | None = None) -> Diagnosis:
    """Judge a run's records at a moment. `limits` defaults to the thresholds table; `codes`
    restricts the catalog (all by default)."""
    from netlens.aberrations import CATALOG

    limits = dict(TABLE, **(limits or {}))
    snap, until, notes = moment(records, at)
    top = [m.index for m in records.rows if m.parent is None]
    ctx = Context(records, snap, trace, top, limits, until, notes)
    dx = Diagnosis(str(at), snap.step, until, [], {}, {}, {}, {}, {}, limits, notes)
    for code, ab in CATALOG.items():
        if codes is not None and code not in codes:
            continue
        lim = limits.get(code) or Limits(None, None, "above", ab.unit, "")
        readings = ab.readings(ctx)
        for r in readings:
            if r.severity is None:
                r.severity = lim.severity(r.score) if finite(r.score) else "ok"
        _record(dx, ab, readings)
        dx.findings.extend(_findings(ab, lim, readings, ctx))
    if snap.step != 0 and (codes is None or set(codes) & set(AT_INIT_TOO)):
        dx.findings.extend(_at_init(records, trace, top, limits, dx.findings, codes))
    dx.findings.sort(key=lambda f: (-rank(f.severity), _priority(f.code),
                                    -1 if f.row is None else f.row))
    return dx


def _at_init(records: RunRecords, trace: Trace | None, top: list[int], limits: dict[str, Limits],
             later: list[Finding], codes: list[str] | None) -> list[Finding]:
    """GAIN and FLOW findings at step 0 that are worse than at the judged step. The paraxial model
    and the table's step-0 columns are about initialization, and a defect there costs training
    time even when training later repairs it (deep-tanh: −57 dB at step 0, −16 dB by step 400)."""
    from netlens.aberrations import CATALOG

    ctx = Context(records, records.snapshots[0], trace, top, limits, 0, [])
    worst = {}
    for f in later:
        key = (f.code, f.kind)
        worst[key] = max(worst.get(key, 0), rank(f.severity))
    out = []
    for code in AT_INIT_TOO:
        if codes is not None and code not in codes:
            continue
        ab, lim = CATALOG[code], limits[code]
        readings = ab.readings(ctx)
        for r in readings:
            if r.severity is None:
                r.severity = lim.severity(r.score) if finite(r.score) else "ok"
        for f in _findings(ab, lim, readings, ctx):
            if rank(f.severity) > worst.get((f.code, f.kind), 0):
                f.message = "at initialization: " + f.message
                out.append(f)
    return out


def moment(records: RunRecords, at: str | int) -> tuple[Snapshot, int, list[str]]:
    """The snapshot to read rows at, the step asked for, and notes on any substitution."""
    if not records.snapshots:
        raise RunError("the run has no probe records to judge (it was simulated without instruments)")
    notes: list[str] = []
    if at == "init":
        target = records.snapshots[0]
    elif at == "end":
        target = records.snapshots[-1]
    else:
        step = parse_at(at)
        target = records.at(step)
        if target.step != step:
            notes.append(f"no probe at step {step}: judged at step {target.step}, the last probe "
                         f"before it (probes every {records.probe_every} steps)")
    snap = target
    if not _all_finite(snap):
        earlier = [s for s in records.snapshots if s.step <= target.step and _all_finite(s)]
        if earlier:
            snap = earlier[-1]
            notes.append(f"the rows are non-finite at step {target.step}: the per-row aberrations "
                         f"are read at step {snap.step}, the last finite probe")
    return snap, target.step, notes


def parse_at(at: str | int) -> int | str:
    """`init`, `end`, or a step number ≥ 0; anything else is an argument error (exit 2)."""
    if at in ("init", "end"):
        return at
    try:
        step = int(at)
    except (TypeError, ValueError):
        step = -1
    if step < 0:
        raise DesignError("`--at` takes `init`, `end` or a step number", path="--at",
                          expected="init | end | a step ≥ 0", found=at)
    return step


def _all_finite(s: Snapshot) -> bool:
    """Every measured value finite; a quantity not measured at this step (None: its tier did not
    read here, netlens/instruments/schedule.py) is no evidence either way."""
    return ((s.train_loss is None or finite(s.train_loss))
            and all(r.get("finite", True) and finite(r.get("q")) for r in s.rows))


def _priority(code: str) -> int:
    return PRIORITY.index(code) if code in PRIORITY else len(PRIORITY)


def _record(dx: Diagnosis, ab: Aberration, readings: list[Reading]) -> None:
    lim = dx.limits.get(ab.code)
    for r in readings:
        if not r.shown:
            continue
        if ab.scope == "network" or r.row is None:
            entry = {"name": ab.name_for(r.kind) if r.kind != "sum" else ab.name, "value": r.value,
                     "severity": r.severity, "unit": r.unit or ab.unit, "detail": r.detail,
                     "threshold": lim.crossed(r.severity, r.score) if lim and r.severity in ("warn", "error")
                     else (lim.to_dict() if lim else None)}
            (dx.network if ab.scope == "network" else dx.sums)[ab.code] = entry
            continue
        dx.values.setdefault(r.row, {})[ab.code] = r.value
        dx.severity.setdefault(r.row, {})[ab.code] = r.severity
        if r.judged is not None and finite(r.judged):
            dx.judged.setdefault(r.row, {})[ab.code] = r.judged


def _findings(ab: Aberration, lim: Limits, readings: list[Reading], ctx: Context) -> list[Finding]:
    groups: dict[tuple, list[Reading]] = {}
    for r in readings:
        if r.severity in ("info", "warn", "error"):
            groups.setdefault((r.kind, r.severity), []).append(r)
    out = []
    for (kind, severity), group in groups.items():
        group.sort(key=lambda r: -lim.badness(r.score) if finite(r.score) else -math.inf)
        worst = group[0]
        rows = [r.row for r in group if r.row is not None]
        out.append(Finding(
            code=ab.code, name=ab.name_for(kind), severity=severity, row=worst.row, rows=rows,
            value=worst.score, threshold=lim.crossed(severity, worst.score) if finite(worst.score) else
            lim.crossed(severity, 0.0), unit=ab.unit, message=_message(ab, lim, worst, rows, ctx),
            explanation=ab.explanation_for(kind), corrections=ab.corrections_for(kind), kind=kind,
            step=ctx.step if ab.scope == "row" else ctx.until))
    return out


def _message(ab: Aberration, lim: Limits, worst: Reading, rows: list[int], ctx: Context) -> str:
    value = fmt(worst.score, ab.unit)
    if worst.kind == "sum":
        head = f"SUM {value} at step {ctx.step}"
    elif ab.scope == "row" and worst.row is not None and worst.kind != "fragile":
        sigma = "Σ " if worst.judged is not None and ab.unit == "dB" else ""
        head = f"{sigma}{value} at {row_name(ctx.rows[worst.row])}, step {ctx.step}"
    else:
        head = value if worst.kind not in ("non-finite", "fragile", "adaptive") else ""
    if worst.severity in ("warn", "error") and finite(worst.score) and worst.kind != "fragile":
        head += f" ({lim.describe(worst.severity, worst.score)})"
    if len(rows) > 1 and worst.kind not in ("fragile", "sum"):
        head += f"; {worst.severity} on rows {span(rows)}"
    extra = ab.message(worst, ctx)
    return "; ".join(p for p in (head.strip(), extra) if p)


def span(rows: list[int]) -> str:
    """`#1–#9, #12`: compact row lists."""
    rows = sorted(set(rows))
    parts, start, prev = [], None, None
    for i in rows + [None]:
        if start is None:
            start = prev = i
        elif i is not None and i == prev + 1:
            prev = i
        else:
            parts.append(f"#{start}" if start == prev else f"#{start}–#{prev}")
            start = prev = i
    return ", ".join(parts)

