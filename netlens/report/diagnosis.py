"""The `diagnose` JSON document: the simulate document (docs/json.md) with the judgement.

Adds to `simulate_doc`: per row `values` {CODE: value}, `severity` {CODE: level}, `cumulative`
(Σ gain/flow in dB) and `measured.at` (the judged probe); the SUM row's `values` (COND);
`network` (the panel: SHRP DIVG INIT STAL GAP NOIS); `findings`; `at`; `thresholds`;
`summary` (worst severity and counts). Everything the terminal view prints comes from here.
"""
from __future__ import annotations

import math
from typing import Any

from netlens.aberrations import Diagnosis
from netlens.instruments.records import RunRecords
from netlens.paraxial.trace import Trace, db
from netlens.prescription import Design
from netlens.report.documents import _r, simulate_doc


def diagnose_doc(design: Design, tr: Trace, rec: RunRecords, run_dir: str | None,
                 dx: Diagnosis) -> dict[str, Any]:
    values = {i: {k: _r(v, 4) for k, v in codes.items()} for i, codes in dx.values.items()}
    doc = simulate_doc(design, tr, rec, run_dir, [_finding(f.to_dict()) for f in dx.findings], values)
    snap = next(s for s in rec.snapshots if s.step == dx.step)
    at = [(_db(g), _db(f)) for g, f in rec.gains(snap)]
    for row, meta, (g, f) in zip(doc["rows"], rec.rows, at):
        i = meta.index
        row["source"] = meta.source          # the original file's lines, also for a run folder
        row["measured"]["at"] = {"step": dx.step, "gain_db": _r(g), "flow_db": _r(f)}
        judged = dx.judged.get(i, {})
        row["cumulative"] = {"gain_db": _r(judged.get("GAIN")), "flow_db": _r(judged.get("FLOW"))}
        row["severity"] = dx.severity.get(i, {})
    top = [m.index for m in rec.rows if m.parent is None]
    doc["sum"]["measured"]["at"] = {"step": dx.step,
                                    "gain_db": _r(sum(at[i][0] for i in top)),
                                    "flow_db": _r(sum(at[i][1] for i in top))}
    doc["sum"]["values"] = {code: _entry(e) for code, e in dx.sums.items()}
    doc["at"] = {"requested": dx.requested, "step": dx.step, "until": dx.until}
    doc["network"] = {code: _entry(e) for code, e in dx.network.items()}
    doc["thresholds"] = {code: lim.to_dict() for code, lim in dx.limits.items()}
    doc["summary"] = {"worst": dx.worst,
                      "counts": {s: sum(f.severity == s for f in dx.findings)
                                 for s in ("error", "warn", "info")}}
    doc["notes"] = list(dx.notes) + list(tr.notes)
    return doc


def _db(x: float) -> float:
    return db(x) if x == x and x >= 0 else math.nan


def _entry(e: dict[str, Any]) -> dict[str, Any]:
    return {**e, "value": _r(e["value"], 4) if isinstance(e["value"], float) else e["value"]}


def _finding(d: dict[str, Any]) -> dict[str, Any]:
    return {**d, "value": _r(d["value"], 4) if isinstance(d["value"], float) else d["value"]}
