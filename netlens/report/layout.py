"""Tables that fit the terminal without cutting a number.

A wide table is described once as key columns (`#`, `element`) and groups of columns in the
order they matter. At render time, against the console's width, the first layout that fits is
printed:

1. the whole table as written;
2. the same with each `alt` cell (the long source `deep-tanh.yaml:46 repeat 1/30`) replaced by
   its short form (`:46 1/30`; the file is in the title);
3. the groups packed, first fit in priority order, into as few stacked tables as it takes, each
   repeating the key columns, so every number is still printed, whole.

Number columns never wrap: a column's width is at least its widest cell, so rich can only wrap
the text columns (element, source) and the headers. A layout "fits" when every column's widest
cell and header line, with padding and borders, add up to no more than the width (`_fits`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from rich import box as boxes
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.table import Table
from rich.text import Text

Cell = Any      # str or rich Text


@dataclass
class Col:
    header: str
    cells: list[Cell]
    sum: Cell = ""
    justify: str = "right"
    wrap: bool = False                 # text columns may wrap; numbers never do
    alt: list[Cell] | None = None      # a shorter form of the cells, tried before splitting
    style: str | None = None


@dataclass
class Layout:
    """Key columns, then groups of columns (each kept together), most important first."""
    title: str
    key: list[Col]
    groups: list[list[Col]]
    table: Callable[..., Table] = field(default=lambda **kw: Table(**kw))
    sections: bool = True              # a rule above the SUM row
    has_sum: bool = True
    continued: str = "(continued)"
    priority: list[int] | None = None  # the order groups are packed in when split (default: as listed)


def _width(cell: Cell) -> int:
    text = cell.plain if isinstance(cell, Text) else str(cell)
    return max((len(line) for line in text.split("\n")), default=0)


def _build(layout: Layout, cols: list[Col], title: str | None, short: bool) -> Table:
    t = layout.table(title=title)
    for c in cols:
        cells = c.alt if short and c.alt is not None else c.cells
        if c.wrap:
            t.add_column(c.header, justify=c.justify, style=c.style)
        else:
            widest = max([_width(x) for x in cells] + [_width(c.sum), _width(c.header), 1])
            t.add_column(c.header, justify=c.justify, style=c.style, no_wrap=True, min_width=widest)
    n = len(cols[0].cells) if cols else 0
    for i in range(n):
        t.add_row(*((c.alt if short and c.alt is not None else c.cells)[i] for c in cols))
    if layout.has_sum:
        if layout.sections:
            t.add_section()
        t.add_row(*(c.sum for c in cols))
    return t


def _fits(table: Table, width: int) -> bool:
    """At this width, is every cell whole? Each column needs its longest cell and header line
    (numbers never wrap, and a text column is only let wrap once nothing else fits: the stacked
    tables then repeat the key columns). rich gives every column its widest cell when their sum
    fits, and only cuts — with an ellipsis — a cell wider than its column, so the sum decides,
    without measuring or rendering anything (that was most of `paraxial`'s run time)."""
    total = table._extra_width
    for col in table.columns:
        texts = [cell.plain if isinstance(cell, Text) else str(cell) for cell in col._cells]
        widest = max([cell_len(line) for t in texts for line in t.split("\n")]
                     + [cell_len(line) for line in col.header.split("\n")] + [col.min_width or 0])
        total += widest + table._get_padding_width(col._index)
    return total <= width


def layouts(layout: Layout, width: int) -> list[Table]:
    """The tables to print at this console width (see the module docstring)."""
    every = layout.key + [c for g in layout.groups for c in g]
    for short in (False, True):
        t = _build(layout, every, layout.title, short)
        if _fits(t, width):
            return [t]
    order = layout.priority or list(range(len(layout.groups)))
    packs: list[list[int]] = [[]]

    def cols(pack: list[int]) -> list[Col]:      # a table's groups in their listed order
        return layout.key + [c for g in sorted(pack) for c in layout.groups[g]]

    for g in order:             # first fit: the first table this group still fits in
        home = next((p for p in packs if not p or _fits(
            _build(layout, cols(p + [g]), "x", True), width)), None)
        if home is None:
            packs.append(home := [])
        home.append(g)
    return [_build(layout, cols(p), layout.title if i == 0 else layout.continued, True)
            for i, p in enumerate(packs)]


class Fitted:
    """A renderable that picks its layout from the width it is given."""

    def __init__(self, layout: Layout):
        self.layout = layout

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        tables = layouts(self.layout, options.max_width)
        for i, t in enumerate(tables):
            if i:
                yield Text("")
            yield t


def heavy(header_style: str = "bold") -> Callable[..., Table]:
    return lambda title=None: Table(title=title, title_justify="left", header_style=header_style)


def simple() -> Callable[..., Table]:
    return lambda title=None: Table(title=title, title_justify="left", header_style="bold",
                                    box=boxes.SIMPLE_HEAD, pad_edge=False, padding=(0, 1))


class Unpadded:
    """A text stream for rich that drops the trailing blanks of each line it passes on: rich pads
    table rows to the table's width, which a file or a pipe should not keep."""

    def __init__(self, stream):
        self.stream, self._line = stream, ""

    def write(self, text: str) -> int:
        *lines, self._line = (self._line + text).split("\n")
        for line in lines:
            self.stream.write(line.rstrip() + "\n")
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self.stream.fileno()

    @property
    def encoding(self) -> str:
        return getattr(self.stream, "encoding", "utf-8")
