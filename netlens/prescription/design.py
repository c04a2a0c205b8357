"""Loading a prescription file into a validated `Design`.

Steps, each with errors located at file:line and a field path:
YAML (safe, round-trip) → variable cells found and resolved → sections validated → layers expanded.
"""
from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from netlens.data import DataSpec
from netlens.errors import DesignError, suggest
from netlens.prescription.rows import Expander, Row
from netlens.prescription.sections import DiagnoseSpec, OptimizeSpec, ProbeSpec, ToleranceSpec, TrainSpec
from netlens.prescription.variables import Variable, find_variables, resolve
from netlens.prescription.yamlio import line_of, parse, path_str, read_text

FORMAT_VERSION = 1
SECTIONS: dict[str, type[BaseModel] | None] = {
    "netlens": None, "name": None, "about": None, "seed": None, "layers": None,
    "data": DataSpec, "train": TrainSpec, "probe": ProbeSpec,
    "diagnose": DiagnoseSpec, "optimize": OptimizeSpec, "tolerance": ToleranceSpec,
}


@dataclass
class Design:
    """A validated prescription with every variable cell at a value."""

    name: str
    about: str
    seed: int
    data: DataSpec
    train: TrainSpec
    probe: ProbeSpec
    diagnose: DiagnoseSpec
    optimize: OptimizeSpec
    rows: list[Row]
    variables: list[Variable]
    file: Path
    tree: Any                     # the round-trip YAML tree, comments and all
    resolved: dict                # the plain tree with variables at their values
    values: dict[str, Any] = field(default_factory=dict)   # variable path → value used
    tolerance: ToleranceSpec = field(default_factory=ToleranceSpec)

    @property
    def base_dir(self) -> Path:
        return self.file.parent

    def top_rows(self) -> list[Row]:
        return [r for r in self.rows if r.parent is None]

    def locate(self, e: DesignError) -> DesignError:
        """Fill in file and line of an error raised with only a field path."""
        keys = tuple(int(k) if k.isdigit() else k for k in re.findall(r"[^.\[\]]+", e.path or ""))
        return e.located(file=str(self.file), line=line_of(self.tree, keys) if keys else None)

    @contextmanager
    def blame(self):
        """Errors raised inside are located in this design's file."""
        try:
            yield
        except DesignError as e:
            raise self.locate(e) from None


def load_design(path: str | Path, values: dict[str, Any] | None = None,
                overrides: dict[str, Any] | None = None) -> Design:
    """Read and validate a prescription. `values` sets variable cells by path (optimize);
    `overrides` sets fields by dotted path after resolution (`train.steps`, `seed`)."""
    path = Path(path)
    return design_from_text(read_text(path), path, values, overrides)


def design_from_text(text: str, path: Path, values: dict[str, Any] | None = None,
                     overrides: dict[str, Any] | None = None) -> Design:
    file = str(path)
    tree = parse(text, file)

    def locate(keys: tuple) -> int | None:
        return line_of(tree, keys)

    def fail(msg: str, keys: tuple, **kw) -> DesignError:
        return DesignError(msg, file=file, line=locate(keys), path=path_str(keys) or None, **kw)

    if not isinstance(tree, dict):
        raise fail("a prescription is a YAML mapping with `layers`, `data` and `train`",
                   (), found=type(tree).__name__ if tree is not None else "an empty file")
    for key in tree:
        if key not in SECTIONS:
            hint = suggest(str(key), SECTIONS)
            raise fail(f"unknown section `{key}`", (str(key),), expected="one of " + ", ".join(SECTIONS),
                       suggestion=f"Did you mean `{hint}`?" if hint else None)
    for required in ("layers", "data"):
        if required not in tree:
            raise fail(f"missing section `{required}`", (),
                       suggestion="Start from `designs/quickstart.yaml`.")
    version = tree.get("netlens", FORMAT_VERSION)
    if version != FORMAT_VERSION:
        raise fail("unsupported format version", ("netlens",), expected=str(FORMAT_VERSION), found=version)

    variables = find_variables(tree, file)
    known = {v.path for v in variables}
    for p in values or {}:
        if p not in known:
            raise DesignError(f"no variable cell at `{p}`", file=file,
                              expected="one of " + (", ".join(sorted(known)) or "(none)"))
    data = resolve(tree, values)
    for dotted, value in (overrides or {}).items():
        _set(data, dotted.split("."), value)

    sections: dict[str, Any] = {}
    for key, model in SECTIONS.items():
        if model is None:
            continue
        raw = data.get(key) or {}
        if not isinstance(raw, dict):
            raise fail(f"`{key}` must be a mapping", (key,), expected="`key: value` lines", found=raw)
        try:
            sections[key] = model(**raw)
        except ValidationError as e:
            raise _pydantic_error(e, model, key, fail) from None
        except DesignError as e:
            keys = (key,) + tuple(x for x in (e.path or "").split(".")[1:] if x)
            raise e.located(file=file, line=locate(keys), path=e.path or key) from None

    seed = data.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise fail("`seed` must be a whole number", ("seed",), expected="an integer", found=seed)
    rows = Expander(file, locate).expand(data["layers"])
    chosen = {v.path: (values or {}).get(v.path, v.start) for v in variables}
    return Design(
        name=str(data.get("name") or path.stem), about=str(data.get("about") or ""), seed=seed,
        rows=rows, variables=variables, file=path, tree=tree, resolved=data, values=chosen,
        **sections,
    )


def _set(tree: dict, keys: list[str], value: Any) -> None:
    for k in keys[:-1]:
        tree = tree.setdefault(k, {})
    tree[keys[-1]] = value


def _pydantic_error(e: ValidationError, model: type[BaseModel], section: str, fail) -> DesignError:
    err = e.errors()[0]
    loc = tuple(x for x in err["loc"])
    keys = (section,) + loc
    name = str(loc[0]) if loc else section
    if err["type"] == "extra_forbidden":
        hint = suggest(name, list(model.model_fields))
        return fail(f"unknown field `{name}` in `{section}`", keys,
                    expected="one of " + ", ".join(model.model_fields),
                    suggestion=f"Did you mean `{hint}`?" if hint else None)
    expected = None
    if err["type"] == "literal_error":
        expected = err.get("ctx", {}).get("expected")
        hint = suggest(str(err.get("input")), [x.strip(" '") for x in (expected or "").replace(" or ", ",").split(",")])
        return fail(f"invalid `{name}`", keys, expected=expected, found=err.get("input"),
                    suggestion=f"Did you mean `{hint}`?" if hint else None)
    return fail(f"invalid `{name}`: {err['msg']}", keys, found=err.get("input"))
