"""PNG plots of a tolerance run: the sensitivity bars (Δ merit in units of the noise floor), the
1-ulp twin's distance through training, and the yield's histogram and CDF against the spec."""
from __future__ import annotations

import math
from pathlib import Path

from netlens.optimize.plots import _pyplot, _save

COLORS = {"breaks": "#c44e52", "sensitive": "#dd8452", "within_noise": "#8c8c8c"}


def draw(doc: dict, folder: Path) -> list[Path]:
    plt = _pyplot()
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    if doc.get("sensitivity"):
        out.append(_sensitivity(doc, folder / "sensitivity.png", plt))
    inst = doc.get("instability") or {}
    if inst.get("curve"):
        out.append(_instability(doc, folder / "instability.png", plt))
    y = doc.get("yield")
    if y and y.get("samples"):
        out += _yield(doc, folder, plt)
    return out


def _sensitivity(doc: dict, path: Path, plt) -> Path:
    rows = doc["sensitivity"][::-1]
    fig, ax = plt.subplots(figsize=(8, 1.4 + 0.38 * len(rows)))
    labels = [f"{r['operand']} {r['perturbation']}" for r in rows]
    vals = []
    for r in rows:
        s = r["sigmas"]
        vals.append(0.0 if s is None or (isinstance(s, float) and math.isnan(s)) else
                    max(-50.0, min(50.0, s)))
    ax.barh(labels, vals, color=[COLORS[r["verdict"]] for r in rows])
    n = doc["seeds"]
    limit = 2 * math.sqrt(2 / n)          # the resolution in units of the noise floor
    ax.axvspan(-limit, limit, color="#dddddd", zorder=0, label=f"within noise at n = {n}")
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlabel(f"Δ {doc['merit']} in units of the noise floor (effect size; clipped at ±50)")
    ax.set_title(f"{doc['name']}: sensitivity of {doc['merit']} (worst at the top)")
    ax.legend(loc="lower right", fontsize=8)
    return _save(ax, path, plt)


def _instability(doc: dict, path: Path, plt) -> Path:
    inst = doc["instability"]
    pts = [(s, r) for s, r, _d in inst["curve"] if r is not None and r > 0]
    fig, ax = plt.subplots(figsize=(7, 4))
    if pts:
        ax.semilogy([p[0] for p in pts], [p[1] for p in pts], marker=".", label="1-ulp twin")
    ax.axhline(0.1, color="#c44e52", ls="--", lw=0.8, label="0.1")
    ax.set_xlabel("step")
    ax.set_ylabel("‖θ_A − θ_B‖ / ‖θ_A − θ_0‖")
    d = inst.get("doubling_steps")
    ax.set_title(f"{doc['name']}: the 1-ulp twin apart through training"
                 + (f" (doubles every {d:.0f} steps)" if d else ""))
    ax.legend(fontsize=8)
    return _save(ax, path, plt)


def _yield(doc: dict, folder: Path, plt) -> list[Path]:
    y = doc["yield"]
    vals = sorted(s["value"] for s in y["samples"] if s["value"] is not None)
    spec = doc["spec"].split()
    bound = float(spec[-1])
    out = []
    fig, ax = plt.subplots(figsize=(7, 4))
    if vals:
        ax.hist(vals, bins=max(5, min(30, len(vals) // 2)), color="#4c72b0")
    ax.axvline(bound, color="#c44e52", ls="--", label=doc["spec"])
    ax.set_xlabel(y["operand"])
    ax.set_ylabel("Monte Carlo runs")
    ax.set_title(f"{doc['name']}: yield {y['fraction']:.0%} [{y['low']:.0%}, {y['high']:.0%}] of {y['n']}")
    ax.legend(fontsize=8)
    out.append(_save(ax, folder / "yield_histogram.png", plt))
    fig, ax = plt.subplots(figsize=(7, 4))
    if vals:
        ax.step(vals, [(i + 1) / len(vals) for i in range(len(vals))], where="post")
    ax.axvline(bound, color="#c44e52", ls="--", label=doc["spec"])
    ax.set_xlabel(y["operand"])
    ax.set_ylabel("fraction of runs ≤ value")
    ax.set_title(f"{doc['name']}: cumulative distribution of {y['operand']}")
    ax.legend(fontsize=8)
    out.append(_save(ax, folder / "yield_cdf.png", plt))
    return out
