"""Aberrations as optimize sees them: the one seam between optimize and diagnose's catalog.

Two things in optimize read aberrations, both through `judge()` here, which asks the catalog
(`netlens.aberrations`, docs/aberrations.md) with the design's own thresholds (`diagnose: thresholds:`):
  - an aberration code as a merit operand: its severity summed over rows and the network
    (warn 1, error 2 — `Diagnosis.score`), so the codes diagnose prints are operands;
  - aberration-aware pruning: a trial is stopped when it diverges (any DIVG finding), or when it
    shows an error-level vanishing or exploding gradient (FLOW) at an early probe.
"""
from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

from netlens.instruments.records import RunRecords

PRUNE_ON = ("DIVG", "FLOW")


@dataclass(frozen=True)
class Reason:
    code: str
    message: str


def codes() -> list[str]:
    """Every aberration code optimize accepts as an operand."""
    from netlens.aberrations import CATALOG

    return list(CATALOG)


def _limits(design) -> dict | None:
    from netlens.aberrations import resolve

    thresholds = getattr(getattr(design, "diagnose", None), "thresholds", None)
    return resolve(thresholds) if thresholds else None


def judge(records: RunRecords, design=None, trace=None, only: list[str] | None = None) -> Any:
    """The catalog's diagnosis of a run, or of the records so far mid-run (at their last probe)."""
    from netlens.aberrations import judge as catalog_judge

    with design.blame() if design is not None else nullcontext():
        return catalog_judge(records, trace, at="end", limits=_limits(design), codes=only)


def prune_reason(records: RunRecords, design=None, early: bool = True) -> Reason | None:
    """Why a trial should stop now, from its records so far: a divergence, or (at an early
    probe) an error-level vanishing or exploding gradient. None if it should go on."""
    if not records.snapshots:
        return None
    found = judge(records, design, only=list(PRUNE_ON if early else ("DIVG",))).findings
    for f in found:
        if f.code == "DIVG" and f.severity in ("warn", "error"):
            return Reason("DIVG", f"divergence: {f.message}")
        if f.code == "FLOW" and f.severity == "error" and f.kind in ("vanishing", "exploding"):
            return Reason("FLOW", f"{f.kind} gradient: {f.message}")
    return None

