"""The terminal view of a diagnosis: the per-row table (a Seidel table for networks), the
network panel, and the findings — all read from the `diagnose` document only."""
from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Console
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from netlens.aberrations import CATALOG, ROW_CODES
from netlens.aberrations.base import fmt
from netlens.corrections.report import corrections_block
from netlens.report.layout import Col, Fitted, Layout, simple
from netlens.report.terminal import _label, num, short_source

STYLE = {"error": "bold red", "warn": "yellow", "info": "cyan", "ok": ""}
# How each per-row column is written: per-cent for fractions, short numbers for the rest.
CELL = {"DEAD": "{:.0%}", "SATR": "{:.0%}", "MEAN": "{:.0%}", "RANK": "{:.2f}", "COND": "{:.2g}",
        "STEP": "{:+.1f}", "PREC": "{:.0%}", "ENTR": "{:.2f}", "LOGT": "{:.3g}", "TRNK": "{:.2f}"}
HEAD = {"DEAD": "DEAD\n%", "SATR": "SATR\n%", "RANK": "RANK\nratio", "COND": "COND\nspread",
        "MEAN": "MEAN\n%", "STEP": "STEP\nlog10", "PREC": "PREC\n%", "ENTR": "ENTR\nratio",
        "LOGT": "LOGT\nq·k/√d", "TRNK": "TRNK\nratio"}


def _cell(text: str, severity: str | None) -> Text:
    return Text(text, style=STYLE.get(severity or "ok", ""))


def diagnosis_table(doc: dict[str, Any]) -> Fitted:
    step = doc["at"]["step"]
    extra = step != 0          # a column for the judged step besides step 0
    rows, s = doc["rows"], doc["sum"]
    title = f"{doc['design']} — aberrations per row at step {step}"
    groups: list[list[Col]] = [[Col("line", [short_source(r["source"]) for r in rows], justify="left")]]
    for what, key in (("GAIN", "gain_db"), ("FLOW", "flow_db")):
        low = what.lower()
        sevs = [r.get("severity", {}).get(what) for r in rows]
        group = [Col(f"{what}\nparax", [num(r["paraxial"][key]) for r in rows], _b(num(s["paraxial"][key]))),
                 Col(f"{low}\nstep 0", [num(r["measured"]["init"][key]) for r in rows],
                     _b(num(s["measured"]["init"][key])))]
        if extra:
            group.append(Col(f"{low}\nstep {step}", [num(r["measured"]["at"][key]) for r in rows],
                             _b(num(s["measured"]["at"][key]))))
        total = "\nall units" if what == "FLOW" else ""
        group.append(Col(f"Σ {low}{total}\nstep {step}",
                         [_cell(num(r["cumulative"][key]), sv) for r, sv in zip(rows, sevs)]))
        groups.append(group)
    codes = [c for c in ROW_CODES if c not in ("GAIN", "FLOW")]
    codes = [c for c in codes if not CATALOG[c].optional_column
             or any(c in r.get("values", {}) for r in rows)]
    cols = []
    for code in codes:
        cells = []
        for r in rows:
            v = r.get("values", {}).get(code)
            cells.append(_cell(num(v, CELL.get(code, "{:.3g}")) if v is not None else "·",
                               r.get("severity", {}).get(code)))
        e = s.get("values", {}).get(code)
        total = _cell(num(e["value"], CELL.get(code, "{:.3g}")), e["severity"]) if e else ""
        cols.append(Col(HEAD.get(code, code), cells, total))
    groups += [cols[i:i + 2] for i in range(0, len(cols), 2)]
    layout = Layout(title, key=[Col("#", [str(r["index"]) for r in rows]),
                                Col("element", [_label(r) for r in rows], Text("SUM", style="bold"),
                                    justify="left", wrap=True)],
                    groups=groups, table=simple())
    return Fitted(layout)


def _b(text: str) -> Text:
    return Text(text, style="bold")


