"""Corrections: named, cited, pure transformations of a prescription (docs/corrections.md).

Each correction is one small class registered by name; `correct` applies one to a design and
returns a `Patch` (the corrected YAML, its diff, the validated design, the row-index map and,
where the paraxial model can compute it, the predicted effect); `suggest` lists the corrections
for a finding, most direct first.

    from netlens.corrections import Case, correct, suggest
    patch = correct(design, "he_init")
    print(patch.diff)
    for p in suggest(design, Case(code="FLOW", value=-55.0)): ...
"""
from __future__ import annotations

from netlens.corrections.base import Case, Correction, NotApplicable

CORRECTIONS: dict[str, Correction] = {}


def register(cls: type[Correction]) -> type[Correction]:
    CORRECTIONS[cls.name] = cls()
    return cls


# Importing the modules fills the registry (order: the order `netlens catalog` lists them in).
from netlens.corrections import inits, sequence, structure, training  # noqa: E402,F401
from netlens.corrections.patch import Corrector, Patch, correct, for_code, suggest  # noqa: E402

__all__ = ["CORRECTIONS", "Case", "Correction", "Corrector", "NotApplicable", "Patch", "correct",
           "for_code", "register", "suggest"]
