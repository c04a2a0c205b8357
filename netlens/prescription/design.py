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
MAX_SEED = 2**32 - 1          # numpy's and torch's seeds both accept [0, 2³²)
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def slug(text: str) -> str:
    """A safe folder and file name from any text: letters, digits, `.`, `_`, `-`; ≤ 64 chars."""
    out = re.sub(r"[^A-Za-z0-9._-]+", "-", str(text)).strip("-._")[:64].strip("-._")
    return out or "design"


def check_name(value: object, what: str = "`name`") -> str | None:
    """Why `value` is not a safe label for folders and files, or None when it is. A name becomes
    runs/NAME, NAME.optuna.db and NAME.best.yaml: it must not contain a path."""
    if not isinstance(value, str) or isinstance(value, bool):
        return f"{what} must be text"
    if NAME_RE.fullmatch(value) is None:
        return (f"{what} must be a plain label, since it names folders and files: letters, digits, "
                "`.`, `_` and `-`, starting with a letter or digit, at most 64 characters")
    return None
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
        raise DesignError("a prescription is a YAML mapping with `layers`, `data` and `train`; "
                          + (f"this file holds {_kind(tree)}" if tree is not None else "this file is empty"),
                          file=file, line=1 if tree is not None else None,
                          suggestion="Start from `designs/quickstart.yaml`.")
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
    if version != FORMAT_VERSION or isinstance(version, bool):
        raise fail("unsupported format version", ("netlens",), expected=f"the number {FORMAT_VERSION}",
                   found=version if not isinstance(version, str) else f'"{_short(version)}" (text)',
                   suggestion=f"Write `netlens: {FORMAT_VERSION}` (no quotes)."
                   if str(version) == str(FORMAT_VERSION) else None)
    if "name" in tree and tree["name"] is not None:
        why = check_name(tree["name"], "a name")
        if why is not None:
            raise fail(why, ("name",), found=_short(tree["name"]),
                       suggestion=f"Write e.g. `name: {slug(tree['name'])}`.")

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
        if key == "data" and isinstance(raw, str):       # `data: digits`: the source alone
            raw = {"source": raw}
        if not isinstance(raw, dict):
            raise fail(f"`{key}` must be a mapping", (key,), expected="`key: value` lines", found=raw)
        try:
            sections[key] = model(**raw)
        except ValidationError as e:
            raise _pydantic_error(e, model, key, fail, raw) from None
        except DesignError as e:
            keys = (key,) + tuple(x for x in (e.path or "").split(".")[1:] if x)
            raise e.located(file=file, line=locate(keys), path=e.path or key) from None

    seed = data.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise fail("`seed` must be a whole number from 0 to 2³² − 1", ("seed",),
                   expected=f"an integer in [0, {MAX_SEED}]", found=_short(seed))
    _check_thresholds(sections["diagnose"], fail)
    rows = Expander(file, locate).expand(data["layers"])
    chosen = {v.path: (values or {}).get(v.path, v.start) for v in variables}
    return Design(
        name=str(data.get("name") or slug(path.stem)), about=str(data.get("about") or ""), seed=seed,
        rows=rows, variables=variables, file=path, tree=tree, resolved=data, values=chosen,
        **sections,
    )


def _kind(value: Any) -> str:
    return {str: "a line of text", list: "a list", int: "a number", float: "a number",
            bool: "true/false"}.get(type(value), type(value).__name__)


def _short(value: Any, limit: int = 80) -> Any:
    """A value as a message may show it: long text cut, control characters escaped."""
    if isinstance(value, str):
        text = value.encode("unicode_escape").decode("ascii") if not value.isprintable() else value
        return text if len(text) <= limit else text[:limit] + "…"
    return value


def _check_thresholds(spec: DiagnoseSpec, fail) -> None:
    """`diagnose.thresholds` checked when the design is read, so a typo stops `paraxial` and
    `simulate` too, not only `diagnose`. None set (the usual case): nothing to check, and the
    aberrations (a package that registers all of them) stay unimported — `paraxial` starts faster."""
    if not spec.thresholds:
        return
    from netlens.aberrations.thresholds import resolve as thresholds

    try:
        thresholds(spec.thresholds)
    except DesignError as e:
        keys = tuple(x for x in (e.path or "diagnose.thresholds").split("."))
        raise fail(e.message, keys, expected=e.expected, found=e.found,
                   suggestion=e.suggestion) from None


def _set(tree: dict, keys: list[str], value: Any) -> None:
    for k in keys[:-1]:
        tree = tree.setdefault(k, {})
    tree[keys[-1]] = value


def _real_loc(loc: tuple, raw: Any, missing: bool = False) -> tuple:
    """The part of a pydantic error location that names keys of the input: pydantic adds the
    union member it tried (`int`, `bool`, `HessianSpec`), which is no field of the prescription."""
    out = []
    node = raw
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        elif isinstance(node, dict) and isinstance(part, str):
            if last and missing:      # a missing field
                out.append(part)
            continue                  # a union member's name: skip it
        else:
            break
        out.append(part)
    return tuple(out)


