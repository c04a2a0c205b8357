"""The generic loop: records → readings → severities → findings, one aberration at a time.

`judge` picks the moment (`init`, `end` or a step), asks every aberration in the catalog for its
readings, compares them with the thresholds, and groups the flagged rows of each aberration into
findings: one per (case, severity), naming the worst row and listing the others. Findings come
out most severe first, and within a severity causes before symptoms (a divergence before the
stall it causes).

The trainability aberrations (GAIN FLOW DEAD SATR RANK COND MEAN STEP) are read at every probe
up to the moment and judged over their window — initialization, early and middle training —
with what appears later weighed against the outcome (`window.py`); each finding says which
steps it was judged over. The others are read at the moment, by their own rules.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from netlens.aberrations.base import (Aberration, Context, Finding, Reading, finite, fmt, rank, row_name,
                                     training_loss)
from netlens.aberrations.thresholds import TABLE, Limits
from netlens.aberrations.window import TRAINABILITY, Window, window
from netlens.errors import DesignError, RunError
from netlens.instruments.records import RunRecords, Snapshot
from netlens.paraxial.trace import Trace

# Causes first, symptoms last, within one severity.
PRIORITY = ("DIVG", "FLOW", "GAIN", "SHRP", "DEAD", "SATR", "RANK", "COND", "MEAN", "STEP",
            "INIT", "STAL", "GAP", "NOIS")
FAIL_LEVELS = ("info", "warn", "error", "never")
SCORE = {"ok": 0, "info": 0, "warn": 1, "error": 2}    # what `optimize` sums per code


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
    restricts the catalog (all by default). The trainability codes are judged over their window
    (`window.py`); the others at the moment, by their own rules."""
    from netlens.aberrations import CATALOG

    limits = dict(TABLE, **(limits or {}))
    snap, until, notes = moment(records, at)
    top = [m.index for m in records.rows if m.parent is None]
    ctx = Context(records, snap, trace, top, limits, until, notes)
    dx = Diagnosis(str(at), snap.step, until, [], {}, {}, {}, {}, {}, limits, notes)
    snaps = [s for s in records.snapshots if s.step <= snap.step]
    diverged = records.divergence is not None and records.divergence.step <= until
    win = window(records, snaps, until, diverged)
    if until > 0 and (codes is None or set(codes) & set(TRAINABILITY)):
        notes.append(win.note())
    contexts = {s.step: Context(records, s, trace, top, limits, s.step, []) for s in snaps}
    contexts[snap.step] = ctx
    for code, ab in CATALOG.items():
        if codes is not None and code not in codes:
            continue
        lim = limits.get(code) or Limits(None, None, "above", ab.unit, "")
        if code in TRAINABILITY and ab.scope == "row":
            shown, verdicts = _over_window(ab, lim, contexts, snap, win)
            _record(dx, ab, shown)
            dx.findings.extend(_findings(ab, lim, verdicts, contexts, win))
            continue
        readings = _judged(ab, lim, ctx)
        _record(dx, ab, readings)
        dx.findings.extend(_findings(ab, lim, readings, {ctx.step: ctx}, None))
    dx.findings.sort(key=lambda f: (-rank(f.severity), _priority(f.code),
                                    -1 if f.row is None else f.row))
    return dx


def _judged(ab: Aberration, lim: Limits, ctx: Context) -> list[Reading]:
    """An aberration's readings at one probe, each with its severity and step."""
    readings = ab.readings(ctx)
    for r in readings:
        if r.severity is None:
            r.severity = lim.severity(r.score) if finite(r.score) else "ok"
        r.step = ctx.step
    return readings


