"""Terminal rendering of corrections: patches under a finding, the `--fix` chain, and the
`--verify` before → after table. Reads the JSON-shaped documents only, like the other views."""
from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

ALTERNATIVES = 2        # corrections shown beside the first, one line each (all are in --json)
SEVERITY_STYLE = {"error": "bold red", "warn": "yellow", "info": "cyan", "ok": "green"}


def diff_text(diff: str) -> Text:
    """A unified diff coloured like `git diff`."""
    out = Text()
    for line in diff.splitlines():
        style = ("bold" if line.startswith(("---", "+++")) else "green" if line.startswith("+")
                 else "red" if line.startswith("-") else "cyan" if line.startswith("@@") else "dim")
        out.append(line + "\n", style=style)
    return out


def corrections_block(console: Console, finding: dict[str, Any], shown: set | None = None,
                      indent: int = 3) -> None:
    """The finding's corrections, most direct first: the names, then the first with its
    predicted effect and prescription diff, the others one line each. `shown` remembers the
    diffs already printed above, so a patch that treats several findings is printed once."""
    corrections = finding.get("corrections") or []
    info = finding.get("correction_info") or {}
    pad = (0, 0, 0, indent)
    if not corrections:
        why = finding.get("not_applicable") or {}
        if why:
            console.print(Padding(Text("no correction applies here: " + "; ".join(
                f"{n}: {r}" for n, r in list(why.items())[:3]), style="dim"), pad))
        return
    console.print(Padding(Text("corrections: " + ", ".join(c["name"] for c in corrections)), pad))
    first, *rest = corrections
    about = info.get(first["name"], {})
    head = Text("→ ", style="bold")
    head.append(first["name"], style="bold cyan")
    if about:
        head.append(f" — {about['did']}  ({about['citation']})")
    console.print(Padding(head, pad))
    for line in prediction_lines(about):
        console.print(Padding(Text(line, style="magenta"), (0, 0, 0, indent + 2)))
    key = (first["name"], first["patch"] or first.get("advice"))
    if first["patch"] is None:      # a watched model: the change as code, not a diff
        if first.get("advice") and not (shown is not None and key in shown):
            console.print(Padding(Text(first["advice"], style="green"), (0, 0, 0, indent + 2)))
            if shown is not None:
                shown.add(key)
    elif shown is not None and key in shown:
        console.print(Padding(Text("(the same patch as above)", style="dim"), (0, 0, 0, indent + 2)))
    else:
        console.print(Padding(diff_text(first["patch"]), (0, 0, 0, indent + 2)))
        if shown is not None:
            shown.add(key)
    for c in rest[:ALTERNATIVES]:
        about = info.get(c["name"], {})
        line = Text("also ", style="dim")
        line.append(c["name"], style="cyan")
        if about:
            line.append(f" — {about['did']}")
        pred = prediction_lines(about)
        if pred:
            line.append(f"; {pred[0]}", style="magenta")
        console.print(Padding(line, pad))


def prediction_lines(info: dict[str, Any]) -> list[str]:
    """The predicted effect of a correction, from the `predicted` block of its info."""
    p = info.get("predicted") or {}
    out = []
    par = p.get("paraxial")
    for code in ("FLOW", "GAIN"):
        if code in p and p[code]["before"] is not None and p[code]["after"] is not None:
            out.append(f"predicted {code} (worst Σ) {_db(p[code]['before'])} → {_db(p[code]['after'])} dB")
    if par and par.get("hidden_flow_db") is not None:
        out.append(f"predicted Σ flow through the hidden layers {_db(par['hidden_flow_db'])} dB, "
                   f"end to end {_db(par['flow_db'])} dB")
    crit = p.get("critical_sigma_w2")
    if crit:
        values = list(crit.values())
        out.append("init: critical solves to σ_w² = " + (
            f"{values[0]:.3g}" if f"{values[0]:.3g}" == f"{values[-1]:.3g}"
            else f"{values[0]:.3g} (first row) … {values[-1]:.3g} (deepest)"))
    for code, ba in p.items():
        if code not in ("FLOW", "GAIN", "paraxial", "critical_sigma_w2") and isinstance(ba, dict):
            out.append(f"predicted {code} {ba['before']:.3g} → {ba['after']:.3g}")
    return out


