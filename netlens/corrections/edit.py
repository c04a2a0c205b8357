"""Editing a prescription's round-trip YAML tree, with every move of a row recorded.

A correction never touches the user's tree: it edits a deep copy, so comments, key order and
flow style survive wherever it changes nothing. Each structural edit (insert, remove, wrap)
records how it moves the paths of the rows after it, the way optiland's `pickup.py` remaps
surface indices when a surface is inserted: a correction that planned its edits on the original
design asks `current(keys)` for where a row is now, and `netlens.corrections.remap` turns the
recorded moves into a map from old to new row indices.
"""
from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.tokens import CommentToken

from netlens.elements import ELEMENTS
from netlens.prescription.variables import is_variable

Keys = tuple
Move = Callable[[Keys], "Keys | None"]


def keys_of(path: str) -> Keys:
    """`layers[1].of[0]` → `('layers', 1, 'of', 0)` (a row's `path` back into tree keys)."""
    return tuple(int(k) if k.isdigit() else k for k in re.findall(r"[^.\[\]]+", path))


def flow_map(**items: Any) -> CommentedMap:
    """A mapping written inline, `{width: 64, init: he}`, as prescriptions write options."""
    m = CommentedMap(items)
    m.fa.set_flow_style()
    return m


def make_row(element: str, value: Any = None) -> Any:
    """A new row item: a bare name (`batchnorm`) or a one-key mapping (`dropout: 0.2`)."""
    if value is None:
        return element
    if isinstance(value, dict) and not isinstance(value, CommentedMap):
        value = flow_map(**value)
    return CommentedMap({element: value})


def row_element(item: Any) -> tuple[str | None, Any]:
    """(element name, value) of a row item; (None, None) for structures and variable rows."""
    if isinstance(item, str):
        return item, None
    if isinstance(item, dict) and not is_variable(item):
        keys = [k for k in item if k != "name"]
        if len(keys) == 1 and keys[0] not in ("repeat", "residual", "of"):
            return str(keys[0]), item[keys[0]]
    return None, None


