"""Tolerance operands: what is perturbed, by how much, and the quantities read off each run.

A tolerance operand names a cell of the prescription by the same path optimize's variables use
(`train.lr`, `data.batch`, `layers[1].linear.width`) — or one of four that are not a single cell:
`init.sigma_w2` (every weight row's initial variance, as a factor), `hidden.width` (every hidden
weight row's width or channels, as a factor), `train.precision` (the parameter dtype) and `ulp`
(the 1-ulp twin: the lowest bit of one weight fed by a non-constant input flipped at init).

The defaults (SPEC's tolerancing table): lr ×0.5 ×2, batch ×0.5 ×2, σ_w² ±20%, hidden width ×0.5,
steps ×0.5, precision float64 and bfloat16, the 1-ulp twin. A prescription adds or replaces
operands in its `tolerance:` section:

    tolerance:
      seeds: 5                                  # runs per group (default 5, at least 2)
      spec: "val_accuracy >= 0.95"              # what the design must meet
      defaults: true                            # false: only the operands below
      train.lr: {factor: [0.5, 2]}              # multiply the cell's value
      layers[1].linear.width: {delta: [-32, 32]}   # add to it (integers stay integers)
      train.momentum: {values: [0.8, 0.95], distribution: normal}

Each listed value is a row of the sensitivity table. For the Monte Carlo yield a numeric operand
is drawn from `distribution` — `uniform` over its range (log-uniform for a `log` operand) or
`normal` (centred on the design's value, the range being ±2σ, clipped to it).
"""
from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass, field
from typing import Any

from netlens.errors import DesignError, suggest

_KEYS = re.compile(r"[^.\[\]]+")
VIRTUAL = ("init.sigma_w2", "hidden.width", "ulp")
SETTINGS = ("seeds", "spec", "merit", "defaults", "monte_carlo", "inverse")
PRECISIONS = ("float32", "float64", "bfloat16")


def keys(path: str) -> tuple:
    return tuple(int(k) if k.isdigit() else k for k in _KEYS.findall(path))


@dataclass(frozen=True)
class Tolerance:
    """One operand. `mode`: factor (× the value), delta (+ the value), values (set to each),
    twin (the 1-ulp twin). `points` are the sensitivity rows' perturbations."""

    name: str
    mode: str
    points: tuple
    kind: str = "float"            # float | int | choice
    log: bool = False              # bisection and Monte Carlo in log space
    distribution: str = "uniform"
    about: str = ""
    nominal: Any = None            # the design's value (1.0 for a virtual factor)

    @property
    def numeric(self) -> bool:
        return self.mode in ("factor", "delta")

    def value(self, point: Any) -> Any:
        """The cell value for a perturbation point."""
        if self.mode == "factor":
            v = self.nominal * point
        elif self.mode == "delta":
            v = self.nominal + point
        else:
            return point
        return max(1, int(round(v))) if self.kind == "int" else float(v)

    def label(self, point: Any) -> str:
        if self.mode == "factor":
            return f"×{point:g}"
        if self.mode == "delta":
            return f"{point:+g}"
        if self.mode == "twin":
            return "1 ulp"
        return str(point)

    def span(self) -> tuple[float, float]:
        """The range of values the operand may take (for Monte Carlo), nominal included."""
        vals = [self.value(p) for p in self.points] + [self.nominal]
        return float(min(vals)), float(max(vals))

    def draw(self, rng) -> Any:
        lo, hi = self.span()
        if self.distribution == "normal":
            mid = math.log(self.nominal) if self.log else self.nominal
            a, b = (math.log(lo), math.log(hi)) if self.log else (lo, hi)
            x = min(b, max(a, rng.normal(mid, (b - a) / 4 or 1e-12)))
        else:
            x = rng.uniform(math.log(lo), math.log(hi)) if self.log else rng.uniform(lo, hi)
        v = math.exp(x) if self.log else x
        return max(1, int(round(v))) if self.kind == "int" else float(v)

    def to_json(self) -> dict:
        return {"name": self.name, "mode": self.mode, "points": list(self.points), "kind": self.kind,
                "log": self.log, "distribution": self.distribution, "nominal": self.nominal,
                "about": self.about}


