"""The aberration diagram: the network's Seidel diagram, drawn from the `diagnose` document.

Top: per row, a bar for each telescoping aberration — the row's forward gain (GAIN) and backward
gain (FLOW) in dB at the judged step — and the SUM bars at the right, exactly as a Seidel
diagram shows each surface's contribution and their sum. Bottom: one marker per row for each
other per-row aberration (DEAD SATR RANK COND MEAN STEP), coloured by severity.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from netlens.aberrations import CATALOG, ROW_CODES
from netlens.report.plots import _pyplot

COLOUR = {"ok": "#4caf50", "info": "#2196f3", "warn": "#ffb300", "error": "#e53935"}


def aberration_diagram(doc: dict[str, Any], path: Path) -> None:
    plt = _pyplot()
    rows = doc["rows"]
    n = len(rows)
    width = min(max(7.0, 0.22 * n + 3), 30.0)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(width, 6.5), sharex=True,
                                      gridspec_kw={"height_ratios": [3, 1.4]})
    xs = list(range(n))
    step = doc["at"]["step"]
    for offset, key, label, colour in ((-0.2, "gain_db", "GAIN (forward)", "#1f77b4"),
                                       (0.2, "flow_db", "FLOW (backward)", "#d62728")):
        vals = [_v(r["measured"]["at"][key]) for r in rows]
        top.bar([x + offset for x in xs], vals, width=0.4, color=colour, label=label)
        total = _v(doc["sum"]["measured"]["at"][key])
        top.bar(n + 0.5 + offset, total, width=0.4, color=colour, edgecolor="black", hatch="//")
        par = [_v(r["paraxial"][key]) for r in rows]
        top.plot([x + offset for x in xs], par, "k_", ms=7, mew=1.5,
                 label="paraxial" if key == "gain_db" else None)
    top.axhline(0, color="grey", lw=0.6)
    top.set_ylabel("per-row gain (dB)")
    top.set_title(f"{doc['design']}: aberration diagram at step {step} (hatched: SUM)")
    top.legend(fontsize=7, loc="best")

    codes = [c for c in ROW_CODES if c not in ("GAIN", "FLOW")]
    codes = [c for c in codes if not CATALOG[c].optional_column
             or any(c in r.get("severity", {}) for r in rows)]
    lines = ["GAIN", "FLOW"] + codes            # top to bottom; GAIN/FLOW are judged on Σ
    points: dict[str, list] = {"D": [], "o": [], "s": []}     # marker → (x, y, severity)
    for y, code in enumerate(lines):
        marker = "D" if code in ("GAIN", "FLOW") else "o"
        points[marker] += [(x, y, r["severity"][code]) for x, r in enumerate(rows)
                           if code in r.get("severity", {})]
        e = doc["sum"].get("values", {}).get(code)
        if e:
            points["s"].append((n + 0.5, y, e["severity"]))
    for marker, pts in points.items():          # one call per marker: fast for deep stacks
        if pts:
            xs_, ys_, sev = zip(*pts)
            bottom.scatter(xs_, ys_, marker=marker, zorder=3, c=[COLOUR[s] for s in sev],
                           s=[40 if s == "ok" else 90 for s in sev])
    bottom.set_yticks(range(len(lines)))
    bottom.set_yticklabels(["Σ GAIN", "Σ FLOW"] + codes, fontsize=7)
    bottom.set_ylim(len(lines) - 0.3, -0.7)
    bottom.grid(axis="y", lw=0.3)
    bottom.set_xticks(xs + [n + 0.5])
    bottom.set_xticklabels([f"#{r['index']} {r['label']}" for r in rows] + ["SUM"], rotation=90, fontsize=6)
    bottom.set_title("severity per row: green ok, amber warn, red error", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _v(x: float | None) -> float:
    # ±inf dB (a layer whose gradient is exactly zero) has no bar to draw
    return x if x is not None and math.isfinite(x) else float("nan")
