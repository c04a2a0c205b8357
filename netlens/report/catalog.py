"""Terminal rendering of `netlens catalog`: reads only the documents of `netlens.catalog`."""
from __future__ import annotations

from typing import Any

from rich.console import Console, Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text


SECTIONS = {
    "elements": (("element", "kind", "role", "corrects"),
                 lambda e: (e["name"], e["kind"], e["summary"], ", ".join(e["corrects"]))),
    "inits": (("init", "role", "source"),
              lambda e: (e["name"] + "".join(f" / {a}" for a in e["aliases"]), e["summary"], e["source"])),
    "aberrations": (("code", "scope", "name", "measures"),
                    lambda e: (e["code"], e["scope"], e["name"], e["summary"])),
    "corrections": (("correction", "role", "addresses"),
                    lambda e: (e["name"], e["summary"], ", ".join(e["addresses"]))),
}


def listing(con: Console, doc: dict[str, Any]) -> None:
    for key, (columns, row) in SECTIONS.items():
        t = Table(title=f"{key} ({len(doc[key])})", title_justify="left", header_style="bold",
                  show_edge=False, pad_edge=False)
        for i, col in enumerate(columns):
            t.add_column(col, no_wrap=i == 0, style="cyan" if col in ("corrects", "addresses") else None)
        for e in doc[key]:
            t.add_row(*(escape(str(x)) for x in row(e)))
        con.print(t)
        con.print()
    con.print("[dim]`netlens catalog NAME` shows one entry in full: formula, source, thresholds, "
              "what it corrects.[/]")


def entry(con: Console, doc: dict[str, Any]) -> None:
    kind = doc["type"]
    title = doc.get("code", doc.get("name"))
    con.print(Text(f"{title} — {kind}", style="bold"))
    {"element": _element, "init": _init, "aberration": _aberration, "correction": _correction}[kind](con, doc)


def _fields(con: Console, pairs: list[tuple[str, Any]]) -> None:
    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold", no_wrap=True)
    t.add_column()
    for k, v in pairs:
        if v in (None, "", [], {}):
            continue
        t.add_row(k, escape(", ".join(map(str, v)) if isinstance(v, list) else str(v)))
    con.print(t)


def _element(con: Console, d: dict) -> None:
    opts = ", ".join(f"{o['name']}" + ("" if o["required"] else f" = {o['default']}") for o in d["options"])
    _fields(con, [("what", d["summary"]), ("kind", d["kind"]), ("source", d["source"]),
                  ("paraxial rule", d["formula"]), ("options", opts or "none"),
                  ("short form", f"{d['name']}: <{d['short']}>" if d["short"] else None),
                  ("corrects", d["corrects"]), ("inserted by", d["inserted_by"])])
    if "gains" in d:
        t = Table(title="paraxial gains over input scale (z ~ N(0, q))", title_justify="left",
                  header_style="bold")
        for col in ("q", "forward E[φ²]/q dB", "backward E[φ'²] dB", "mean share"):
            t.add_column(col, justify="right")
        for r in d["gains"]:
            t.add_row(f"{r['q']:g}", _num(r["forward_db"]), _num(r["backward_db"]),
                      "—" if r["mean_share"] is None else f"{r['mean_share']:.3f}")
        con.print(t)
        crit = ", ".join(f"σ_b² = {sb}: " + ("none" if v is None else f"{v:.4g}")
                         for sb, v in d["critical_sigma_w2"].items())
        con.print(f"critical σ_w² (χ₁ = 1): {crit}")


def _init(con: Console, d: dict) -> None:
    _fields(con, [("what", d["summary"]), ("source", d["source"]), ("aliases", d["aliases"])])
    if "sigma_w2" in d:
        con.print("σ_w² (units of 1/fan_in) for fan_in→fan_out: "
                  + ", ".join(f"{k}: {v:.4g}" for k, v in d["sigma_w2"].items()))
    if "critical_sigma_w2" in d:
        t = Table(title="the solve: critical σ_w² (χ₁ = 1) per activation", title_justify="left",
                  header_style="bold")
        t.add_column("activation")
        biases = list(next(iter(d["critical_sigma_w2"].values())))
        for sb in biases:
            t.add_column(f"σ_b² = {sb}", justify="right")
        for act, vals in d["critical_sigma_w2"].items():
            t.add_row(act, *("none" if vals[sb] is None else f"{vals[sb]:.4g}" for sb in biases))
        con.print(t)
        con.print("[dim]`init: critical` solves per row at the row's own input power, so a "
                  "shallow row may differ from the deep-network value above.[/]")


def _aberration(con: Console, d: dict) -> None:
    th = d["thresholds"]
    levels = f"warn {_level(th['warn'])}, error {_level(th['error'])} ({th['sense']}" + \
        (f", {th['unit']})" if th["unit"] else ")")
    _fields(con, [("name", d["name"]), ("scope", d["scope"]), ("measures", d["measures"]),
                  ("applies to", d["applies"]), ("judged", d.get("judged")), ("thresholds", levels),
                  ("threshold source", th["source"]), ("calibration", th.get("calibration")),
                  ("corrections", d["corrections"]),
                  ("elements that correct it", d["corrected_by_elements"]),
                  ("other corrections", d["other_corrections"])])
    for kind, case in d.get("cases", {}).items():
        con.print(f"  [bold]{escape(kind)}[/]: {escape(case['name'])} → {escape(', '.join(case['corrections']))}")
    con.print(Group(Text(""), Text(d["explanation"]), Text(""), Text(d["analogy"], style="italic")))
    if d.get("doc"):
        con.print(Text(d["doc"], style="dim"))


def _correction(con: Console, d: dict) -> None:
    _fields(con, [("what", d["summary"]), ("source", d["source"]), ("addresses", d["addresses"]),
                  ("parameters", d["needs"]),
                  ("predicted before training", "yes: the paraxial model re-traces the corrected "
                   "design (GAIN, FLOW)" if d["predicted_by_paraxial"] else None),
                  ("suggested for", d["suggested_for"])])


def _num(x: float | None) -> str:
    return "—" if x is None else f"{x:+.2f}"


def _level(level: Any) -> str:
    if level is None:
        return "off"
    if isinstance(level, list):
        return f"[{level[0]:g}, {level[1]:g}]"
    return f"{level:g}"
