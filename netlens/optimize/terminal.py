"""The study for people: a live progress line while it runs, then tables read from the summary
document only (so the tables and `--json` agree)."""
from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text


def _v(x: Any) -> str:
    if x is None:
        return "—"
    if isinstance(x, list):
        return ", ".join(_v(v) for v in x)
    if isinstance(x, float):
        return f"{x:.4g}"
    return str(x)


class LiveProgress:
    """trials done / requested, best merit so far, pruned and failed counts, running now."""

    def __init__(self, console, requested: int, label: str):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(bar_width=12), MofNCompleteColumn(),
            TextColumn("best {task.fields[best]} · {task.fields[pruned]} pruned · "
                       "{task.fields[failed]} failed · {task.fields[running]} running"),
            TimeElapsedColumn(), console=console, transient=True)
        self.task = self.progress.add_task(label, total=requested, best="—", pruned=0, failed=0, running=0)

    def __enter__(self):
        self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        return self.progress.__exit__(*exc)

    def update(self, c: dict) -> None:
        best = "—" if c["best"] is None else f"{c['best']:.4g} #{c['best_trial']}"
        if c.get("front") is not None:
            best = f"{c['front']} on the Pareto front"
        self.progress.update(self.task, completed=min(c["done"], c["requested"]), best=best,
                             pruned=c["pruned"], failed=c["failed"], running=c["running"])


def _where(storage: str) -> str:
    """A SQLite study as a path relative to here when it is below here; other URLs as given."""
    import os

    if storage.startswith("sqlite:///"):
        path = storage[len("sqlite:///"):]
        rel = os.path.relpath(path)
        return rel if not rel.startswith("..") else path
    return storage


def headline(doc: dict) -> list[str]:
    t = doc["trials"]
    finished = t["complete"] + t["pruned"]
    by = ", ".join(f"{k} {v}" for k, v in sorted(doc["pruned_by"].items(), key=lambda kv: -kv[1]))
    lines = [f"study [bold]{doc['study']}[/] in {_where(doc['storage'])}",
             f"{finished} of {t['requested']} trials finished: {t['complete']} complete, "
             f"{t['pruned']} pruned" + (f" ({by})" if by else "") + f", {t['failed']} failed"
             + (f", {t['running']} running elsewhere" if t["running"] else "")]
    s = doc["steps"]
    if s["planned"]:
        lines.append(f"training steps: {s['spent']:,} of the {s['planned']:,} these trials would "
                     f"take unpruned ({s['saved']:.0%} saved)")
    run = doc.get("this_run") or {}
    if run.get("trials") is not None:
        lines.append(f"this run: {len(run['trials'])} trials on {run.get('workers', 0)} worker(s) in "
                     f"{run.get('seconds', 0):.1f} s")
    merit = " | ".join(doc["objectives"])
    start, best = doc["start"]["value"], doc["best"]
    if best is not None:
        change = ""
        if isinstance(start, float) and isinstance(best["value"], float) and start:
            change = f", {100 * (best['value'] - start) / abs(start):+.0f}%"
        lines.append(f"merit [bold]{merit}[/]: {_v(start)} as written → [bold]{_v(best['value'])}[/] "
                     f"at trial #{best['trial']}{change}")
    else:
        lines.append(f"merit [bold]{merit}[/]: no complete feasible trial yet")
    if doc["constraints"]:
        lines.append("constraints: " + "; ".join(doc["constraints"]))
    return lines


def top_table(doc: dict) -> Table:
    multi = len(doc["objectives"]) > 1
    title = "the Pareto front" if multi else "the best trials"
    t = Table(title=f"{title} — {doc['study']}", title_justify="left", header_style="bold")
    t.add_column("trial", justify="right")
    for name in doc["objectives"]:
        t.add_column(name if not multi else name, justify="right")
    terms = [] if multi else [k for k in ((doc["top"] or [{}])[0].get("contributions") or [{}])[0]]
    if len(terms) > 1:
        for k in terms:
            t.add_column(f"⟵ {k}", justify="right")
    paths = list(doc["variables"])
    for p in paths:
        t.add_column(p, justify="right")
    t.add_column("steps", justify="right")
    t.add_column("note")
    rows = list(doc["pareto"] if multi else doc["top"])
    start_no = doc["start"]["trial"]
    for r in rows:
        _add(t, r, doc, terms, paths, multi)
    if start_no is not None and all(r["trial"] != start_no for r in rows):
        t.add_section()
        start = _start_row(doc)
        if start is not None:
            _add(t, start, doc, terms, paths, multi)
    return t


def _start_row(doc: dict) -> dict | None:
    return doc["start"] if doc["start"].get("trial") is not None else None


def _add(t: Table, r: dict, doc: dict, terms: list[str], paths: list[str], multi: bool) -> None:
    vals = r["value"] if isinstance(r["value"], list) else [r["value"]]
    contrib = (r.get("contributions") or [{}])[0] if not multi else {}
    note = []
    if r.get("start"):
        note.append("as written")
    if not r.get("feasible", True):
        note.append("infeasible")
    t.add_row(f"#{r['trial']}", *[_v(v) for v in vals],
              *([_v(contrib.get(k)) for k in terms] if len(terms) > 1 else []),
              *[_v(r["labels"].get(p)) for p in paths], _v(r.get("steps")), ", ".join(note))


def importance_table(doc: dict) -> Table | None:
    imp = doc["importances"]
    if not imp:
        return None
    t = Table(title="parameter importances (fANOVA)", title_justify="left", header_style="bold")
    t.add_column("variable cell")
    t.add_column("share", justify="right")
    t.add_column("")
    for k, v in imp.items():
        t.add_row(k, f"{v:.0%}", Text("█" * max(0, round(v * 30)), style="cyan"))
    return t


def print_summary(con, doc: dict) -> None:
    for line in headline(doc):
        con.print(line)
    if doc["top"]:
        con.print(top_table(doc))
    imp = importance_table(doc)
    if imp is not None:
        con.print(imp)
    con.print(doc["importance_note"], soft_wrap=True)
    if doc["best_design"]:
        con.print(f"best prescription: {doc['best_design']}  (variable cells kept, `start:` = best)")
    if doc["plots"]:
        from pathlib import Path

        con.print(f"plots: {Path(doc['plots'][0]).parent}/ ({', '.join(Path(p).name for p in doc['plots'])})")
    errors = (doc.get("this_run") or {}).get("errors") or []
    for e in errors:
        con.print(f"[bold red]worker error:[/] {e}", soft_wrap=True)
