"""The aberration catalog: one module per aberration, registered here by code.

    from netlens.aberrations import CATALOG, judge
    diagnosis = judge(records, trace, at="end")      # → Diagnosis: findings, per-row values

Per-row (the table's columns): GAIN FLOW DEAD SATR RANK COND MEAN STEP.
Network-level (the panel):     SHRP DIVG INIT STAL GAP NOIS.
A user adds one by writing a module with an `Aberration` subclass decorated with `@register`
and a `Limits` entry in `thresholds.TABLE` (or passed to `judge`). Torch-free: a run folder is
judged from its records alone.
"""
from __future__ import annotations

from netlens.aberrations.base import Aberration

CATALOG: dict[str, Aberration] = {}


def register(cls: type[Aberration]) -> type[Aberration]:
    CATALOG[cls.code] = cls()
    return cls


# Registration order is the order of the table's columns and of the panel.
from netlens.aberrations import (  # noqa: E402,F401
    gain, flow, dead, saturation, rank, conditioning, mean_shift, update_ratio,
    sharpness, divergence, initial_loss, stall, gap, noise,
)
from netlens.aberrations.base import Finding, Reading  # noqa: E402
from netlens.aberrations.judge import Diagnosis, judge  # noqa: E402
from netlens.aberrations.thresholds import TABLE, Limits, resolve  # noqa: E402

ROW_CODES = [c for c, a in CATALOG.items() if a.scope == "row"]
NETWORK_CODES = [c for c, a in CATALOG.items() if a.scope == "network"]


def entries() -> list[dict]:
    """Every catalog entry, for `netlens catalog`."""
    return [a.entry(TABLE[code]) for code, a in CATALOG.items()]


__all__ = ["CATALOG", "ROW_CODES", "NETWORK_CODES", "Aberration", "Diagnosis", "Finding",
           "Limits", "Reading", "TABLE", "entries", "judge", "register", "resolve"]
