"""Tables on ordinary terminals: at 80, 100 and 120 columns no number is cut, and every number
of the JSON document is printed whole (a narrow terminal stacks the columns in several tables
rather than abbreviating a value); piped output has no trailing padding."""
from __future__ import annotations

import io
import re
from collections import Counter

import pytest
from rich.console import Console

from netlens.report.terminal import num, paraxial_table, simulate_table

DEEP = """
netlens: 1
name: narrow-terminal
seed: 0
data: {source: digits, n: 300, batch: 32}
layers:
  - flatten
  - repeat: 4
    of:
      - linear: {width: 48, init: he}
      - relu
  - linear: 10
train: {optimizer: sgd, lr: 0.05, steps: 12}
probe: {every: 6, batch: 64}
"""

WIDTHS = (80, 100, 120)


@pytest.fixture(scope="module")
def docs(tmp_path_factory):
    from netlens import diagnose, paraxial

    folder = tmp_path_factory.mktemp("terminal")
    path = folder / "narrow-terminal.yaml"
    path.write_text(DEEP.lstrip())
    return paraxial(path).doc, diagnose(path).doc


def render(renderable, width: int, printer=None) -> str:
    con = Console(width=width, file=io.StringIO(), color_system=None, _environ={})
    printer(con) if printer else con.print(renderable)
    return con.file.getvalue()


def tokens(text: str) -> Counter:
    return Counter(t for t in re.split(r"[\s│┃║|]+", text) if t)


def assert_whole(text: str, expected: list[str], width: int) -> None:
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= width
    missing = Counter(expected) - tokens(text)
    assert not missing, f"at {width} columns these numbers are not printed whole: {dict(missing)}"


@pytest.mark.parametrize("width", WIDTHS)
def test_paraxial_numbers_whole(docs, width):
    doc = docs[0]
    expected = [f"{doc['sum']['params']:,}", num(doc["sum"]["gain_db"]), num(doc["sum"]["flow_db"])]
    for r in doc["rows"]:
        expected += [f"{r['params']:,}", num(r["q"], "{:.3g}"), num(r["gain_db"]), num(r["flow_db"]),
                     num(r["cum_gain_db"]), num(r["cum_flow_total_db"])]
    assert_whole(render(paraxial_table(doc), width), expected, width)


@pytest.mark.parametrize("width", WIDTHS)
def test_simulate_numbers_whole(docs, width):
    doc = docs[1]
    expected = []
    for r in doc["rows"] + [doc["sum"]]:
        for key in ("gain_db", "flow_db"):
            expected += [num(r["paraxial"][key]), num(r["measured"]["init"][key]),
                         num(r["measured"]["end"][key])]
    assert_whole(render(simulate_table(doc), width), expected, width)


@pytest.mark.parametrize("width", WIDTHS)
def test_diagnose_numbers_whole(docs, width):
    from netlens.report.diagnosis_view import CELL, print_diagnosis

    doc = docs[1]
    expected = []
    for r in doc["rows"]:
        for key in ("gain_db", "flow_db"):
            expected += [num(r["paraxial"][key]), num(r["measured"]["init"][key]),
                         num(r["measured"]["at"][key]), num(r["cumulative"][key])]
        expected += [num(v, CELL.get(code, "{:.3g}")) for code, v in r["values"].items()
                     if v is not None and code not in ("GAIN", "FLOW")]
    text = render(None, width, lambda con: print_diagnosis(con, doc, explain=True))
    assert_whole(text, expected, width)
    if width == 80:       # the stacked layout: the first table names the design, the rest continue
        assert "(continued)" in text


def test_piped_output_has_no_trailing_padding(cli, tmp_path):
    from tests.conftest import DESIGNS

    r = cli("paraxial", DESIGNS / "deep-tanh.yaml")
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert len(lines) > 60
    assert not [line for line in lines if line != line.rstrip()]
