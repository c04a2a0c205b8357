"""The aberration diagram: the network's Seidel diagram, drawn from the `diagnose` document.

Top: per row, a bar for each telescoping aberration — the row's forward gain (GAIN) and backward
gain (FLOW) in dB at the judged step — and the SUM bars at the right, exactly as a Seidel
diagram shows each surface's contribution and their sum. Bottom: one marker per row for each
other per-row aberration (DEAD SATR RANK COND MEAN STEP), coloured by severity.
"""
from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

from netlens.aberrations import CATALOG, ROW_CODES
from netlens.report.plots import _pyplot, row_ticks

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
    # A finding judged at another step than the one drawn (GAIN/FLOW at initialization): a ring
    # in its severity's colour around each of its rows, and a line saying so under the title.
    elsewhere = [f for f in doc.get("findings", []) if f.get("step") is not None and f["step"] != step]
    ring_steps = set()
    for f in elsewhere:
        if f["code"] not in lines:
            continue
        y = lines.index(f["code"])
        at = [x for x, r in enumerate(rows) if r["index"] in (f.get("rows") or [f.get("row")])]
        if at:
            ring_steps.add(f["step"])
            bottom.scatter(at, [y] * len(at), marker="o", s=230, facecolors="none", lw=1.6,
                           edgecolors=COLOUR[f["severity"]], zorder=4)
    if elsewhere:
        said = "; ".join(f"{f['code']} {f['severity']} judged at step {f['step']}"
                         + (" (at initialization)" if f["step"] == 0 else "") for f in elsewhere)
        top.text(0.5, 1.0, f"not at step {step}: {said} — ringed below", transform=top.transAxes,
                 ha="center", va="bottom", fontsize=8, color="#b71c1c")
        top.set_title(top.get_title(), pad=16)
    bottom.set_yticks(range(len(lines)))
    bottom.set_yticklabels(["Σ GAIN", "Σ FLOW"] + codes, fontsize=7)
    bottom.set_ylim(len(lines) - 0.3, -0.7)
    bottom.set_ylabel("aberration")
    bottom.grid(axis="y", lw=0.3)
    ticks, names = row_ticks(xs, [f"#{r['index']} {r['label']}" for r in rows], None)
    bottom.set_xticks(xs, minor=True)
    bottom.set_xticks(ticks + [n + 0.5])
    bottom.set_xticklabels(names + ["SUM"], rotation=90, fontsize=6)
    bottom.set_title(f"severity per row at step {step}", fontsize=8)
    bottom.legend(handles=_legend_handles(plt, ring_steps), fontsize=6.5, loc="upper left",
                  bbox_to_anchor=(1.002, 1.0), borderaxespad=0, frameon=False)
    with warnings.catch_warnings():
        # A deep network's row labels and the legend beside the axes can leave tight_layout no
        # room to satisfy every margin; it then keeps the layout it has, which reads fine, and
        # its warning would only land in the user's terminal.
        warnings.filterwarnings("ignore", "Tight layout not applied", UserWarning)
        fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _v(x: float | None) -> float:
    # ±inf dB (a layer whose gradient is exactly zero) has no bar to draw
    return x if x is not None and math.isfinite(x) else float("nan")


def _legend_handles(plt, ring_steps: set) -> list:
    from matplotlib.lines import Line2D

    def mark(marker, colour, label, **kw):
        return Line2D([], [], ls="", marker=marker, color=colour, label=label, **kw)

    grey = "#777777"
    out = [mark("D", grey, "Σ (cumulative, judged)", ms=6), mark("o", grey, "row value", ms=6),
           mark("s", grey, "SUM row", ms=6)]
    out += [mark("o", COLOUR[s], s, ms=7 if s == "ok" else 9) for s in ("ok", "info", "warn", "error")]
    for st in sorted(ring_steps):
        out.append(mark("o", "#e53935", f"ring: judged at step {st}", ms=11, mfc="none", mew=1.6))
    return out