def _db(x: float | None) -> str:
    return "—" if x is None else f"{round(x, 1) + 0.0:+.1f}".replace("-", "−")


def fix_block(console: Console, fix: dict[str, Any], verified: bool = False) -> None:
    """What `--fix` did for each error-level finding, the combined patch and the file."""
    steps = fix["steps"]
    if not steps:
        console.print(Text("--fix: no error-level finding, nothing to correct; no file written.",
                           style="green"))
        return
    console.print(Text("--fix: one correction per error-level finding", style="bold"))
    for s in steps:
        f = s["finding"]
        where = f" at #{f['row']}" if f.get("row") is not None else ""
        line = Text(f"  {f['code']}{' ' + f['kind'] if f.get('kind') else ''}{where}: ")
        if s["correction"]:
            line.append(s["correction"], style="bold cyan")
            line.append(f" — {s['did']}")
        else:
            line.append(s["note"], style="dim")
        console.print(line)
    if fix["patch"]:
        console.print(Padding(diff_text(fix["patch"]), (0, 0, 0, 2)))
    if fix["written"]:
        console.print(Text(f"wrote {fix['file']}", style="bold green"))
    elif not verified:
        console.print(Text("no correction applies to the error-level findings; no file written.",
                           style="yellow"))


def verify_block(console: Console, verify: dict[str, Any]) -> None:
    """Before → after each correction, per aberration and for the final losses and accuracies
    (each column adds one correction to those kept before it), then the verdicts."""
    trials = verify["corrections"]
    t = Table(title="--verify: re-simulated with the same seed", title_justify="left",
              header_style="bold")
    t.add_column("")
    t.add_column("before", justify="right")
    for v in trials:
        t.add_column(("+ " if v["kept"] else "✗ ") + v["correction"], justify="right",
                     header_style="bold" if v["kept"] else "dim")
    metrics = [verify["before"]["metrics"]] + [v.get("metrics", {}) for v in trials]
    for key in ("train_loss", "val_loss", "train_accuracy", "val_accuracy"):
        if all(m.get(key) is None for m in metrics):
            continue
        fmt = "{:.3f}" if key.endswith("accuracy") else "{:.4g}"
        t.add_row(key.replace("_", " "), *(_num(m.get(key), fmt) for m in metrics))
    runs = [verify["before"]] + trials
    if any(r.get("divergence") for r in runs):
        t.add_row("diverged", *(_diverged(r) for r in runs))
    t.add_section()
    columns = [{c: ch["before"] for c, ch in verify["aberrations"].items()}] + \
        [v.get("aberrations", {}) for v in trials]
    for code in verify["aberrations"]:
        cells = [col.get(code, {"severity": "ok", "value": None}) for col in columns]
        if all(c["severity"] == "ok" for c in cells):
            continue
        t.add_row(code, *(_cell(c) for c in cells))
    console.print(t)
    for v in trials:
        mark = Text("  kept    " if v["kept"] else "  dropped ", style="green" if v["kept"] else "red")
        mark.append(f"{v['correction']} ", style="bold")
        mark.append(f"({v['finding']}): {v['reason']}")
        console.print(mark)
    if not verify["kept"]:
        console.print(Text("no correction helped; no file written.", style="yellow"))


def _cell(entry: dict[str, Any]) -> Text:
    if entry["severity"] == "ok":
        return Text("ok", style="green")
    value = entry["value"]
    return Text(f"{entry['severity']} {value:.3g}" if isinstance(value, (int, float)) else entry["severity"],
                style=SEVERITY_STYLE[entry["severity"]])


def _num(x: Any, fmt: str = "{:.4g}") -> str:
    return "—" if x is None else fmt.format(x)


def _diverged(run: dict[str, Any]) -> Text:
    d = run.get("divergence")
    if "metrics" not in run:
        return Text("")
    return Text(f"at step {d['step']}", style="red") if d else Text("no", style="green")