class Edit:
    """A deep copy of a prescription tree and the path moves of the edits made to it."""

    def __init__(self, tree: Any):
        self.tree = copy.deepcopy(tree)
        self.moves: list[Move] = []

    # --- finding things -----------------------------------------------------------------------
    def node(self, keys: Keys) -> Any:
        node = self.tree
        for k in keys:
            node = node[k]
        return node

    def current(self, keys: Keys) -> Keys | None:
        """Where the row that was at `keys` before any edit is now (None: removed)."""
        for move in self.moves:
            if keys is None:
                return None
            keys = move(keys)
        return keys

    # --- scalar cells -------------------------------------------------------------------------
    def set(self, mapping: dict, key: str, value: Any, after: tuple[str, ...] = ()) -> None:
        """Set `mapping[key]`. A new key goes after the first of `after` present (else last). A
        variable cell keeps its search space: its `start` moves to the value (its range or
        choices widened to include it), so `optimize` still sees the cell."""
        if key not in mapping:
            _add_key(mapping, key, value, after)
            return
        cell = mapping.get(key)
        if is_variable(cell):
            if "choose" in cell:
                if value not in cell["choose"]:
                    cell["choose"].append(value)
            else:
                low, high = cell["vary"]
                if not isinstance(value, (int, float)):
                    mapping[key] = value
                    return
                if value < low:
                    cell["vary"][0] = value
                if value > high:
                    cell["vary"][1] = value
            cell["start"] = value
            return
        mapping[key] = value

    def set_option(self, keys: Keys, option: str, value: Any) -> None:
        """Set an option of the element row at `keys`, rewriting a bare or short form
        (`relu`, `linear: 64`) into the mapping form (`linear: {width: 64, init: he}`)."""
        item = self.node(keys)
        name, current = row_element(item)
        if name is None:
            raise ValueError(f"no element row at {keys}")
        if isinstance(current, dict) and not is_variable(current):
            self.set(current, option, value)
            return
        opts = flow_map()
        if current is not None:
            opts[ELEMENTS[name].short] = current
        opts[option] = value
        if isinstance(item, str):
            self._replace(keys, CommentedMap({name: opts}))
        else:
            item[name] = opts

    def drop_option(self, keys: Keys, option: str) -> None:
        _, current = row_element(self.node(keys))
        if isinstance(current, dict) and option in current:
            del current[option]

    def rename(self, keys: Keys, element: str, value: Any = None) -> None:
        """Replace the element of the row at `keys`, keeping its `name:` and its comments."""
        item = self.node(keys)
        new = make_row(element, value)
        if isinstance(item, dict) and "name" in item:
            new = new if isinstance(new, CommentedMap) else CommentedMap({element: None})
            new["name"] = item["name"]
        if isinstance(item, CommentedMap) and isinstance(new, CommentedMap):
            new.ca.items.update(item.ca.items)   # end-of-line comments are stored per key
            for old in list(new.ca.items):
                if old not in new:
                    new.ca.items[element] = new.ca.items.pop(old)
        self._replace(keys, new)

    def _replace(self, keys: Keys, value: Any) -> None:
        parent = self.node(keys[:-1])
        comments = getattr(parent, "ca", None)
        if isinstance(parent, list) and isinstance(value, CommentedMap) and comments is not None:
            # A list item's end-of-line comment would print after the dash, above a mapping
            # item; the mapping's last key carries it instead.
            entry = comments.items.get(keys[-1])
            if entry is not None and entry[0] is not None:
                value.ca.items[list(value)[-1]] = [None, None, entry[0], None]
                entry[0] = None
        parent[keys[-1]] = value

    # --- structure (recorded moves) -----------------------------------------------------------
    def insert(self, seq_keys: Keys, pos: int, item: Any) -> None:
        """Insert a row at `pos` of the list at `seq_keys`.

        Comment lines between the previous row and the one at `pos` that are indented past the
        rows continue the previous row's end-of-line comment; they stay with it, above the new
        row. Comments at the rows' own indentation head what follows and stay with the old row."""
        seq: CommentedSeq = self.node(seq_keys)
        before = seq.ca.items.get(pos)
        keep_above: list = []
        if before is not None and before[1]:
            column = _item_column(seq)
            keep_above = [c for c in before[1] if column is None or c.column > column]
            before[1] = [c for c in before[1] if c not in keep_above] or None
        seq.insert(pos, item)
        if keep_above:
            seq.ca.items[pos] = [None, keep_above, None, None]
        n = len(seq_keys)

        def move(keys: Keys) -> Keys:
            if keys[:n] == seq_keys and len(keys) > n and keys[n] >= pos:
                return keys[:n] + (keys[n] + 1,) + keys[n + 1:]
            return keys

        self.moves.append(move)

    def remove(self, seq_keys: Keys, pos: int) -> None:
        seq: CommentedSeq = self.node(seq_keys)
        del seq[pos]
        n = len(seq_keys)

        def move(keys: Keys) -> Keys | None:
            if keys[:n] == seq_keys and len(keys) > n:
                if keys[n] == pos:
                    return None
                if keys[n] > pos:
                    return keys[:n] + (keys[n] - 1,) + keys[n + 1:]
            return keys

        self.moves.append(move)

    def wrap(self, seq_keys: Keys, start: int, stop: int, scale: float | None = None) -> None:
        """Move rows [start, stop) of a list into one `- residual: [rows]` row at `start`."""
        seq: CommentedSeq = self.node(seq_keys)
        body = CommentedSeq(seq[start:stop])
        # The rows keep their own comments, renumbered inside the new list.
        for i in range(start, stop):
            if i in seq.ca.items:
                body.ca.items[i - start] = seq.ca.items.pop(i)
        block = CommentedMap({"residual": body})
        if scale is not None:
            block["scale"] = scale
        list.__delitem__(seq, slice(start + 1, stop))
        list.__setitem__(seq, start, block)
        shift = stop - start - 1
        for i in sorted(k for k in seq.ca.items if k >= stop):
            seq.ca.items[i - shift] = seq.ca.items.pop(i)
        n = len(seq_keys)

        def move(keys: Keys) -> Keys:
            if keys[:n] == seq_keys and len(keys) > n:
                i = keys[n]
                if start <= i < stop:
                    return keys[:n] + (start, "residual", i - start) + keys[n + 1:]
                if i >= stop:
                    return keys[:n] + (i - shift,) + keys[n + 1:]
            return keys

        self.moves.append(move)


def _add_key(mapping: CommentedMap, key: str, value: Any, after: tuple[str, ...]) -> None:
    keys = list(mapping)
    anchor = next((k for k in after if k in mapping), None)
    pos = keys.index(anchor) + 1 if anchor is not None else len(keys)
    # Comment lines under a collection value (`lr: {vary: …}` and its notes) belong to it: step
    # past such keys rather than split a value from its notes.
    while 0 < pos < len(keys) and isinstance(mapping[keys[pos - 1]], (dict, list)):
        pos += 1
    mapping.insert(pos, key, value)
    if pos == len(keys) and keys:
        _move_blank_lines(mapping, keys[-1], key)


def _move_blank_lines(mapping: CommentedMap, old: str, new: str) -> None:
    """Blank lines that closed a section belong after its last key: hand them to the new last key."""
    entry = mapping.ca.items.get(old)
    token = entry[2] if entry is not None and len(entry) > 2 else None
    if token is None or not token.value.endswith("\n\n"):
        return
    body = token.value.rstrip("\n")
    blank = len(token.value) - len(body) - 1
    token.value = body + "\n" if body else "\n"
    mapping.ca.items[new] = [None, None, CommentToken("\n" * blank + "\n", token.start_mark, None), None]


def _item_column(seq: CommentedSeq) -> int | None:
    """The column where this list's rows start (from the parse; None for a new list)."""
    cols = [lc[1] for lc in getattr(seq.lc, "data", {}).values()]
    return min(cols) if cols else None