def _over_window(ab: Aberration, lim: Limits, contexts: dict[int, Context], snap: Snapshot,
                 win: Window) -> tuple[list[Reading], list[Reading]]:
    """A trainability aberration over the run: its worst reading per (row, case) inside the
    judging window and after it, the late one weighed against the outcome. Returns the table's
    readings (at the judged probe, coloured by each row's verdict) and the verdicts."""
    steps = sorted(contexts)
    if not ab.per_probe:        # a windowed reading itself: over the judging window after step 0,
        inside = [t for t in steps if win.covers(t)]   # and over the second half up to the moment
        end = inside[-1] if inside else steps[0]
        c = contexts[end]
        contexts = {**contexts, end: replace(c, since=1, notes=[])} if end != snap.step else contexts
        steps = sorted({end, snap.step})
    at_snap: list[Reading] = []
    early: dict[tuple, Reading] = {}
    late: dict[tuple, Reading] = {}
    for t in steps:
        readings = _judged(ab, lim, contexts[t])
        if t == snap.step:
            at_snap = readings
        for r in readings:
            bucket = early if win.covers(t) else late
            key = (r.row, r.kind, r.shown)
            if key not in bucket or _worse(r, bucket[key], lim):
                bucket[key] = r
    verdicts = []
    for key in list(early) + [k for k in late if k not in early]:
        e, l = early.get(key), late.get(key)
        if l is not None and rank(l.severity) > rank(e.severity if e else "ok"):
            l.late = True
            if win.fitted and l.severity in ("warn", "error"):
                l.was, l.severity = l.severity, "info"
            if e is None or rank(l.severity) > rank(e.severity):
                e = l
        verdicts.append(e if e is not None else l)
    worst_of_row: dict[int | None, str] = {}
    for r in verdicts:
        if r.shown:
            worst_of_row[r.row] = max(worst_of_row.get(r.row, "ok"), r.severity, key=rank)
    shown = []
    rows_at_snap = set()
    for r in at_snap:
        if r.shown:
            rows_at_snap.add(r.row)
            shown.append(replace(r, severity=worst_of_row.get(r.row, "ok")))
    # a row judged in its window but not measured at the judged probe: its verdict's reading
    for r in verdicts:
        if r.shown and r.row not in rows_at_snap:
            rows_at_snap.add(r.row)
            shown.append(replace(r, severity=worst_of_row[r.row]))
    return shown, verdicts


def _worse(a: Reading, b: Reading, lim: Limits) -> bool:
    if rank(a.severity) != rank(b.severity):
        return rank(a.severity) > rank(b.severity)
    if not finite(a.score) or not finite(b.score):
        return False
    return lim.badness(a.score) > lim.badness(b.score)


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
    """No non-finite value among what the probe recorded: a quantity not measured at this step
    (None: its tier did not read here, netlens/instruments/schedule.py) is no sign of trouble."""
    probe, train = getattr(s, "probe_loss", None), s.train_loss
    loss_ok = (probe is None and train is None) or finite(training_loss(s))
    return loss_ok and all(r.get("finite", True) and (r.get("q") is None or finite(r["q"]))
                           for r in s.rows)


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


def _findings(ab: Aberration, lim: Limits, readings: list[Reading], contexts: dict[int, Context],
              win: Window | None) -> list[Finding]:
    groups: dict[tuple, list[Reading]] = {}
    for r in readings:
        if r.severity in ("info", "warn", "error"):
            groups.setdefault((r.kind, r.severity, r.late), []).append(r)
    out = []
    for (kind, severity, _late), group in groups.items():
        group.sort(key=lambda r: -lim.badness(r.score) if finite(r.score) else -math.inf)
        worst = group[0]
        ctx = contexts.get(worst.step) or next(iter(contexts.values()))
        rows = [r.row for r in group if r.row is not None]
        level = worst.was or severity
        out.append(Finding(
            code=ab.code, name=ab.name_for(kind), severity=severity, row=worst.row, rows=rows,
            value=worst.score, threshold=lim.crossed(level, worst.score) if finite(worst.score) else
            lim.crossed(level, 0.0), unit=ab.unit, message=_message(ab, lim, worst, rows, ctx, win),
            explanation=ab.explanation_for(kind), corrections=ab.corrections_for(kind), kind=kind,
            step=ctx.step if ab.scope == "row" else ctx.until))
    return out


def _message(ab: Aberration, lim: Limits, worst: Reading, rows: list[int], ctx: Context,
             win: Window | None = None) -> str:
    value = fmt(worst.score, ab.unit)
    level = worst.was or worst.severity
    if worst.kind == "sum":
        head = f"SUM {value} at step {ctx.step}"
    elif ab.scope == "row" and worst.row is not None and worst.kind != "fragile":
        sigma = "Σ " if worst.judged is not None and ab.unit == "dB" else ""
        head = f"{sigma}{value} at {row_name(ctx.rows[worst.row])}, step {ctx.step}"
    else:
        head = value if worst.kind not in ("non-finite", "fragile", "adaptive") else ""
    if level in ("warn", "error") and finite(worst.score) and worst.kind != "fragile":
        head += f" ({lim.describe(level, worst.score)})"
    if len(rows) > 1 and worst.kind not in ("fragile", "sum"):
        head += f"; {worst.severity} on rows {span(rows)}"
    extra = ab.message(worst, ctx)
    when = ""
    if win is not None and win.until > 0:
        if not worst.late:
            when = f"judged over {win.span}"
            if ctx.step == 0:
                head = "at initialization: " + head
        elif worst.was is not None:
            when = (f"after the judging window ({win.span}): present, did not stop training — "
                    f"the network fitted its training set ({win.outcome})")
        else:
            when = (f"after the judging window ({win.span}), in a run that did not fit its "
                    f"training set ({win.outcome})")
    return "; ".join(p for p in (head.strip(), extra, when) if p)


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

