"""What a correction is, what it is asked to treat, and the view of the stack it edits.

A correction is a pure transformation of a prescription (docs/corrections.md): it plans its edits on the
validated `Design` (rows, shapes, the activation after each weight row) and makes them on an
`Edit` of the round-trip YAML tree, one YAML row for a row that a `repeat:` stands for many times.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from netlens.corrections.edit import Edit, keys_of, row_element
from netlens.elements.activations import Activation
from netlens.elements.layers import Weighted
from netlens.prescription import Design, Row
from netlens.prescription.variables import is_variable


@dataclass(frozen=True)
class Case:
    """What a correction is asked to treat: a finding, or just an aberration code.

    `measured` holds run measurements a correction may take its parameters from:
    `hessian` (top Hessian eigenvalue λ), `preconditioned` (λ₁(P⁻¹H), Adam-family),
    `grad_norm` (median global gradient norm), `update_ratio` (log10 ‖ΔW‖/‖W‖)."""

    code: str | None = None
    row: int | None = None
    value: float | None = None
    severity: str | None = None
    kind: str | None = None             # the aberration's case: vanishing, exploding, adaptive …
    measured: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def of(cls, finding: Any, **measured: float) -> "Case":
        """From a finding: a JSON dict or any object with `code`, `row`, `value`, `severity`."""
        get = finding.get if isinstance(finding, Mapping) else lambda k: getattr(finding, k, None)
        value = get("value")
        return cls(code=get("code"), row=get("row"),
                   value=float(value) if isinstance(value, (int, float)) else None,
                   severity=get("severity"), kind=get("kind"),
                   measured={k: v for k, v in measured.items() if v is not None})


class NotApplicable(Exception):
    """The correction has nothing to change in this design (the message says why)."""


class Correction(ABC):
    """Base class; subclasses register by `name` (see `netlens.corrections.register`)."""

    name: ClassVar[str]
    summary: ClassVar[str]
    citation: ClassVar[str]
    needs: ClassVar[str] = "nothing from the finding"   # the parameters it takes from a finding
    paraxial: ClassVar[bool] = False              # the paraxial model predicts its effect
    uses_case: ClassVar[bool] = False             # its edit depends on the finding, not only the design

    @property
    def addresses(self) -> tuple[str, ...]:
        """The aberration codes this correction addresses, most direct first — derived, never
        declared: the codes whose correction lists (`Aberration.corrections` and each case's in
        `kinds`) name it, ordered by its position in them. The aberration modules are the one
        source of truth for what a finding lists, what `netlens catalog CODE` shows and this
        "addresses" column; to make a correction address a code, list it there."""
        from netlens.aberrations import CATALOG

        found = []
        for order, (code, ab) in enumerate(CATALOG.items()):
            lists = [tuple(ab.corrections)] + [tuple(case[1]) for case in ab.kinds.values()]
            places = [names.index(self.name) for names in lists if self.name in names]
            if places:
                found.append((min(places), order, code))
        return tuple(code for *_, code in sorted(found))

    def applies(self, design: Design, case: Case) -> bool:
        """True when the correction would change this design for this case."""
        try:
            return bool(self.plan(design, case))
        except NotApplicable:
            return False

    @abstractmethod
    def plan(self, design: Design, case: Case) -> Any:
        """What `apply` will change (a non-empty value), or raise NotApplicable."""

    @abstractmethod
    def apply(self, edit: Edit, design: Design, case: Case) -> str:
        """Make the edits on `edit`; return one line saying what changed."""

    def predict(self, design: Design, case: Case) -> dict[str, tuple[float, float]]:
        """Predictions not from the paraxial trace (code → (before, after)); none by default."""
        return {}


# --- the stack as corrections see it --------------------------------------------------------

@dataclass
class Site:
    """One YAML row and the expanded rows it stands for (several inside a `repeat:`)."""

    keys: tuple
    rows: list[Row]

    @property
    def indices(self) -> list[int]:
        return [r.index for r in self.rows]


def sites(rows: list[Row]) -> list[Site]:
    """Group expanded rows by their YAML row, in order of first appearance."""
    out: dict[str, Site] = {}
    for row in rows:
        out.setdefault(row.path, Site(keys_of(row.path), [])).rows.append(row)
    return list(out.values())


def chain(design: Design, row: Row) -> list[Row]:
    """The rows in the same chain as `row` (the top stack, or its residual branch)."""
    if row.parent is None:
        return design.top_rows()
    return [design.rows[i] for i in design.rows[row.parent].children]


def after(design: Design, row: Row) -> list[Row]:
    rows = chain(design, row)
    return rows[rows.index(row) + 1:]


def next_activation(design: Design, row: Row) -> Activation | None:
    """The activation a weight row feeds (norms may sit between), None if another weight row,
    a residual block or the end comes first."""
    for r in after(design, row):
        if isinstance(r.element, Activation):
            return r.element
        if r.element is None or isinstance(r.element, Weighted):
            return None
    return None


def head(design: Design) -> Row | None:
    """The last weight row of the top stack: the output layer, which corrections leave alone."""
    weighted = [r for r in design.top_rows() if isinstance(r.element, Weighted)]
    return weighted[-1] if weighted else None


def editable(design: Design, row: Row) -> bool:
    """A row a correction may rewrite: an element row, not a variable cell (`choose:` row) and
    not one whose options are a variable choice (optimize owns those)."""
    item = _item(design, row)
    name, value = row_element(item)
    return name is not None and not (is_variable(value) and "choose" in value)


def _item(design: Design, row: Row) -> Any:
    node = design.tree
    for k in keys_of(row.path):
        node = node[k]
    return node


def hidden_weights(design: Design, where: Callable[[Row], bool] = lambda r: True) -> list[Row]:
    """Weight rows other than the head that a correction may edit, filtered by `where`."""
    h = head(design)
    return [r for r in design.rows if isinstance(r.element, Weighted) and r is not h
            and editable(design, r) and where(r)]


def repeats(design: Design) -> list[tuple[tuple, int, list[Row]]]:
    """Each `repeat:` block as (its keys, its count, the expanded rows of its body)."""
    out = []

    def walk(items: Any, keys: tuple) -> None:
        if not isinstance(items, list):
            return
        for i, item in enumerate(items):
            k = keys + (i,)
            if isinstance(item, dict) and "repeat" in item and isinstance(item.get("of"), list):
                prefix = k + ("of",)
                rows = [r for r in design.rows if keys_of(r.path)[:len(prefix)] == prefix]
                out.append((k, _count(design, k), rows))
                walk(item["of"], prefix)
            elif isinstance(item, dict) and isinstance(item.get("residual"), list):
                walk(item["residual"], k + ("residual",))

    walk(design.tree.get("layers"), ("layers",))
    return out


def _count(design: Design, keys: tuple) -> int:
    node: Any = design.resolved        # the count may be a variable cell: use its value
    for k in keys:
        node = node[k]
    return int(node["repeat"])


def train_section(edit: Edit) -> Any:
    """The tree's `train:` mapping, created (at the end) if the prescription has none."""
    from ruamel.yaml.comments import CommentedMap

    if not isinstance(edit.tree.get("train"), dict):
        edit.tree["train"] = CommentedMap()
    return edit.tree["train"]


def sig(x: float, digits: int = 2) -> float:
    """A value rounded to `digits` significant figures, as a person would write it in YAML."""
    return float(f"{x:.{digits}g}")