def _get_keys(tree: Any, ks: tuple) -> Any:
    node = tree
    for k in ks:
        node = node[k]
    return node


def put(tree: Any, path: str, value: Any) -> None:
    """Set a cell; a row's short form (`linear: 128`) is written out (`linear: {width: …}`)."""
    ks = keys(path)
    node = tree
    for k in ks[:-1]:
        if isinstance(node, dict) and k not in node:
            node[k] = {}             # a section left at its defaults
        nxt = node[k]
        if not isinstance(nxt, (dict, list)):
            node[k] = nxt = {"width" if k == "linear" else "channels": nxt}
        node = nxt
    node[ks[-1]] = value


def lookup(tree: Any, path: str) -> Any:
    """A cell's value; a row's short form (`linear: 128`) answers `.width` / `.channels`."""
    ks = keys(path)
    try:
        return _get_keys(tree, ks)
    except (KeyError, IndexError, TypeError):
        if len(ks) >= 2 and ks[-1] in ("width", "channels"):
            parent = _get_keys(tree, ks[:-1])
            if isinstance(parent, int) and not isinstance(parent, bool):
                return parent
        raise


# -- the defaults ------------------------------------------------------------------------------
def defaults(design) -> list[Tolerance]:
    t = design.train
    out = [Tolerance("train.lr", "factor", (0.5, 2.0), log=True, nominal=t.lr,
                     about="the learning rate")]
    if design.data.batch != "full":
        out.append(Tolerance("data.batch", "factor", (0.5, 2.0), kind="int", log=True,
                             nominal=int(design.data.batch), about="the mini-batch size"))
    out += [Tolerance("init.sigma_w2", "factor", (0.8, 1.2), nominal=1.0,
                      about="every weight row's initial variance σ_w² (weights × √factor)"),
            Tolerance("hidden.width", "factor", (0.5,), nominal=1.0,
                      about="every hidden weight row's width (channels)"),
            Tolerance("train.steps", "factor", (0.5,), kind="int", nominal=t.steps,
                      about="the training steps"),
            Tolerance("train.precision", "values",
                      tuple(p for p in ("float64", "bfloat16") if p != t.precision)
                      or ("float32",), kind="choice", nominal=t.precision,
                      about="the parameter precision"),
            Tolerance("ulp", "twin", (1,), kind="choice", nominal=0,
                      about="the 1-ulp twin: the lowest bit of one weight fed by a non-constant "
                            "input flipped at init")]
    return out