def _best_error(e: ValidationError, raw: Any) -> dict:
    """Of a union's errors, the one from the branch the input was written for: a mapping given
    where `true`/`false` or a mapping is expected is judged as the mapping."""
    errors = e.errors()
    first = errors[0]
    loc = _real_loc(tuple(first["loc"]), raw, first["type"] == "missing")
    value: Any = raw
    for part in loc:
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and isinstance(part, int) and 0 <= part < len(value):
            value = value[part]
        else:
            value = None
    if isinstance(value, dict):
        deeper = [x for x in errors if len(_real_loc(tuple(x["loc"]), raw, x["type"] == "missing")) > len(loc)
                  or x["type"] in ("extra_forbidden", "missing")]
        if deeper:
            return deeper[0]
    return first


_PLAIN_MSG = {"int_type": "expected a whole number", "float_type": "expected a number",
              "bool_type": "expected true or false", "string_type": "expected text",
              "finite_number": "expected a finite number (not .inf or .nan)",
              "int_from_float": "expected a whole number"}


def _pydantic_error(e: ValidationError, model: type[BaseModel], section: str, fail,
                    raw: Any = None) -> DesignError:
    err = _best_error(e, raw)
    loc = (_real_loc(tuple(err["loc"]), raw, err["type"] == "missing") if raw is not None
           else tuple(err["loc"]))
    keys = (section,) + loc
    name = str(loc[-1]) if loc else section
    if err["type"] == "extra_forbidden":
        fields = list(model.model_fields)
        sub = model
        for part in loc[:-1]:       # an unknown key inside a nested mapping (probe.hessian.x)
            ann = sub.model_fields.get(str(part)) if hasattr(sub, "model_fields") else None
            nested = [a for a in getattr(ann.annotation, "__args__", (ann.annotation,))
                      if isinstance(a, type) and issubclass(a, BaseModel)] if ann else []
            if nested:
                sub = nested[0]
                fields = list(sub.model_fields)
        where = ".".join(map(str, (section,) + loc[:-1]))
        hint = suggest(name, fields)
        return fail(f"unknown field `{name}` in `{where}`", keys,
                    expected="one of " + ", ".join(fields),
                    suggestion=f"Did you mean `{hint}`?" if hint else None)
    # A field that takes one of several kinds (`fixed: log` or a number of steps): pydantic reports
    # one error per alternative at the same place; the message names them all.
    alts = [x for x in e.errors() if (x["type"] in _PLAIN_MSG or x["type"] == "literal_error")
            and (_real_loc(tuple(x["loc"]), raw) if raw is not None else tuple(x["loc"])) == loc]
    if len(alts) > 1:
        kinds = list(dict.fromkeys(x.get("ctx", {}).get("expected") if x["type"] == "literal_error"
                                   else _PLAIN_MSG[x["type"]][9:] for x in alts))
        found = err.get("input")
        words = [w.strip(" '") for x in alts if x["type"] == "literal_error"
                 for w in x.get("ctx", {}).get("expected", "").replace(" or ", ",").split(",")]
        hint = suggest(str(found), words) if isinstance(found, str) else None
        return fail(f"invalid `{name}`", keys, expected=" or ".join(kinds), found=_short(found),
                    suggestion=f"Did you mean `{hint}`?" if hint else "Write one of those.")
    if err["type"] == "literal_error":
        expected = err.get("ctx", {}).get("expected")
        hint = suggest(str(err.get("input")), [x.strip(" '") for x in (expected or "").replace(" or ", ",").split(",")])
        return fail(f"invalid `{name}`", keys, expected=expected, found=_short(err.get("input")),
                    suggestion=f"Did you mean `{hint}`?" if hint else None)
    if err["type"] in _PLAIN_MSG:
        found = err.get("input")
        note = None
        if isinstance(found, str):
            found = f'"{_short(found)}" (text)'
            note = "Write numbers and true/false without quotes."
        return fail(f"invalid `{name}`", keys, expected=_PLAIN_MSG[err["type"]][9:], found=found,
                    suggestion=note)
    bound = _BOUNDS.get(err["type"])
    if bound is not None:
        sign, limit = bound, next(iter(err.get("ctx", {}).values()), None)
        return fail(f"invalid `{name}`", keys, expected=f"a number {sign} {limit}",
                    found=_short(err.get("input")), suggestion=f"Use a value {sign} {limit}.")
    return fail(f"invalid `{name}`: {err['msg']}", keys, found=_short(err.get("input")))


_BOUNDS = {"greater_than": ">", "greater_than_equal": "≥", "less_than": "<", "less_than_equal": "≤"}
