"""Tolerance and compare for people: a live progress line while runs train, then tables read from
the result document only (so the tables and `--json` agree)."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from rich.table import Table

from netlens.optimize.terminal import _where

VERDICT_STYLE = {"breaks": "bold red", "sensitive": "yellow", "within_noise": "dim",
                 "better": "green", "worse": "bold red", "indistinguishable": "dim"}
SHOWN = ("val_loss", "val_error", "val_accuracy", "train_loss", "train_accuracy", "params", "time")


def _v(x: Any, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    if isinstance(x, float):
        if math.isinf(x):
            return "∞" if x > 0 else "−∞"
        return f"{x:.{digits}g}"
    return str(x)


def _pm(s: dict | None) -> str:
    if not s or not s.get("n"):
        return "—"
    return f"{_v(s['mean'])} ± {_v(s['sd'], 2)}"


class LiveProgress:
    """runs done / needed, failed, running now."""

    def __init__(self, console, label: str):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(bar_width=12), MofNCompleteColumn(),
            TextColumn("runs · {task.fields[failed]} failed · {task.fields[running]} running"),
            TimeElapsedColumn(), console=console, transient=True)
        self.task = self.progress.add_task(label, total=None, failed=0, running=0)

    def __enter__(self):
        self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        return self.progress.__exit__(*exc)

    def update(self, c: dict) -> None:
        self.progress.update(self.task, description=c["label"], total=c["requested"],
                             completed=c["done"], failed=c["failed"], running=c["running"])


# -- tolerance --------------------------------------------------------------------------------------
def print_tolerance(con, doc: dict) -> None:
    r = doc["runs"]
    con.print(f"tolerance of [bold]{doc['name']}[/]: {doc['seeds']} seeds, merit [bold]{doc['merit']}[/]"
              + (f", spec [bold]{doc['spec']}[/]" if doc.get("spec") else ""))
    con.print(f"study {doc['study']} in {_where(doc['storage'])}: {r['total']} runs, {r['trained_now']} "
              f"trained now on {r['workers']} worker(s) in {r['seconds']:.1f} s"
              + (f", {r['failed']} failed" if r["failed"] else ""))
    if doc.get("noise"):
        con.print(noise_table(doc))
        con.print(f"[dim]rule: {doc['rule']}.[/]", soft_wrap=True)
    if doc.get("sensitivity"):
        con.print(sensitivity_table(doc))
        rss = doc["rss"]
        con.print(f"RSS of the {rss['rows']} rows: Δ {doc['merit']} {_v(rss['delta'], 3)} "
                  f"({_v(rss['sigmas'], 3)} noise floors)")
    for inv in doc.get("inverse") or []:
        con.print(f"inverse sensitivity: {inv['text']}", soft_wrap=True)
    inst = doc.get("instability")
    if inst:
        con.print(instability_line(inst), soft_wrap=True)
    y = doc.get("yield")
    if y:
        con.print(f"yield: [bold]{y['fraction']:.0%}[/] of {y['n']} Monte Carlo runs meet {y['spec']} "
                  f"(95% interval {y['low']:.0%} – {y['high']:.0%}, Wilson)")
    if doc.get("plots"):
        con.print(f"plots: {Path(doc['plots'][0]).parent}/ ({', '.join(Path(p).name for p in doc['plots'])}); "
                  f"results: {Path(doc['out']) / 'tolerance.json'}")


def noise_table(doc: dict) -> Table:
    n = doc["seeds"]
    t = Table(title=f"noise floor — {n} runs that differ only in the seed", title_justify="left",
              header_style="bold")
    t.add_column("operand")
    t.add_column("mean ± sd", justify="right")
    t.add_column("resolution", justify="right")
    src = doc.get("noise_sources") or {}
    for s in src:
        t.add_column(f"sd, {s} only", justify="right")
    for k, s in doc["noise"].items():
        if k not in SHOWN and k != doc["merit"] and not (s.get("mean") or s.get("sd")):
            continue          # an aberration code no run shows
        t.add_row(k, _pm(s), _v(doc["resolution"].get(k), 3),
                  *[_v(src[x].get(k, {}).get("sd"), 2) for x in src])
    return t


def sensitivity_table(doc: dict) -> Table:
    m = doc["merit"]
    t = Table(title=f"sensitivity of {m} — each row over the same {doc['seeds']} seeds, worst first",
              title_justify="left", header_style="bold")
    for name, just in (("operand", "left"), ("change", "left"), (f"{m} mean ± sd", "right"),
                       (f"Δ {m}", "right"), ("Δ / noise", "right"), ("verdict", "left"), ("why", "left")):
        t.add_column(name, justify=just)
    for r in doc["sensitivity"]:
        plain = r["value"] is None or r["operand"] in ("train.precision", "init.sigma_w2", "hidden.width")
        t.add_row(r["operand"], r["perturbation"] + ("" if plain else f" ({_v(r['value'])})"),
                  _pm(r["merit"]), _v(r["merit_delta"], 3), _v(r["sigmas"], 3),
                  f"[{VERDICT_STYLE[r['verdict']]}]{r['verdict'].replace('_', ' ')}[/]", r["reason"])
    return t


def instability_line(inst: dict) -> str:
    if inst.get("failed"):
        return f"instability: not measured ({inst['failed']})"
    d = inst.get("doubling_steps")
    grow = f"doubling every {d:.0f} steps" if d else "not growing"
    word = "[bold red]unstable[/]" if inst["unstable"] else "[green]stable[/]"
    return (f"instability (1-ulp twin): relative parameter distance {_v(inst['relative_distance'], 3)} at "
            f"the end, {grow}; predictions differ on {inst['disagreement']:.1%} of the validation set "
            f"(a re-seeded run: {inst['seed_disagreement']:.1%}) → {word}")


# -- compare --------------------------------------------------------------------------------------
def print_compare(con, doc: dict) -> None:
    names = [d["name"] for d in doc["designs"]]
    t = Table(title=f"compare at {doc['seeds']} seeds — verdicts of each design against {names[0]}",
              title_justify="left", header_style="bold")
    t.add_column("metric")
    for d in doc["designs"]:
        t.add_column(d["name"], justify="right")
    for n in names[1:]:
        t.add_column(f"{n} vs {names[0]}")
    metrics = list(doc["designs"][0]["metrics"])
    by = {(v["metric"], v["b"]): v for v in doc["verdicts"]}
    for k in metrics:
        cells = []
        for n in names[1:]:
            v = by.get((k, n))
            if v is None:
                cells.append("—")
                continue
            style = VERDICT_STYLE[v["verdict"]]
            cells.append(f"[{style}]{v['verdict']}[/] ({_v(v['sigmas'], 3)} σ)")
        t.add_row(k, *[_pm(d["metrics"].get(k)) for d in doc["designs"]], *cells)
    con.print(t)
    for d in doc["designs"]:
        ab = ", ".join(f"{c} {s['mean']:.2g}" for c, s in d["aberrations"].items())
        extra = [f"aberrations (mean severity): {ab}" if ab else "no aberration in any run"]
        if d["diverged"]:
            extra.append(f"{d['diverged']} run(s) diverged")
        con.print(f"{d['name']} ({d['file']}): " + "; ".join(extra), soft_wrap=True)
    con.print(f"[dim]rule: {doc['rule']}; σ: the difference over the pooled sd, positive = better.[/]",
              soft_wrap=True)
