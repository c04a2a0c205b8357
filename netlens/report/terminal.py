"""Terminal rendering of the documents in `documents.py`: rich tables with a SUM row.

Reads only the JSON-shaped documents, so what the table says and what `--json` says agree.
"""
from __future__ import annotations

import math
import re
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from netlens.elements import fmt_shape
from netlens.report.layout import Col, Fitted, Layout, heavy


def num(x: float | None, fmt: str = "{:+.1f}") -> str:
    if x is None:
        return "—"
    if isinstance(x, float) and math.isinf(x):
        return "−∞" if x < 0 else "+∞"
    return fmt.format(x)


def _label(row: dict) -> str:
    indent = "  " * row.get("depth", 0) + ("└ " if row.get("depth") else "")
    name = f" ({row['name']})" if row.get("name") else ""
    return indent + row["label"] + name


def short_source(source: str) -> str:
    """`deep-tanh.yaml:31 repeat 3/30` → `:31 3/30` (the file is in the title)."""
    s = re.sub(r"^[^:\s]*", "", source)
    return s.replace("repeat ", "").strip()


def _bold(x: str) -> Text:
    return Text(x, style="bold")


def paraxial_table(doc: dict[str, Any]) -> Fitted:
    """The paraxial trace. Per-row gains are per unit (they telescope to the SUM row); the Σ flow
    column is summed over units, the quantity `diagnose` judges as FLOW."""
    rows, s = doc["rows"], doc["sum"]
    q0 = doc["input"]["q"]
    title = (f"paraxial trace — {doc['design']}  (input {fmt_shape(tuple(doc['input']['shape']))}, "
             f"q₀ = {q0:.3g}{' for standardized data' if doc['input'].get('assumed') else ''})")
    col = lambda header, key, fmt="{:+.1f}", **kw: Col(header, [num(r.get(key), fmt) for r in rows], **kw)
    layout = Layout(title, key=[
        Col("#", [str(r["index"]) for r in rows]),
        Col("element", [_label(r) + (" ~" if r["approximate"] else "") for r in rows], _bold("SUM"),
            justify="left", wrap=True),
    ], groups=[
        [Col("source", [r["source"] for r in rows], justify="left", wrap=True,
             alt=[short_source(r["source"]) for r in rows])],
        [Col("out", [fmt_shape(tuple(r["out_shape"])) for r in rows], justify="left"),
         Col("params", [f"{r['params']:,}" for r in rows], f"{s['params']:,}")],
        [col("init\nσw²", "sigma_w2", "{:.3g}"), col("q", "q", "{:.3g}")],
        [col("gain\ndB", "gain_db", sum=_bold(num(s["gain_db"]))),
         col("flow\ndB", "flow_db", sum=_bold(num(s["flow_db"])))],
        [col("Σ gain\ndB", "cum_gain_db"), col("Σ flow dB\nall units", "cum_flow_total_db")],
    ], table=heavy(), priority=[0, 3, 4, 1, 2])
    return Fitted(layout)


def simulate_table(doc: dict[str, Any]) -> Fitted:
    rows, s = doc["rows"], doc["sum"]
    q0 = doc.get("input", {}).get("q")
    title = f"{doc['design']} — paraxial prediction beside measurement (dB per unit)"
    if q0 is not None:
        title += f"; paraxial at the measured input power q₀ = {q0:.3g}"

    def three(what: str, key: str) -> list[Col]:
        return [Col(f"{what}\nparaxial", [num(r["paraxial"][key]) for r in rows], num(s["paraxial"][key])),
                Col(f"{what}\nstep 0", [num(r["measured"]["init"][key]) for r in rows],
                    num(s["measured"]["init"][key])),
                Col(f"{what}\nend", [num(r["measured"]["end"][key]) for r in rows],
                    num(s["measured"]["end"][key]))]

    layout = Layout(title, key=[
        Col("#", [str(r["index"]) for r in rows]),
        Col("element", [_label(r) for r in rows], _bold("SUM"), justify="left", wrap=True),
    ], groups=[
        [Col("source", [r["source"] for r in rows], justify="left", wrap=True,
             alt=[short_source(r["source"]) for r in rows])],
        [Col("params", [f"{r['params']:,}" for r in rows])],
        three("gain", "gain_db"), three("flow", "flow_db"),
    ], table=heavy())
    return Fitted(layout)


def training_summary(doc: dict[str, Any]) -> list[str]:
    tr, m0, m1 = doc["train"], doc["initial"], doc["metrics"]
    lines = [f"trained {tr['steps_done']}/{tr['steps']} steps in {tr['seconds']:.1f}s on {tr['device']} "
             f"({tr['optimizer']}, lr {tr['lr']:g}, batch {tr['batch']}, {tr['loss']}, {tr['precision']})"]

    def fmt(m: dict) -> str:
        parts = [f"train loss {num(m['train_loss'], '{:.4g}')}"]
        if m["val_loss"] is not None:
            parts.append(f"val loss {num(m['val_loss'], '{:.4g}')}")
        if m["train_accuracy"] is not None:
            parts.append(f"train acc {m['train_accuracy']:.3f}")
        if m["val_accuracy"] is not None:
            parts.append(f"val acc {m['val_accuracy']:.3f}")
        text = ", ".join(parts)
        if m.get("train_rmse") is not None:       # standardized regression targets
            units = [f"{k} rmse {num(m[f'{k}_rmse'], '{:.4g}')}" for k in ("train", "val")
                     if m.get(f"{k}_rmse") is not None]
            r2 = [f"{k} R² {m[f'{k}_r2']:.3f}" for k in ("train", "val") if m.get(f"{k}_r2") is not None]
            text += " (standardized targets); in the targets' units: " + ", ".join(units + r2)
        return text

    lines.append(f"step {m0['step']:>5}: {fmt(m0)}")
    lines.append(f"step {m1['step']:>5}: {fmt(m1)}")
    hs = [(h["step"], h["hessian"]) for h in doc["history"] if h["hessian"] is not None]
    if hs:
        step, lam = hs[-1]
        loss = num(next(h["probe_loss"] for h in doc["history"] if h["step"] == step), "{:.3g}")
        if tr["optimizer"] == "sgd":
            limit = 2 * (1 + tr["momentum"]) / tr["lr"]
            where = f"stability limit 2(1+β)/lr = {limit:.4g}"
        else:
            where = f"{tr['optimizer']} is adaptive: its limit applies to the preconditioned Hessian"
        lines.append(f"top Hessian eigenvalue λ = {lam:.4g} at step {step}, probe-batch loss {loss}, "
                     f"lr {tr['lr']:g}, batch {tr['batch']} ({where})")
    if doc["divergence"]:
        d = doc["divergence"]
        where = f"row #{d['row']}" if d["row"] is not None else f"the {d['quantity']}"
        lines.append(f"[bold red]diverged[/]: first non-finite value at step {d['step']} in {where}")
    if tr["interrupted"]:
        lines.append("[yellow]interrupted[/]: the records up to the interruption were kept")
    return lines


def print_lines(console: Console, lines: list[str]) -> None:
    for line in lines:
        console.print(line, highlight=False)
