"""`netlens report`: one self-contained HTML page for a run folder, an optimize study folder or a
tolerance folder.

Every plot is drawn with matplotlib into PNG bytes and inlined as a base64 `data:` URI; the
styles are inline too, so the page needs no network and reads the same offline or as a mail
attachment. Like the terminal views, the page is built from the JSON-shaped documents only
(the diagnosis document for a run, `study.json`/`trials.csv` for a study, `tolerance.json` for
a tolerance result): what the page says and what `--json` says agree.

    from netlens.report.html import write_report
    path = write_report("runs/quickstart")          # runs/quickstart/report.html
"""
from __future__ import annotations

import base64
import csv
import io
import json
import math
from html import escape
from pathlib import Path
from typing import Any, Callable

from netlens.errors import DesignError, RunError
from netlens.report.diagnosis_view import level_text

KINDS = ("run", "study", "tolerance")
SEV_ORDER = {"error": 3, "warn": 2, "info": 1, "ok": 0}

CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:1.5em auto;max-width:1200px;
 padding:0 1em;color:#222;line-height:1.4}
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}
th,td{border:1px solid #ddd;padding:.2em .5em;text-align:right;white-space:nowrap}
th{background:#f3f3f3}td.l,th.l{text-align:left}
tr.sum td{font-weight:bold;border-top:2px solid #888}
td.sev-error{background:#f8c9c7;color:#8b0000;font-weight:bold}td.sev-warn{background:#ffe7a8}
td.sev-info{background:#d6e9fb}td.na{color:#aaa;text-align:center}
.badge{display:inline-block;padding:0 .45em;border-radius:3px;font-size:.8em;font-weight:bold;color:#fff}
.badge.error{background:#c62828}.badge.warn{background:#e69500}.badge.info{background:#1976d2}
.badge.ok{background:#388e3c}
.finding{border-left:5px solid #999;padding:.3em .8em;margin:.8em 0;background:#fafafa}
.finding.error{border-color:#c62828}.finding.warn{border-color:#e69500}.finding.info{border-color:#1976d2}
.finding p.expl{color:#555;font-size:.92em}
pre{background:#f6f8fa;padding:.6em;overflow-x:auto;font-size:.8em}
pre.diff span.add{color:#22863a}pre.diff span.del{color:#b31d28}pre.diff span.hunk{color:#6f42c1}
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #eee}
figcaption{font-size:.85em;color:#555}
.meta{color:#555}.note{color:#666;font-size:.9em}
.legend span{margin-right:1em}
"""


# -- entry points ---------------------------------------------------------------------------------
def kind_of(target: Path) -> str:
    """`run` (records.json + design.yaml), `tolerance` (tolerance.json) or `study`
    (study.json or trials.csv, as `netlens optimize` writes them)."""
    target = Path(target)
    if not target.exists():
        raise DesignError(f"`{target}` does not exist", found=str(target),
                          expected="a run folder, an optimize study folder or a tolerance folder",
                          suggestion="Pass the folder `netlens simulate`, `optimize` or `tolerance` "
                                     "wrote, e.g. `netlens report runs/quickstart`.")
    if not target.is_dir():
        raise DesignError(f"`{target}` is a file; `netlens report` reads a folder", found=str(target),
                          expected="a run folder (records.json), a study folder (study.json or "
                                   "trials.csv) or a tolerance folder (tolerance.json)",
                          suggestion="Simulate a design first: `netlens simulate DESIGN`, then "
                                     "`netlens report runs/NAME`.")
    if (target / "records.json").is_file() and (target / "design.yaml").is_file():
        return "run"
    if (target / "tolerance.json").is_file():
        return "tolerance"
    if (target / "study.json").is_file() or (target / "trials.csv").is_file():
        return "study"
    raise DesignError(f"`{target}` holds no netlens results", found=str(target),
                      expected="records.json and design.yaml (a run), study.json or trials.csv "
                               "(an optimize study), or tolerance.json (a tolerance result)",
                      suggestion="Pass a folder written by `netlens simulate`, `netlens optimize` "
                                 "(runs/NAME-optimize) or `netlens tolerance`.")


def build_report(target: str | Path) -> tuple[str, str, dict[str, Any]]:
    """(kind, html, summary) for a folder; nothing is written."""
    target = Path(target)
    kind = kind_of(target)
    page = {"run": _run_page, "study": _study_page, "tolerance": _tolerance_page}[kind](target)
    return kind, page.html(), page.summary


def write_report(target: str | Path, html_path: str | Path | None = None) -> tuple[Path, dict[str, Any]]:
    """Write the page (default FOLDER/report.html); returns (path, summary)."""
    from netlens.report.files import write_text

    target = Path(target)
    kind, text, summary = build_report(target)
    path = Path(html_path) if html_path is not None else target / "report.html"
    write_text(path, text)
    return path, {"netlens": 1, "kind": kind, "source": str(target), "html": str(path),
                  "bytes": len(text.encode()), **summary}


# -- the page --------------------------------------------------------------------------------------
class Page:
    def __init__(self, title: str):
        self.title = title
        self.parts: list[str] = []
        self.summary: dict[str, Any] = {"sections": [], "images": 0}

    def section(self, title: str, anchor: str) -> None:
        self.summary["sections"].append(anchor)
        self.parts.append(f'<h2 id="{anchor}">{escape(title)}</h2>')

    def add(self, html: str) -> None:
        self.parts.append(html)

    def p(self, text: str, cls: str | None = None) -> None:
        self.parts.append(f'<p{f" class={chr(34)}{cls}{chr(34)}" if cls else ""}>{escape(text)}</p>')

    def figure(self, png: bytes | None, caption: str, alt: str) -> None:
        if not png:
            return
        self.summary["images"] += 1
        data = base64.b64encode(png).decode("ascii")
        self.parts.append(f'<figure><img alt="{escape(alt)}" src="data:image/png;base64,{data}">'
                          f"<figcaption>{escape(caption)}</figcaption></figure>")

    def html(self) -> str:
        body = "\n".join(self.parts)
        return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                f"<title>{escape(self.title)}</title><style>{CSS}</style></head>\n"
                f"<body>\n{body}\n<hr><p class=\"note\">Written by <code>netlens report</code>; "
                "self-contained: every plot is inline, nothing is fetched.</p>\n</body></html>\n")


def table(head: list[str], rows: list[list[Any]], left: int = 1, sum_row: list[Any] | None = None) -> str:
    """An HTML table; a cell is text or (text, css class). The first `left` columns align left."""
    def cell(tag: str, c: Any, j: int) -> str:
        text, cls = c if isinstance(c, tuple) else (c, "")
        cls = " ".join(x for x in (cls, "l" if j < left else "") if x)
        return f'<{tag}{f" class={chr(34)}{cls}{chr(34)}" if cls else ""}>{escape(str(text))}</{tag}>'

    out = ["<table><thead><tr>" + "".join(cell("th", h, j) for j, h in enumerate(head)) + "</tr></thead><tbody>"]
    for r in rows:
        out.append("<tr>" + "".join(cell("td", c, j) for j, c in enumerate(r)) + "</tr>")
    if sum_row is not None:
        out.append('<tr class="sum">' + "".join(cell("td", c, j) for j, c in enumerate(sum_row)) + "</tr>")
    return "\n".join(out) + "</tbody></table>"


def num(x: Any, fmt: str = "{:+.1f}") -> str:
    if x is None:
        return "—"
    if isinstance(x, float) and math.isinf(x):
        return "−∞" if x < 0 else "+∞"
    if isinstance(x, float) and math.isnan(x):
        return "—"
    if isinstance(x, (int, float)):
        return fmt.format(x)
    return str(x)


def badge(sev: str) -> str:
    return f'<span class="badge {escape(sev)}">{escape(sev.upper())}</span>'


def diff_html(diff: str) -> str:
    lines = []
    for line in diff.splitlines():
        cls = ("" if line.startswith(("---", "+++")) else "add" if line.startswith("+")
               else "del" if line.startswith("-") else "hunk" if line.startswith("@@") else "")
        lines.append(f'<span class="{cls}">{escape(line)}</span>' if cls else escape(line))
    return '<pre class="diff">' + "\n".join(lines) + "</pre>"


def png_of(draw: Callable[[Any], None]) -> bytes | None:
    """Run a plot function that saves to a file-like object; its PNG bytes (None on failure)."""
    buf = io.BytesIO()
    draw(buf)
    data = buf.getvalue()
    return data if data.startswith(b"\x89PNG") else None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise RunError(f"cannot read `{path}`: {e}") from None


# -- a run -----------------------------------------------------------------------------------------
def _run_doc(run_dir: Path):
    from netlens.aberrations import judge
    from netlens.corrections.findings import attach
    from netlens.diagnose import _limits, load_run
    from netlens.report.diagnosis import diagnose_doc

    design, tr, records = load_run(run_dir)
    saved = run_dir / "diagnosis.json"
    doc = None
    fresh = saved.is_file() and saved.stat().st_mtime >= (run_dir / "records.json").stat().st_mtime
    if fresh:                        # what `diagnose` printed (it may have judged another step)
        try:
            doc = json.loads(saved.read_text())
        except ValueError:
            doc = None
        if doc is not None and not all(k in doc for k in ("rows", "at", "network", "findings")):
            doc = None
    if doc is None:
        limits = _limits(design, None)
        dx = judge(records, tr, "end", limits)
        doc = diagnose_doc(design, tr, records, str(run_dir), dx)
        attach(doc, design, records, dx.limits)
    return design, tr, records, doc


def _run_page(run_dir: Path) -> Page:
    from netlens.report import plots
    from netlens.report.diagnosis_plot import aberration_diagram

    design, tr, records, doc = _run_doc(run_dir)
    page = Page(f"netlens — {doc['design']}")
    t = doc["train"]
    page.add(f"<h1>{escape(doc['design'])} <small class=\"meta\">run report</small></h1>")
    if design.about:
        page.p(design.about, "meta")
    page.p(f"run folder {run_dir}; trained {t['steps_done']}/{t['steps']} steps on {t['device']} "
           f"({t['optimizer']}, lr {t['lr']:g}, batch {t['batch']}, {t['loss']}, {t['precision']})"
           + (" — interrupted" if t.get("interrupted") else ""), "meta")
    m0, m1 = doc["initial"], doc["metrics"]
    page.add(table(["", "step", "train loss", "val loss", "train accuracy", "val accuracy"],
                   [[label, m["step"], num(m["train_loss"], "{:.4g}"), num(m["val_loss"], "{:.4g}"),
                     num(m["train_accuracy"], "{:.3f}"), num(m["val_accuracy"], "{:.3f}")]
                    for label, m in (("start", m0), ("end", m1))]))
    if doc.get("divergence"):
        d = doc["divergence"]
        page.add(f"<p>{badge('error')} diverged at step {d['step']} "
                 f"({escape(str(d.get('quantity')))}, row {escape(str(d.get('row')))})</p>")

    counts = doc["summary"]["counts"]
    page.summary.update(findings=len(doc["findings"]), counts=counts, worst=doc["summary"]["worst"],
                        design=doc["design"])
    page.add(f"<p>verdict: {badge(doc['summary']['worst'])} — {counts['error']} error, "
             f"{counts['warn']} warn, {counts['info']} info finding(s). "
             "<a href=\"#findings\">findings</a> · <a href=\"#plots\">plots</a></p>")

    _prescription_section(page, doc)
    _aberration_section(page, doc)
    _findings_section(page, doc)

    page.section("Plots", "plots")
    page.figure(png_of(lambda f: plots.loss_curves(records, f)),
                "Loss curves: the batch loss at every step, the train and validation loss at every "
                "probe; the dotted line is the chance level (what guessing scores).", "loss curves")
    page.figure(png_of(lambda f: plots.gain_profile(records, tr, [r.index for r in design.top_rows()], f)),
                "Per-row gain profile: cumulative signal power from the input and gradient power "
                "from the loss, in dB, paraxial prediction beside the measurement at step 0 and at "
                "the end.", "gain profiles")
    page.figure(png_of(lambda f: aberration_diagram(doc, f)),
                "The aberration diagram: each row's forward and backward gain at the judged step "
                "(SUM hatched), and a marker per row and aberration coloured by severity.",
                "aberration diagram")
    others = sorted(p for p in run_dir.glob("*.png") if p.name not in ("loss.png", "gains.png", "aberrations.png"))
    for p in others:
        page.figure(p.read_bytes(), f"{p.name} (from the run folder)", p.stem)

    page.section("Prescription as run", "design")
    yaml_text = (run_dir / "design.yaml").read_text()
    page.add(f"<details><summary>design.yaml ({len(yaml_text.splitlines())} lines)</summary>"
             f"<pre>{escape(yaml_text)}</pre></details>")
    if doc.get("notes"):
        page.section("Notes", "notes")
        for note in doc["notes"]:
            page.p(note, "note")
    return page


def _prescription_section(page: Page, doc: dict) -> None:
    page.section("Prescription: paraxial prediction beside measurement", "prescription")
    page.p("Per-row gain in dB: forward (signal power out over in) and backward (gradient power in "
           "over out). The paraxial column is the closed-form prediction at initialization; step 0 "
           "and the end are measured on the probe batch.", "note")
    rows = []
    for r in doc["rows"]:
        p, i, e = r["paraxial"], r["measured"]["init"], r["measured"]["end"]
        rows.append([r["index"], ("  " * r.get("depth", 0)) + r["label"], r["source"], f"{r['params']:,}",
                     num(p["gain_db"]), num(i["gain_db"]), num(e["gain_db"]),
                     num(p["flow_db"]), num(i["flow_db"]), num(e["flow_db"])])
    s = doc["sum"]
    page.add(table(["#", "element", "source", "params", "gain paraxial", "gain step 0", "gain end",
                    "flow paraxial", "flow step 0", "flow end"], rows, left=3,
                   sum_row=["", "SUM", "", f"{sum(r['params'] for r in doc['rows'] if r.get('depth', 0) == 0):,}",
                            num(s["paraxial"]["gain_db"]), num(s["measured"]["init"]["gain_db"]),
                            num(s["measured"]["end"]["gain_db"]), num(s["paraxial"]["flow_db"]),
                            num(s["measured"]["init"]["flow_db"]), num(s["measured"]["end"]["flow_db"])]))


CELL = {"DEAD": "{:.0%}", "SATR": "{:.0%}", "MEAN": "{:.0%}", "RANK": "{:.2f}", "COND": "{:.2g}",
        "STEP": "{:+.1f}"}


def _aberration_section(page: Page, doc: dict) -> None:
    from netlens.aberrations import CATALOG, ROW_CODES

    step = doc["at"]["step"]
    page.section(f"Aberrations per row at step {step}", "aberrations")
    page.add('<p class="legend note">cells: <span class="badge warn">WARN</span> '
             '<span class="badge error">ERROR</span> <span class="badge info">INFO</span>; '
             '· does not apply. GAIN and FLOW are judged on the cumulative Σ columns, COND on '
             'its SUM.</p>')
    codes = [c for c in ROW_CODES if c not in ("GAIN", "FLOW")]
    rows = []
    for r in doc["rows"]:
        sev, val = r.get("severity", {}), r.get("values", {})
        cum = r.get("cumulative", {})
        cells: list[Any] = [r["index"], r["label"]]
        for code, key in (("GAIN", "gain_db"), ("FLOW", "flow_db")):
            cells.append((num(r["measured"].get("at", r["measured"]["end"])[key]), ""))
            cells.append((num(cum.get(key)), f"sev-{sev[code]}" if sev.get(code, "ok") != "ok" else ""))
        for code in codes:
            v = val.get(code)
            if v is None:
                cells.append(("·", "na"))
            else:
                s = sev.get(code, "ok")
                cells.append((num(v, CELL.get(code, "{:.3g}")), f"sev-{s}" if s != "ok" else ""))
        rows.append(cells)
    sums = doc["sum"].get("values", {})
    sum_row: list[Any] = ["", "SUM"]
    for key in ("gain_db", "flow_db"):
        sum_row += [num(doc["sum"]["measured"].get("at", doc["sum"]["measured"]["end"])[key]), ""]
    for code in codes:
        e = sums.get(code)
        sum_row.append((num(e["value"], CELL.get(code, "{:.3g}")),
                        f"sev-{e['severity']}" if e["severity"] != "ok" else "") if e else "")
    page.add(table(["#", "element", f"gain step {step}", "Σ gain", f"flow step {step}", "Σ flow", *codes],
                   rows, left=2, sum_row=sum_row))

    page.add("<h3>network</h3>")
    net = []
    for code, ab in CATALOG.items():
        if ab.scope != "network":
            continue
        e = doc["network"].get(code)
        lim = doc.get("thresholds", {}).get(code, {})
        levels = f"{level_text(lim, 'warn')} / {level_text(lim, 'error')}"
        if e is None:
            net.append([code, ab.name, "—", levels, ("not measured", "na"), ""])
            continue
        sev = e["severity"]
        value = e["value"]
        shown = f"{value:.3g}{e.get('unit') or ''}" if isinstance(value, (int, float)) else str(value)
        net.append([code, e["name"], shown, levels,
                    ({"info": "info (not judged)"}.get(sev, sev), f"sev-{sev}" if sev != "ok" else ""),
                    (e.get("detail") or "", "l")])
    page.add(table(["code", "aberration", "value", "warn / error", "verdict", "measured"], net, left=2))


def _findings_section(page: Page, doc: dict) -> None:
    from netlens.corrections.report import prediction_lines

    findings = doc["findings"]
    page.section(f"Findings ({len(findings)})", "findings")
    if not findings:
        page.p("No findings: nothing crossed a threshold.")
        return
    at = doc["at"]["step"]
    shown: set = set()
    for n, f in enumerate(findings, 1):
        sev = f["severity"]
        parts = [f'<div class="finding {escape(sev)}" data-code="{escape(f["code"])}">',
                 f"<h3>{n}. {badge(sev)} {escape(f['code'])} — {escape(f['name'])}</h3>",
                 f"<p>{escape(f['message'])}</p>"]
        if f.get("step") is not None and f["step"] != at:
            parts.append(f'<p class="note">judged at step {f["step"]}, not at the step {at} the '
                         "tables show.</p>")
        if f.get("explanation"):
            parts.append(f'<p class="expl">{escape(f["explanation"])}</p>')
        corrections = [c for c in f.get("corrections") or [] if isinstance(c, dict)]
        info = f.get("correction_info") or {}
        if corrections:
            parts.append("<p>corrections, most direct first: "
                         + ", ".join(f"<code>{escape(c['name'])}</code>" for c in corrections) + "</p>")
            first = corrections[0]
            about = info.get(first["name"], {})
            if about:
                parts.append(f"<p>→ <b>{escape(first['name'])}</b> — {escape(about.get('did', ''))} "
                             f"({escape(about.get('citation', ''))})</p>")
            for line in prediction_lines(about):
                parts.append(f'<p class="note">{escape(line)}</p>')
            if first.get("patch"):
                key = (first["name"], first["patch"])
                if key in shown:
                    parts.append('<p class="note">(the same prescription diff as above)</p>')
                else:
                    shown.add(key)
                    parts.append(diff_html(first["patch"]))
        elif f.get("not_applicable"):
            parts.append('<p class="note">no correction applies here: ' + escape("; ".join(
                f"{k}: {v}" for k, v in list(f["not_applicable"].items())[:3])) + "</p>")
        parts.append("</div>")
        page.add("\n".join(parts))


# -- an optimize study -----------------------------------------------------------------------------
def _trials_from_csv(path: Path) -> list[dict[str, str]]:
    try:
        with path.open(newline="") as fh:
            return list(csv.DictReader(fh))
    except (OSError, csv.Error) as e:
        raise RunError(f"cannot read `{path}`: {e}") from None


def _study_page(folder: Path) -> Page:
    doc = _read_json(folder / "study.json") if (folder / "study.json").is_file() else None
    trials = _trials_from_csv(folder / "trials.csv") if (folder / "trials.csv").is_file() else []
    name = (doc or {}).get("study") or folder.name.removesuffix("-optimize")
    page = Page(f"netlens — study {name}")
    page.add(f"<h1>{escape(name)} <small class=\"meta\">optimize study</small></h1>")
    page.summary.update(study=name, trials=len(trials))
    if doc:
        n = doc["trials"]
        page.p(f"design {doc.get('design')}; storage {doc.get('storage')}; objective(s) "
               f"{', '.join(doc.get('objectives', []))}"
               + (f"; constraints {', '.join(doc['constraints'])}" if doc.get("constraints") else ""), "meta")
        page.p(f"{n['complete']} complete, {n['pruned']} pruned, {n['failed']} failed of "
               f"{n['requested']} requested; training steps {doc['steps']['spent']:,} of "
               f"{doc['steps']['planned']:,} unpruned ({doc['steps']['saved']:.0%} saved)")
        best, start = doc.get("best"), doc.get("start") or {}
        if best and start.get("value") is not None and isinstance(best["value"], (int, float)):
            change = (best["value"] - start["value"]) / abs(start["value"]) if start["value"] else math.nan
            page.p(f"merit {doc['objectives'][0]}: {start['value']:.4g} as written (trial "
                   f"#{start['trial']}) → {best['value']:.4g} at trial #{best['trial']} ({change:+.0%})")
        page.section("Best trials", "best")
        paths = list(doc.get("variables", {}))
        rows = []
        for t in (doc.get("pareto") or doc.get("top") or []):
            v = t["value"]
            rows.append([f"#{t['trial']}", ", ".join(num(x, "{:.4g}") for x in v) if isinstance(v, list)
                         else num(v, "{:.4g}"), *[_param(t["params"].get(p)) for p in paths],
                         t.get("steps") or "", "as written" if t.get("start") else ""])
        page.add(table(["trial", " | ".join(doc.get("objectives", ["value"])), *paths, "steps", "note"], rows))
        if doc.get("importances"):
            page.section("Parameter importances", "importances")
            imp = doc["importances"]
            page.add(table(["variable cell", "share", ""],
                           [[k, f"{v:.0%}", ("█" * max(1, round(24 * v)), "l")] for k, v in imp.items()]))
            if doc.get("importance_note"):
                page.p(doc["importance_note"], "note")
        if doc.get("pruned_by"):
            page.p("pruned by: " + ", ".join(f"{k} {v}" for k, v in doc["pruned_by"].items()), "note")
    elif trials:
        page.p("This folder has trials.csv but no study.json (written by an older netlens); the "
               "table below is every trial as stored.", "note")
    if trials:
        page.section(f"Trials ({len(trials)})", "trials")
        head = list(trials[0])
        page.add(f"<details{' open' if not doc else ''}><summary>every trial (trials.csv)</summary>"
                 + table(head, [[t.get(h, "") for h in head] for t in trials]) + "</details>")
    page.section("Plots", "plots")
    captions = {"history.png": "Optimization history: the merit of every trial and the best so far.",
                "importances.png": "Which variable cells matter (fANOVA importances).",
                "slices.png": "The merit against each variable cell, one point per trial.",
                "pareto.png": "The Pareto front of the objectives."}
    pngs = sorted(folder.glob("*.png"), key=lambda p: (list(captions).index(p.name) if p.name in captions else 9, p.name))
    for p in pngs:
        page.figure(p.read_bytes(), captions.get(p.name, p.name), p.stem)
    if not pngs and trials:
        page.figure(png_of(lambda f: _history_plot(trials, name, f)),
                    "Optimization history from trials.csv.", "history")
    return page


def _param(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "—" if v is None else str(v)


def _history_plot(trials: list[dict[str, str]], name: str, f) -> None:
    from netlens.report.plots import _pyplot

    plt = _pyplot()
    merit = list(trials[0])[2]
    pts = [(int(t["trial"]), float(t[merit])) for t in trials if t.get("state") == "complete" and t.get(merit)]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    if pts:
        xs, ys = zip(*pts)
        best, run = [], math.inf
        for y in ys:
            run = min(run, y)
            best.append(run)
        ax.plot(xs, ys, "o", ms=4, label="complete trial")
        ax.plot(xs, best, "-", color="#d62728", label="best so far")
        ax.legend(fontsize=8)
    ax.set_xlabel("trial")
    ax.set_ylabel(merit)
    ax.set_title(f"{name}: {merit} by trial (lower is better)")
    fig.tight_layout()
    fig.savefig(f, dpi=110)
    plt.close(fig)


# -- a tolerance result ----------------------------------------------------------------------------
VERDICT_SEV = {"within_noise": "ok", "sensitive": "warn", "breaks": "error"}


def _tolerance_page(folder: Path) -> Page:
    doc = _read_json(folder / "tolerance.json")
    if not isinstance(doc, dict):
        raise RunError(f"`{folder / 'tolerance.json'}` is not a tolerance document (expected an object)")
    name = str(doc.get("name") or doc.get("design") or folder.name)
    merit = str(doc.get("merit") or "val_loss")
    page = Page(f"netlens — tolerance {name}")
    page.add(f"<h1>{escape(name)} <small class=\"meta\">tolerance</small></h1>")
    head = [f"tolerance folder {folder}", f"design {doc.get('design')}", f"merit {merit}"]
    if doc.get("seeds"):
        head.append(f"{doc['seeds']} seeds per group")
    if doc.get("spec"):
        head.append(f"spec {doc['spec']}")
    runs = doc.get("runs") or {}
    if runs.get("total") is not None:
        head.append(f"{runs['total']} training runs")
    page.p("; ".join(head), "meta")
    if doc.get("rule"):
        page.p("The rule: " + str(doc["rule"]), "note")
    sens = [s for s in doc.get("sensitivity") or [] if isinstance(s, dict)]
    page.summary.update(design=name, sensitivity=len(sens),
                        verdicts={v: sum(s.get("verdict") == v for s in sens) for v in VERDICT_SEV})
    pngs = {p.name: p for p in folder.glob("*.png")}

    noise = {k: v for k, v in (doc.get("noise") or {}).items() if isinstance(v, dict)}
    resolution = doc.get("resolution") or {}
    sources = {k: v for k, v in (doc.get("noise_sources") or {}).items() if isinstance(v, dict)}
    if noise:
        page.section("Noise floor", "noise")
        page.p("Runs that differ only in seed: each operand as mean ± sd over n runs. The "
               "resolution is the smallest difference of means beyond noise at n runs; a "
               "difference smaller than it is not a result.", "note")
        extra = [f"sd, {k} only" for k in sources]
        page.add(table(["operand", "mean", "sd", "n", "resolution", *extra],
                       [[op, num(v.get("mean"), "{:.4g}"), num(v.get("sd"), "{:.3g}"), v.get("n", "—"),
                         num(resolution.get(op), "{:.3g}"),
                         *[num((src.get(op) or {}).get("sd"), "{:.3g}") for src in sources.values()]]
                        for op, v in noise.items()]))
    if sens:
        page.section("Sensitivity", "sensitivity")
        page.p(f"One tolerance operand perturbed at a time, over the same seeds: Δ {merit} in its "
               "units and in units of the noise floor (σ), worst first.", "note")
        rows = []
        for s in sorted(sens, key=lambda s: -abs(s["sigmas"]) if _finite(s.get("sigmas")) else -math.inf):
            v = s.get("verdict") or "—"
            sev = VERDICT_SEV.get(v, "ok")
            m = s.get("merit") or {}
            delta = s.get("merit_delta", (s.get("delta") or {}).get(merit))
            change = str(s.get("perturbation", "—")) + (f" ({_param(s['value'])})" if "value" in s else "")
            rows.append([s.get("operand", "—"), change,
                         f"{num(m.get('mean'), '{:.4g}')} ± {num(m.get('sd'), '{:.2g}')}" if m else "—",
                         num(delta, "{:+.4g}"), num(s.get("sigmas"), "{:+.1f}"),
                         (v.replace("_", " "), f"sev-{sev}" if sev != "ok" else ""),
                         (s.get("reason") or "", "l")])
        page.add(table(["operand", "change", f"{merit} mean ± sd", f"Δ {merit}", "Δ / noise", "verdict", "why"],
                       rows, left=2))
        rss = doc.get("rss")
        if isinstance(rss, dict):
            page.p(f"RSS of the {rss.get('rows')} rows: Δ {merit} {num(rss.get('delta'), '{:.3g}')} "
                   f"({num(rss.get('sigmas'), '{:.3g}')} noise floors)", "note")
        elif rss is not None:
            page.p(f"RSS of all rows: {num(rss, '{:.3g}')}", "note")
        if "sensitivity.png" not in pngs:
            page.figure(png_of(lambda f: _tornado(sens, name, f)),
                        "Sensitivity tornado: each perturbation's effect on the merit in units of the "
                        "noise floor; inside the grey band (±2σ) it is within noise.", "sensitivity tornado")
        else:
            page.figure(pngs.pop("sensitivity.png").read_bytes(),
                        "Sensitivity tornado: each perturbation's effect on the merit in noise floors.",
                        "sensitivity tornado")
    inv = doc.get("inverse") or doc.get("inverse_sensitivity")
    if inv:
        page.section("Inverse sensitivity", "inverse")
        items = [i for i in (inv if isinstance(inv, list) else [inv]) if isinstance(i, dict)]
        page.add(table(["operand", "nominal", "spec", "holds from", "holds to", ""],
                       [[i.get("operand"), _param(i.get("nominal")), i.get("spec") or doc.get("spec") or "",
                         _param(i.get("low")), _param(i.get("high")), (i.get("text") or "", "l")] for i in items]))
    ins = doc.get("instability")
    if isinstance(ins, dict) and ins:
        page.section("Instability (1-ulp twin)", "instability")
        unstable = ins.get("unstable")
        page.add(table(["relative distance ‖θA−θB‖/‖θA−θ0‖", "doubling (steps)", "twin disagreement",
                        "seed disagreement", "verdict"],
                       [[num(ins.get("relative_distance"), "{:.3g}"), num(ins.get("doubling_steps"), "{:.3g}"),
                         num(ins.get("disagreement"), "{:.3g}"), num(ins.get("seed_disagreement"), "{:.3g}"),
                         ("unstable", "sev-error") if unstable else ("stable" if unstable is not None else "—")]],
                       left=0))
        curve = ins.get("curve") or ins.get("distance_curve")
        if "instability.png" in pngs:
            page.figure(pngs.pop("instability.png").read_bytes(),
                        "The 1-ulp twin's relative parameter distance through training.", "instability")
        elif isinstance(curve, list) and curve:
            page.figure(png_of(lambda f: _instability_plot(curve, name, f)),
                        "The 1-ulp twin's relative parameter distance through training.", "instability")
    y = doc.get("yield")
    if isinstance(y, dict) and y:
        page.section("Monte Carlo yield", "yield")
        page.p(f"spec {y.get('spec')}: {num(y.get('fraction'), '{:.0%}')} of {y.get('n')} draws meet it "
               f"(interval {num(y.get('low'), '{:.0%}')} … {num(y.get('high'), '{:.0%}')}"
               + (f", {y['interval']}" if y.get("interval") else "") + ")")
        for key in ("yield_histogram.png", "yield_cdf.png"):
            if key in pngs:
                page.figure(pngs.pop(key).read_bytes(),
                            "The spec operand over the Monte Carlo draws: " +
                            ("histogram" if "histogram" in key else "cumulative distribution") + ".", key[:-4])
    for p in sorted(pngs.values()):
        page.figure(p.read_bytes(), f"{p.name} (from the tolerance folder)", p.stem)
    return page


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def _tornado(sens: list[dict], name: str, f) -> None:
    from netlens.report.diagnosis_plot import COLOUR
    from netlens.report.plots import _pyplot

    plt = _pyplot()
    items = [s for s in sens if _finite(s.get("sigmas"))]
    items.sort(key=lambda s: abs(s["sigmas"]))
    fig, ax = plt.subplots(figsize=(8, 1.4 + 0.32 * max(1, len(items))))
    labels = [f"{s.get('operand')} {s.get('perturbation')}" for s in items]
    vals = [s["sigmas"] for s in items]
    colours = [COLOUR[VERDICT_SEV.get(s.get("verdict"), "ok")] for s in items]
    ax.barh(range(len(items)), vals, color=colours)
    ax.axvspan(-2, 2, color="grey", alpha=0.15, lw=0)
    ax.axvline(0, color="black", lw=0.6)
    ax.set_yticks(range(len(items)))
    ax.set_yticklabels(labels, fontsize=8)
    ax.set_xlabel("Δ merit in units of the noise floor (σ)")
    ax.set_ylabel("perturbation")
    ax.set_title(f"{name}: sensitivity (green within noise, amber sensitive, red breaks)")
    fig.tight_layout()
    fig.savefig(f, dpi=110)
    plt.close(fig)


def _instability_plot(curve: list, name: str, f) -> None:
    from netlens.report.plots import _pyplot

    plt = _pyplot()
    pts = [(c[0], c[1]) if isinstance(c, (list, tuple)) else (c.get("step"), c.get("relative_distance"))
           for c in curve]
    pts = [(s, d) for s, d in pts if _finite(s) and _finite(d) and d > 0]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    if pts:
        ax.semilogy(*zip(*pts), "o-", ms=3)
    ax.set_xlabel("step")
    ax.set_ylabel("‖θA − θB‖ / ‖θA − θ0‖")
    ax.set_title(f"{name}: 1-ulp twin")
    fig.tight_layout()
    fig.savefig(f, dpi=110)
    plt.close(fig)
