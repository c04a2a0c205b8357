"""Expanding `layers:` into the flat, indexed stack of rows reports refer to.

A row is a bare name (`tanh`), a one-key mapping (`linear: 64`, `linear: {width: 64}`), or a
structure: `repeat: N` + `of: [rows]` (expanded in place), `residual: [rows]` (+ `scale:`).
Rows may carry `name:`. Every row keeps its source: file:line, and `repeat i/N` where repeated.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from netlens.elements import ELEMENTS, Element
from netlens.errors import DesignError, suggest
from netlens.prescription.yamlio import path_str

STRUCTURES = ("repeat", "residual")
#: Rows a prescription may expand to (`repeat:` multiplies): far above any network netlens can
#: train on a workstation, low enough that a typo like `repeat: 1000000` fails at once.
MAX_ROWS = 10_000
ROW_KEYS = ("name",)


@dataclass
class Row:
    index: int
    element: Element | None            # None for a residual block
    path: str                          # field path in the prescription, e.g. layers[3].of[0]
    line: int | None
    source: str                        # `design.yaml:14 repeat 3/18`
    name: str | None = None
    parent: int | None = None          # index of the enclosing residual block
    depth: int = 0
    children: list[int] = field(default_factory=list)
    scale: float = 1.0                 # residual branch multiplier α

    @property
    def label(self) -> str:
        if self.element is None:
            return "residual" + (f" ×{self.scale:g}" if self.scale != 1.0 else "")
        return self.element.describe()

    @property
    def kind(self) -> str:
        return "residual" if self.element is None else self.element.kind


class Expander:
    """Walks the resolved `layers` list; `locate(path)` maps a key path to a line number."""

    def __init__(self, file: str, locate):
        self.file = file
        self.locate = locate
        self.rows: list[Row] = []

    def error(self, err: DesignError, keys: tuple) -> DesignError:
        return err.located(file=self.file, line=self.locate(keys), path=path_str(keys))

    def expand(self, layers: Any) -> list[Row]:
        if not isinstance(layers, list) or not layers:
            raise self.error(DesignError("`layers` must be a non-empty list of rows",
                                         expected="e.g. `- linear: 64`", found=layers), ("layers",))
        self._seq(layers, ("layers",), parent=None, depth=0, repeat="")
        return self.rows

    def _seq(self, items: list, keys: tuple, parent: int | None, depth: int, repeat: str) -> list[int]:
        out = []
        for i, item in enumerate(items):
            out.extend(self._row(item, keys + (i,), parent, depth, repeat))
        return out

    def _row(self, item: Any, keys: tuple, parent: int | None, depth: int, repeat: str) -> list[int]:
        name = None
        if isinstance(item, dict):
            item = dict(item)
            name = item.pop("name", None)
        if isinstance(item, dict) and "repeat" in item:
            return self._repeat(item, keys, parent, depth, repeat)
        if isinstance(item, dict) and "residual" in item:
            return [self._residual(item, keys, parent, depth, repeat, name)]
        if isinstance(item, str):
            element_name, value = item, None
        elif isinstance(item, dict) and len(item) == 1:
            element_name, value = next(iter(item.items()))
        else:
            found = item if not isinstance(item, dict) else "keys " + ", ".join(map(str, item))
            raise self.error(DesignError(
                "a row is an element name or a one-key mapping",
                expected="`tanh`, `linear: 64` or `linear: {width: 64, bias: false}`", found=found), keys)
        element = self._element(str(element_name), value, keys)
        line = self.locate(keys)
        idx = len(self.rows)
        if idx >= MAX_ROWS:
            raise self.error(DesignError(f"the stack expands beyond {MAX_ROWS:,} rows",
                                         expected=f"at most {MAX_ROWS:,} rows in all"), keys)
        self.rows.append(Row(idx, element, path_str(keys), line, self._source(line, repeat),
                             name, parent, depth))
        return [idx]

    def _source(self, line: int | None, repeat: str) -> str:
        where = Path(self.file).name + (f":{line}" if line else "")
        return f"{where} {repeat}".strip()

    def _element(self, name: str, value: Any, keys: tuple) -> Element:
        cls = ELEMENTS.get(name)
        if cls is None:
            options = list(ELEMENTS) + list(STRUCTURES)
            hint = suggest(name, options)
            raise self.error(DesignError(
                f"unknown element `{name}`", expected="an element from `netlens catalog`",
                suggestion=f"Did you mean `{hint}`?" if hint else
                "Run `netlens catalog` to list the elements."), keys)
        keys = keys + (name,) if value is not None else keys
        if value is None:
            opts: dict = {}
        elif isinstance(value, dict):
            opts = value
        elif cls.short is not None:
            opts = {cls.short: value}
        else:
            raise self.error(DesignError(f"`{name}` takes no value", expected=f"just `{name}`",
                                         found=value), keys)
        try:
            return cls(cls.options(**opts))
        except ValidationError as e:
            raise self.error(*_from_pydantic(e, cls, name, keys, value)) from None
        except DesignError as e:  # raised by the init parser
            raise self.error(e, keys + ("init",) if isinstance(value, dict) and "init" in value else keys) from None

    def _repeat(self, item: dict, keys: tuple, parent, depth, repeat) -> list[int]:
        extra = set(item) - {"repeat", "of"}
        if extra:
            bad = sorted(extra)[0]
            hint = suggest(bad, ["of", "name"])
            raise self.error(DesignError(f"unknown key `{bad}` in a repeat", expected="`repeat: N` and `of: [rows]`",
                                         suggestion=f"Did you mean `{hint}`?" if hint else None), keys + (bad,))
        n = item["repeat"]
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise self.error(DesignError("`repeat` needs a positive whole number", expected="an integer ≥ 1",
                                         found=n), keys + ("repeat",))
        body = item.get("of")
        if not isinstance(body, list) or not body:
            raise self.error(DesignError("`repeat` needs `of:` with the rows to repeat",
                                         expected="`of: [rows]`", found=body), keys + ("of",))
        if len(self.rows) + n * _count(body) > MAX_ROWS:
            raise self.error(DesignError(
                f"`repeat: {n}` expands the stack beyond {MAX_ROWS:,} rows",
                expected=f"at most {MAX_ROWS:,} rows in all", found=n,
                suggestion="Check the repeat count; a deep network of a few hundred rows is "
                           "already far beyond what trains well."), keys + ("repeat",))
        out = []
        for r in range(n):
            tag = f"repeat {r + 1}/{n}"
            out.extend(self._seq(body, keys + ("of",), parent, depth, f"{repeat} {tag}".strip()))
        return out

    def _residual(self, item: dict, keys: tuple, parent, depth, repeat, name) -> int:
        extra = set(item) - {"residual", "scale"}
        if extra:
            bad = sorted(extra)[0]
            hint = suggest(bad, ["scale", "name"])
            raise self.error(DesignError(f"unknown key `{bad}` in a residual", expected="`residual: [rows]` and `scale:`",
                                         suggestion=f"Did you mean `{hint}`?" if hint else None), keys + (bad,))
        body = item["residual"]
        if not isinstance(body, list) or not body:
            raise self.error(DesignError("`residual` needs a list of rows (the branch)",
                                         expected="`residual: [rows]`", found=body), keys + ("residual",))
        scale = item.get("scale", 1.0)
        if isinstance(scale, bool) or not isinstance(scale, (int, float)):
            raise self.error(DesignError("`scale` must be a number", expected="e.g. 0.5", found=scale),
                             keys + ("scale",))
        line = self.locate(keys)
        idx = len(self.rows)
        row = Row(idx, None, path_str(keys), line, self._source(line, repeat), name, parent, depth,
                  scale=float(scale))
        self.rows.append(row)
        row.children = self._seq(body, keys + ("residual",), idx, depth + 1, repeat)
        return idx


def _count(body: list) -> int:
    """A lower bound on the rows a list expands to (nested repeats multiplied), without expanding."""
    total = 0
    for item in body:
        if isinstance(item, dict) and "repeat" in item and isinstance(item.get("of"), list):
            n = item["repeat"] if isinstance(item["repeat"], int) and item["repeat"] > 0 else 1
            total += n * _count(item["of"])
        elif isinstance(item, dict) and "residual" in item and isinstance(item["residual"], list):
            total += 1 + _count(item["residual"])
        else:
            total += 1
    return total


def _from_pydantic(e: ValidationError, cls, name: str, keys: tuple, value: Any) -> tuple[DesignError, tuple]:
    err = e.errors()[0]
    loc = tuple(str(x) for x in err["loc"] if not isinstance(x, int))
    field_name = loc[0] if loc else None
    fields = list(cls.options.model_fields)
    sub = keys + ((field_name,) if field_name and isinstance(value, dict) else ())
    if err["type"] == "extra_forbidden":
        hint = suggest(field_name, fields)
        return DesignError(
            f"`{name}` has no option `{field_name}`",
            expected="one of " + (", ".join(f"`{f}`" for f in fields) or "no options"),
            suggestion=f"Did you mean `{hint}`?" if hint else None), sub
    if err["type"] == "missing":
        return DesignError(f"`{name}` needs `{field_name}`",
                           expected=f"e.g. `{name}: {{{field_name}: …}}`" + (
                               f" or `{name}: …`" if cls.short == field_name else "")), keys
    if err["type"] == "value_error" and isinstance(err.get("ctx", {}).get("error"), DesignError):
        return err["ctx"]["error"], sub
    plain = {"int_type": "a whole number", "float_type": "a number", "bool_type": "true or false",
             "string_type": "text", "finite_number": "a finite number (not .inf or .nan)"}
    found = err.get("input")
    if err["type"] in plain:
        return DesignError(f"invalid `{field_name}` for `{name}`", expected=plain[err["type"]],
                           found=f'"{found}" (text)' if isinstance(found, str) else found,
                           suggestion="Write numbers and true/false without quotes."
                           if isinstance(found, str) else None), sub
    return DesignError(f"invalid `{field_name}` for `{name}`: {err['msg']}",
                       found=found), sub
