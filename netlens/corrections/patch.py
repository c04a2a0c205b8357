"""Applying corrections: one correction → a validated `Patch`; a finding → patches, most direct first."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from netlens.corrections.base import Case, Correction, NotApplicable
from netlens.corrections.edit import Edit
from netlens.corrections.predict import Paraxial, Prediction, paraxial
from netlens.corrections.remap import IndexMap, index_map, remap_references
from netlens.corrections.text import render, unified
from netlens.errors import DesignError
from netlens.prescription import Design, design_from_text
from netlens.prescription.yamlio import parse, plain

# Codes the paraxial model predicts, and their error level (docs/aberrations.md; the caller passes the
# design's own thresholds).
PARAXIAL_CODES = ("GAIN", "FLOW")
ERROR_DB = 40.0
# A paraxial correction must move the flagged value by at least this much to count as helping.
MIN_GAIN_DB = 1.0


@dataclass
class Patch:
    """A correction applied to a design: the new text and everything needed to judge it."""

    name: str
    summary: str
    citation: str
    did: str                       # one line: what changed
    text: str                      # the corrected prescription
    diff: str                      # unified diff against the user's file
    design: Design                 # the corrected prescription, validated
    index_map: IndexMap            # old row index → new (None: removed)
    prediction: Prediction | None = None
    notes: list[str] = field(default_factory=list)

    def info(self) -> dict:
        """What it did, why, and what the paraxial model predicts: the JSON beside the patch."""
        doc = {"summary": self.summary, "citation": self.citation, "did": self.did}
        if self.prediction is not None:
            doc["predicted"] = self.prediction.to_json()
        if self.notes:
            doc["notes"] = self.notes
        return doc

    def to_json(self) -> dict:
        return {"name": self.name, "patch": self.diff, **self.info()}


def fixed_name(design: Design) -> str:
    """`design.yaml` → `design.fixed.yaml` (docs/corrections.md)."""
    return design.file.with_suffix("").name + ".fixed.yaml"


def source_text(design: Design) -> str | None:
    """The user's file as written, if it still holds this design's tree (for an honest diff)."""
    try:
        text = Path(design.file).read_text(encoding="utf-8")
        return text if plain(parse(text, str(design.file))) == plain(design.tree) else None
    except (OSError, UnicodeDecodeError, DesignError):
        return None


def validate(text: str, design: Design) -> tuple[Design, Paraxial]:
    """Load the corrected text as a prescription and trace it (shapes, solves): a correction whose
    result is not a valid design is not applicable."""
    try:
        new = design_from_text(text, Path(design.file))
        return new, paraxial(new)
    except (DesignError, ValueError) as e:
        raise NotApplicable(f"the corrected prescription would be invalid: {e}") from None


def correct(design: Design, name: str, case: Case | None = None, *, before: Paraxial | None = None,
            text: str | None = None) -> Patch:
    """Apply correction `name` to `design` for `case`. Raises NotApplicable (with the reason) when
    it has nothing to change or its result would not validate."""
    from netlens.corrections import CORRECTIONS

    case = case or Case()
    c: Correction = CORRECTIONS[name]
    original = text if text is not None else source_text(design)
    edit = Edit(design.tree)
    did = c.apply(edit, design, case)
    new_text = render(edit.tree, original)
    new, after = validate(new_text, design)
    mapping = index_map(design, new, edit)
    notes = remap_references(edit.tree, mapping)
    again = render(edit.tree, original)
    if again != new_text:                        # references were renumbered
        new_text = again
        new, after = validate(new_text, design)
    prediction = None
    extra = c.predict(design, case)
    if c.paraxial or extra:
        b = (before or paraxial(design)) if c.paraxial else None
        values = {k: (b.value(k), after.value(k)) for k in PARAXIAL_CODES} if b is not None else {}
        prediction = Prediction(b, after if c.paraxial else None, {**values, **extra})
    base = original if original is not None else render(design.tree)
    return Patch(c.name, c.summary, c.citation, did, new_text,
                 unified(base, new_text, design.file.name, fixed_name(design)), new, mapping,
                 prediction, notes)


def for_code(code: str | None, names: Iterable[str] = ()) -> list[str]:
    """Correction names for an aberration: `names`, the aberration's own ordered list for the
    finding's case — the one source of truth (`Correction.addresses` is derived from these
    lists), so a finding lists what `netlens catalog CODE` shows. Without `names`, every
    correction that addresses `code`, most direct first."""
    from netlens.corrections import CORRECTIONS

    ordered = [n for n in names if n in CORRECTIONS]
    if ordered or code is None:
        return ordered
    return [c.name for c in CORRECTIONS.values() if code in c.addresses]


class Corrector:
    """The corrections of one design: its paraxial trace taken once, each patch made once.

    `text` is the prescription as the user wrote it (read from the design's file if it still
    holds this design); patches are rendered in its style and diffed against it."""

    def __init__(self, design: Design, text: str | None = None):
        self.design = design
        self.text = text if text is not None else source_text(design)
        self._before: Paraxial | None = None
        self._done: dict[tuple, Patch | NotApplicable] = {}

    @property
    def original(self) -> str:
        """The text patches are diffed against: the user's file, or the tree rendered."""
        return self.text if self.text is not None else render(self.design.tree)

    @property
    def before(self) -> Paraxial:
        if self._before is None:
            self._before = paraxial(self.design)
        return self._before

    def correct(self, name: str, case: Case | None = None) -> Patch:
        from netlens.corrections import CORRECTIONS

        case = case or Case()
        key = (name,) + ((case.code, case.row, case.value, case.kind,
                          tuple(sorted(case.measured.items())))
                         if CORRECTIONS[name].uses_case else ())
        if key not in self._done:
            try:
                self._done[key] = correct(self.design, name, case, before=self.before, text=self.text)
            except NotApplicable as e:
                self._done[key] = e
            except Exception as e:   # a diagnosis must not fail because one correction did
                self._done[key] = NotApplicable(f"could not be applied ({type(e).__name__}: {e})")
        done = self._done[key]
        if isinstance(done, NotApplicable):
            raise done
        return done

    def suggest(self, case: Case, names: Iterable[str] = (), skipped: dict[str, str] | None = None,
                error_db: float = ERROR_DB) -> list[Patch]:
        """Applicable corrections for `case`, most direct first.

        `names` is the aberration's own ordered list. For GAIN and FLOW the paraxial model ranks
        them: first those predicted to bring the flagged value under the error level
        `error_db`, then those predicted to improve it, then those it cannot judge (optimizer
        changes), each group in the aberration's order; a paraxial correction predicted not to
        help is left out. `skipped` collects the reason for each correction left out."""
        ranked = []
        for position, name in enumerate(for_code(case.code, names)):
            try:
                patch = self.correct(name, case)
            except NotApplicable as e:
                if skipped is not None:
                    skipped[name] = str(e)
                continue
            tier = _tier(patch, case, error_db)
            if tier is None:
                if skipped is not None:
                    skipped[name] = f"the paraxial model predicts no improvement of {case.code}"
                continue
            ranked.append((tier, position, patch))
        ranked.sort(key=lambda t: t[:2])
        return [p for _, _, p in ranked]


def suggest(design: Design, case: Case, names: Iterable[str] = (),
            skipped: dict[str, str] | None = None, error_db: float = ERROR_DB) -> list[Patch]:
    """`Corrector(design).suggest(...)`: the applicable corrections for `case`, most direct first."""
    return Corrector(design).suggest(case, names, skipped, error_db)


def _tier(patch: Patch, case: Case, error_db: float) -> int | None:
    if case.code not in PARAXIAL_CODES:
        return 0
    pred = patch.prediction
    if pred is None or pred.after is None:
        return 2
    was, now = abs(pred.before.value(case.code)), abs(pred.after.value(case.code))
    if now < was - MIN_GAIN_DB:
        return 0 if now <= error_db else 1
    return None
