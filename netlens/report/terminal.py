"""Terminal rendering of the documents in `documents.py`: rich tables with a SUM row.

Reads only the JSON-shaped documents, so what the table says and what `--json` says agree.
"""
from __future__ import annotations

import math
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from netlens.elements import fmt_shape


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


def paraxial_table(doc: dict[str, Any]) -> Table:
    t = Table(title=f"paraxial trace — {doc['design']}  (input {fmt_shape(tuple(doc['input']['shape']))}, "
                    f"q₀ = {doc['input']['q']:.3g})", title_justify="left", header_style="bold")
    for col, just in [("#", "right"), ("element", "left"), ("source", "left"), ("out", "left"),
                      ("params", "right"), ("init σw²", "right"), ("q", "right"), ("gain dB", "right"),
                      ("flow dB", "right"), ("Σ gain dB", "right"), ("Σ flow dB", "right")]:
        t.add_column(col, justify=just)
    for r in doc["rows"]:
        t.add_row(str(r["index"]), _label(r) + (" ~" if r["approximate"] else ""), r["source"],
                  fmt_shape(tuple(r["out_shape"])), f"{r['params']:,}",
                  num(r["sigma_w2"], "{:.3g}"), num(r["q"], "{:.3g}"),
                  num(r["gain_db"]), num(r["flow_db"]), num(r["cum_gain_db"]), num(r["cum_flow_db"]))
    s = doc["sum"]
    t.add_section()
    t.add_row("", Text("SUM", style="bold"), "", "", f"{s['params']:,}", "", "",
              Text(num(s["gain_db"]), style="bold"), Text(num(s["flow_db"]), style="bold"), "", "")
    return t


def simulate_table(doc: dict[str, Any]) -> Table:
    t = Table(title=f"{doc['design']} — paraxial prediction beside measurement (dB)",
              title_justify="left", header_style="bold")
    cols = [("#", "right"), ("element", "left"), ("source", "left"), ("params", "right"),
            ("gain\nparaxial", "right"), ("gain\nstep 0", "right"), ("gain\nend", "right"),
            ("flow\nparaxial", "right"), ("flow\nstep 0", "right"), ("flow\nend", "right")]
    for col, just in cols:
        t.add_column(col, justify=just)
    for r in doc["rows"]:
        p, i, e = r["paraxial"], r["measured"]["init"], r["measured"]["end"]
        t.add_row(str(r["index"]), _label(r), r["source"], f"{r['params']:,}",
                  num(p["gain_db"]), num(i["gain_db"]), num(e["gain_db"]),
                  num(p["flow_db"]), num(i["flow_db"]), num(e["flow_db"]))
    s = doc["sum"]
    t.add_section()
    t.add_row("", Text("SUM", style="bold"), "", "", num(s["paraxial"]["gain_db"]),
              num(s["measured"]["init"]["gain_db"]), num(s["measured"]["end"]["gain_db"]),
              num(s["paraxial"]["flow_db"]), num(s["measured"]["init"]["flow_db"]),
              num(s["measured"]["end"]["flow_db"]))
    return t


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
