"""Findings → corrections: each finding of a diagnosis gets its corrections as prescription
patches (docs/corrections.md): the correction as a prescription diff, and — where the paraxial
model can compute it — the predicted value after the correction.
"""
from __future__ import annotations

import math
import statistics
from typing import Any

from netlens.corrections.base import Case
from netlens.corrections.patch import ERROR_DB, Corrector
from netlens.prescription import Design


def measured(records: Any) -> dict[str, float]:
    """Run measurements corrections take parameters from: λ (the first finite estimate, the
    curvature the run started from), for Adam-family runs the preconditioned λ₁(P⁻¹H) (its first
    finite estimate), the median global gradient norm and the log10 median update ratio
    ‖ΔW‖/‖W‖ of the weight rows over the second half (PREC's set_lr)."""
    if records is None:
        return {}
    snaps = getattr(records, "snapshots", [])
    hessians = [s.hessian for s in snaps if s.hessian is not None and math.isfinite(s.hessian)]
    norms = [s.grad_norm for s in snaps if s.grad_norm is not None and math.isfinite(s.grad_norm)]
    ratios = [r.get("update_ratio") for s in snaps[len(snaps) // 2:] for r in s.rows]
    ratios = [r for r in ratios if isinstance(r, float) and math.isfinite(r) and r > 0]
    pre = [s.preconditioned for s in snaps
           if getattr(s, "preconditioned", None) is not None and math.isfinite(s.preconditioned)]
    out: dict[str, float] = {}
    if ratios:       # log10 of the median update ratio over the weight rows, second half
        out["update_ratio"] = math.log10(statistics.median(ratios))
    if hessians:
        out["hessian"] = hessians[0]
    if pre:
        out["preconditioned"] = pre[0]
    if norms:
        out["grad_norm"] = statistics.median(norms)
    return out


def error_level(limits: dict | None, code: str | None) -> float:
    """The error level of a dB aberration (GAIN, FLOW) in this diagnosis's thresholds."""
    lim = (limits or {}).get(code)
    level = getattr(lim, "error", None)
    return float(level) if isinstance(level, (int, float)) else ERROR_DB


def attach(doc: dict[str, Any], design: Design, records: Any = None, limits: dict | None = None,
           corrector: Corrector | None = None) -> Corrector:
    """Replace each finding's `corrections` (names, in the aberration's order) by the applicable
    ones, most direct first, each `{name, patch}` (the JSON contract); `correction_info` holds
    per name what it did, its citation and the predicted effect; `suggested` keeps the
    aberration's own list and `not_applicable` says why the others were left out."""
    corrector = corrector or Corrector(design)
    run = measured(records)
    for f in doc.get("findings", []):
        names = [c["name"] if isinstance(c, dict) else c for c in f.get("corrections", [])]
        f.setdefault("suggested", names)
        if f.get("severity") not in ("warn", "error"):
            # Only actionable findings carry patches: an info finding (not judged, or present
            # but did not stop training) asks for no change to the prescription.
            f["corrections"], f["correction_info"], f["not_applicable"] = [], {}, {}
            continue
        skipped: dict[str, str] = {}
        patches = corrector.suggest(Case.of(f, **run), names, skipped,
                                    error_level(limits, f.get("code")))
        f["corrections"] = [{"name": p.name, "patch": p.diff} for p in patches]
        f["correction_info"] = {p.name: p.info() for p in patches}
        f["not_applicable"] = {n: why for n, why in skipped.items() if n in names}
    return corrector
