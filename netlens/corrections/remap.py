"""Row references that survive a correction (optiland's `pickup.py` idea).

Reports, findings and the prescription's own `diagnose:` and `optimize:` sections may name a
row by its index in the expanded stack (`#12`). A correction that inserts, removes or wraps rows
renumbers the stack, so each index is carried to where its row went: a row's identity is its
YAML location plus which repetition of that location it is (`repeat 3/18`), and the recorded
edit moves say where every YAML location went.
"""
from __future__ import annotations

import re
from collections import Counter
from typing import Any

from netlens.corrections.edit import Edit, keys_of
from netlens.prescription import Design
from netlens.prescription.yamlio import path_str

IndexMap = dict[int, "int | None"]
# Where a prescription may refer to rows, and how: `row: 3`, `rows: [3, 5]`, or `"#3"` anywhere.
REFERRING_SECTIONS = ("diagnose", "optimize")
ROW_KEYS = ("row", "rows")
_HASH = re.compile(r"^#(\d+)$")


def index_map(old: Design, new: Design, edit: Edit) -> IndexMap:
    """Old row index → new row index, or None for a row the correction removed."""
    new_at: dict[tuple[str, int], int] = {}
    seen: Counter = Counter()
    for row in new.rows:
        new_at[(row.path, seen[row.path])] = row.index
        seen[row.path] += 1
    out: IndexMap = {}
    seen = Counter()
    for row in old.rows:
        occurrence = seen[row.path]
        seen[row.path] += 1
        keys = edit.current(keys_of(row.path))
        out[row.index] = None if keys is None else new_at.get((path_str(keys), occurrence))
    return out


def remap_index(index: int | None, mapping: IndexMap) -> int | None:
    """A single reference; network-level references (None) stay None."""
    return None if index is None else mapping.get(index)


def compose(first: IndexMap, then: IndexMap) -> IndexMap:
    """The map of two corrections applied one after the other."""
    return {i: (None if j is None else then.get(j)) for i, j in first.items()}


def remap_references(tree: Any, mapping: IndexMap) -> list[str]:
    """Rewrite row references in the referring sections of `tree` in place. Returns a note for
    each reference whose row was removed (left as it was, so the user sees it)."""
    lost: list[str] = []

    def new_index(i: int, where: str) -> int:
        j = mapping.get(i)
        if j is None:
            lost.append(f"{where} refers to row #{i}, which the correction removed")
            return i
        return j

    def walk(node: Any, where: str, under_row_key: bool) -> None:
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for k, v in items:
            here = f"{where}.{k}" if isinstance(node, dict) else f"{where}[{k}]"
            row_key = under_row_key or (isinstance(node, dict) and k in ROW_KEYS)
            if isinstance(v, str) and _HASH.match(v):
                # keep the scalar's type: ruamel's quoted-string subclasses keep their quotes
                node[k] = type(v)(f"#{new_index(int(_HASH.match(v).group(1)), here)}")
            elif row_key and isinstance(v, int) and not isinstance(v, bool):
                node[k] = new_index(v, here)
            elif isinstance(v, (dict, list)):
                walk(v, here, row_key and isinstance(v, list))

    for section in REFERRING_SECTIONS:
        if isinstance(tree, dict) and isinstance(tree.get(section), (dict, list)):
            walk(tree[section], section, False)
    return lost