def from_section(design, section: dict[str, Any]) -> list[Tolerance]:
    """The operands a prescription's `tolerance:` section names (not its settings)."""
    out = []
    tree = design.resolved
    for path, spec in section.items():
        if path in SETTINGS:
            continue
        where = f"tolerance.{path}"
        if path in ("ulp",):
            raise design.locate(DesignError("the 1-ulp twin takes no options", path=where))
        if not isinstance(spec, dict):
            raise design.locate(DesignError(
                "a tolerance operand is a mapping", path=where, found=spec,
                expected="`{factor: [..]}`, `{delta: [..]}` or `{values: [..]}`",
                suggestion="Write e.g. `train.lr: {factor: [0.5, 2]}`."))
        modes = [m for m in ("factor", "delta", "values") if m in spec]
        extra = set(spec) - {"factor", "delta", "values", "distribution", "log"}
        if extra or len(modes) != 1:
            raise design.locate(DesignError(
                f"unknown option `{sorted(extra)[0]}`" if extra else "give one of factor, delta, values",
                path=where, expected="factor, delta or values (and distribution, log)",
                suggestion="Write e.g. `train.lr: {factor: [0.5, 2]}` or "
                           "`layers[1].linear.width: {delta: [-32, 32]}`."))
        mode = modes[0]
        points = spec[mode]
        points = points if isinstance(points, list) else [points]
        if not points:
            raise design.locate(DesignError("a tolerance operand needs at least one value", path=where))
        dist = spec.get("distribution", "uniform")
        if dist not in ("uniform", "normal"):
            raise design.locate(DesignError("unknown distribution", path=f"{where}.distribution",
                                            expected="uniform or normal", found=dist))
        nominal = virtual_nominal(path)
        if nominal is None:
            nominal = cell(design, tree, path, where)
        kind = "choice"
        if mode != "values":
            if isinstance(nominal, bool) or not isinstance(nominal, (int, float)):
                raise design.locate(DesignError(f"`{mode}` needs a number; the cell holds {nominal!r}",
                                                path=where, suggestion="Use `values: [...]` for a choice."))
            for p in points:
                if isinstance(p, bool) or not isinstance(p, (int, float)):
                    raise design.locate(DesignError(f"`{mode}` values are numbers", path=where, found=p))
                if mode == "factor" and p <= 0:
                    raise design.locate(DesignError("a factor is positive", path=where, found=p))
            kind = "int" if isinstance(nominal, int) and path not in VIRTUAL else "float"
        log = bool(spec.get("log", mode == "factor" and path.endswith(("lr", "batch"))))
        out.append(Tolerance(path, mode, tuple(points), kind=kind, log=log, distribution=dist,
                             nominal=nominal, about="from the prescription's `tolerance:` section"))
    return out


def virtual_nominal(path: str) -> Any:
    return 1.0 if path in ("init.sigma_w2", "hidden.width") else None


def cell(design, tree: Any, path: str, where: str) -> Any:
    """The design's value at `path`, or an exit-2 error naming the closest path."""
    try:
        return lookup(tree, path)
    except (KeyError, IndexError, TypeError):
        ks = keys(path)
        section = getattr(design, str(ks[0]), None) if ks[0] in ("train", "data", "probe") else None
        if len(ks) == 2 and section is not None and ks[1] in type(section).model_fields:
            return getattr(section, ks[1])          # a field left at its default
        known = cell_paths(tree)
        hint = suggest(path, known + list(VIRTUAL) + ["train.precision"])
        raise design.locate(DesignError(
            f"no cell `{path}` in this prescription", path=where,
            expected="a path as optimize's variables write it, e.g. train.lr or layers[1].linear.width",
            suggestion=f"Did you mean `{hint}`?" if hint else "See `netlens tolerance --help`.")) from None


def cell_paths(tree: Any, prefix: tuple = ()) -> list[str]:
    from netlens.prescription.yamlio import path_str

    out = []
    if isinstance(tree, dict):
        for k, v in tree.items():
            out += cell_paths(v, prefix + (k,))
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            out += cell_paths(v, prefix + (i,))
    elif prefix and prefix[0] not in ("tolerance", "optimize", "diagnose", "about", "name"):
        out.append(path_str(prefix))
    return out


def operands(design, section: dict[str, Any]) -> dict[str, Tolerance]:
    """The design's operands: the defaults (unless `defaults: false`), then the section's."""
    out: dict[str, Tolerance] = {}
    if section.get("defaults", True):
        out.update({t.name: t for t in defaults(design)})
    for t in from_section(design, section):
        out[t.name] = t
    return out


# -- applying a run's values -------------------------------------------------------------------
@dataclass
class Applied:
    """A design with operand values applied: its text, and what must happen to the built network
    (the σ_w² factor, the 1-ulp twin)."""

    text: str
    init_factor: float = 1.0
    twin: bool = False
    notes: list[str] = field(default_factory=list)


def apply(design, ops: dict[str, Tolerance], values: dict[str, Any], twin: bool = False) -> Applied:
    from netlens.prescription.yamlio import dump

    tree = copy.deepcopy(design.resolved)
    out = Applied("", twin=twin)
    for name, v in values.items():
        if name == "init.sigma_w2":
            out.init_factor = float(v)
        elif name == "hidden.width":
            _scale_widths(design, tree, float(v))
        elif name == "ulp":
            out.twin = out.twin or bool(v)
        else:
            put(tree, name, v)
    out.text = dump(tree)
    return out