def network_panel(doc: dict[str, Any]) -> Table:
    t = Table(title="network", title_justify="left", header_style="bold", box=box.SIMPLE_HEAD,
              pad_edge=False, padding=(0, 1))
    for col, just in (("code", "left"), ("aberration", "left"), ("value", "right"),
                      ("warn / error", "left"), ("verdict", "left"), ("measured", "left")):
        t.add_column(col, justify=just)
    for code, ab in CATALOG.items():
        if ab.scope != "network":
            continue
        e = doc["network"].get(code)
        lim = doc["thresholds"].get(code, {})
        levels = f"{level_text(lim, 'warn')} / {level_text(lim, 'error')}"
        if e is None:
            t.add_row(code, ab.name, "—", levels, Text("not measured", style="dim"), _why_missing(code, doc))
            continue
        sev = e["severity"]
        verdict = {"ok": "ok", "info": "info (not judged)"}.get(sev, sev)
        t.add_row(code, e["name"], fmt(e["value"], e["unit"]), levels, _cell(verdict, sev), e["detail"])
    return t


def level_text(lim: dict[str, Any], which: str) -> str:
    """A limit as the tables show it: `>0.1`, `<0.25`, `±20`, `[0.5, 2]`, `—` for none."""
    v = lim.get(which)
    if v is None:
        return "—"
    sign = {"above": ">", "below": "<", "beyond": "±", "outside": ""}.get(lim.get("sense"), "")
    if isinstance(v, list):
        return f"[{v[0]:g}, {v[1]:g}]"
    return f"{sign}{v:g}"


def _why_missing(code: str, doc: dict[str, Any]) -> str:
    return {
        "SHRP": "no Hessian estimate (probe.hessian off)",
        "DIVG": "",
        "INIT": "no chance level for this loss",
        "STAL": "not judged at step 0",
        "GAP": "no validation split",
        "NOIS": "needs a probe batch larger than the training batch",
    }.get(code, "")


def findings_block(doc: dict[str, Any], console: Console, explain: bool = True) -> None:
    findings = doc["findings"]
    if not findings:
        console.print(Text("no findings: nothing crossed a threshold.", style="green"))
        return
    counts = doc["summary"]["counts"]
    console.print(Text(f"findings — {counts['error']} error, {counts['warn']} warn, "
                       f"{counts['info']} info (most severe first)", style="bold"))
    explained: set[tuple] = set()
    patches_shown: set[tuple] = set()
    for n, f in enumerate(findings, 1):
        head = Text(f"{n}. ")
        head.append(f"{f['severity'].upper():5}", style=STYLE[f["severity"]])
        head.append(f" {f['code']} {f['name']}", style="bold")
        console.print(head)
        console.print(Padding(Text(f["message"]), (0, 0, 0, 3)))
        if explain and (f["code"], f["kind"]) not in explained:
            console.print(Padding(Text(f["explanation"], style="dim"), (0, 0, 0, 3)))
            explained.add((f["code"], f["kind"]))
        # The corrections as prescription diffs, most direct first (netlens.corrections).
        corrections_block(console, f, patches_shown)


def print_diagnosis(console: Console, doc: dict[str, Any], explain: bool = True) -> None:
    tr = doc["train"]
    console.print(diagnosis_table(doc))
    q0 = doc.get("input", {}).get("q")
    at_q0 = (f" at the measured input power q₀ = {q0:.3g}, which `netlens paraxial` takes as 1 "
             "for standardized data" if q0 is not None else "")
    console.print(Text("How to read it: gain/flow are each row's own gain in dB per unit (parax = the "
                       f"closed-form prediction at init{at_q0}, beside the step-0 measurement); "
                       "Σ gain is the signal power at the row relative to the input, Σ flow (all "
                       "units) the gradient power reaching the row from the loss, summed over the "
                       "row's units. GAIN and FLOW are judged on Σ, COND on its SUM. Yellow = warn, "
                       "red = error, cyan = info: each cell coloured by its row's verdict over the "
                       "judging window (see the note below); · = does not apply.", style="dim"))
    console.print(network_panel(doc))
    findings_block(doc, console, explain)
    for note in doc.get("notes", []):
        console.print(Text("note: " + note, style="dim"))
    console.print(f"trained {tr['steps_done']}/{tr['steps']} steps ({tr['optimizer']}, lr {tr['lr']:g}, "
                  f"batch {tr['batch']}); run folder: {doc['run_dir']}")