def _scale_widths(design, tree: Any, factor: float) -> None:
    from netlens.corrections.base import hidden_weights, sites
    from netlens.corrections.edit import row_element

    for site in sites(hidden_weights(design)):
        el = site.rows[0].element
        option = "width" if el.name == "linear" else "channels"
        node = _get_keys(tree, site.keys)
        name, value = row_element(node)
        new = max(1, int(round(getattr(el.opts, option) * factor)))
        if isinstance(value, dict):
            value[option] = new
        else:
            node[name] = new


# -- what is read off a run ---------------------------------------------------------------------
HIGHER_IS_BETTER = ("val_accuracy", "train_accuracy")


def measures(task: str, hessian: bool) -> list[str]:
    """Every quantity recorded per run: optimize's operands, the accuracies, the aberration codes
    (SHRP only when the Hessian is probed)."""
    from netlens.optimize.operands import OPERANDS
    from netlens.optimize import aberrations

    names = [n for n, op in OPERANDS.items() if task in op.tasks]
    if task == "classification":
        names[1:1] = list(HIGHER_IS_BETTER)
    return names + [c for c in aberrations.codes() if hessian or c != "SHRP"]


def read(m, names: list[str]) -> dict[str, float | None]:
    """The measures of one run from optimize's `Measured` (aberrations judged once)."""
    from netlens.optimize.operands import OPERANDS, aberration_operand

    out: dict[str, float | None] = {}
    end = m.records.at("end") if m.records.snapshots else None
    for n in names:
        if n in HIGHER_IS_BETTER:
            v = getattr(end, n, None) if end is not None else None
        else:
            op = OPERANDS.get(n) or aberration_operand(n)
            v = op(m)
        out[n] = float(v) if v is not None and math.isfinite(v) else None
    return out


# -- the spec --------------------------------------------------------------------------------------
_SPEC = re.compile(r"^\s*(?P<op>[A-Za-z_]\w*)\s*(?P<cmp><=|>=|<|>)\s*(?P<bound>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$")
SPEC_HINT = "Write e.g. `--spec \"val_accuracy >= 0.95\"` or `--spec \"val_loss <= 0.2\"`."


@dataclass(frozen=True)
class Spec:
    operand: str
    cmp: str
    bound: float

    @property
    def text(self) -> str:
        return f"{self.operand} {self.cmp} {self.bound:g}"

    def holds(self, value: float | None) -> bool:
        if value is None or not math.isfinite(value):
            return False
        return {"<=": value <= self.bound, ">=": value >= self.bound,
                "<": value < self.bound, ">": value > self.bound}[self.cmp]


def parse_spec(text: Any, names: list[str], where: str = "--spec") -> Spec:
    m = _SPEC.match(text) if isinstance(text, str) else None
    if m is None:
        words = re.findall(r"[A-Za-z_]\w*", str(text))
        hint = next((suggest(w, names) for w in words if suggest(w, names)), None)
        raise DesignError("cannot read the spec: it names no operand" if not any(w in names for w in words)
                          else "cannot read the spec", path=where, found=text,
                          expected="`OPERAND >= NUMBER` or `OPERAND <= NUMBER`, OPERAND one of "
                                   + ", ".join(names[:8]) + ", …",
                          suggestion=(f"Did you mean `{hint} ...`? " if hint else "") + SPEC_HINT)
    op = m.group("op")
    if op not in names:
        hint = suggest(op, names)
        raise DesignError(f"the spec names no operand: `{op}` is not one", path=where, found=text,
                          expected="one of " + ", ".join(names),
                          suggestion=(f"Did you mean `{hint}`? " if hint else "") + SPEC_HINT)
    return Spec(op, m.group("cmp"), float(m.group("bound")))

