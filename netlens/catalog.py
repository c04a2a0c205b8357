"""`netlens catalog`: the four registries — elements, inits, aberrations, corrections — as
JSON-shaped entries (rendered by `netlens.report.catalog`).

Nothing new is described here: every entry is read from its registry, so the catalog cannot
drift from the code. The one computed part is the activations' paraxial gains over input scale
(`netlens.paraxial.gaussian`) and the inits' critical solves (`netlens.paraxial.meanfield`).
Torch-free, like `paraxial`.
"""
from __future__ import annotations

import math
from typing import Any

from netlens.errors import DesignError, suggest

VERSION = 1
SCALES = (0.01, 0.1, 1.0, 10.0, 100.0)          # input mean square q for the activation tables
CRITICAL_BIASES = (0.0, 0.05)                   # σ_b² for the critical-init table

# The paraxial rule of each element kind (docs/paraxial.md, docs/theory.md §1): what `paraxial` computes per row.
RULES = {
    "layer": "q_out = σ_w²·q_in + σ_b²; backward gain σ_w²·fan_out/fan_in (conv: fan = channels × "
             "kernel area, fan_out ÷ stride²)",
    "activation": "q_out = E[φ(z)²], backward gain E[φ'(z)²], z ~ N(0, q_in) (closed forms for the "
                  "relu family, composite Gauss–Legendre otherwise)",
    "norm": "q_out = γ² + β² (1 at init); backward gain 1/var_in — batchnorm's compounds to "
            "π/(π−1) per relu block (Yang et al. 2019)",
    "pool": "approximate: max-pooling raises q to E[max²] of the window; average pooling divides "
            "the uncorrelated part by the window size",
    "reshape": "q and gradient unchanged (0 dB)",
    "regularizer": "training mode: power and gradient gain 1/(1−p); no critical point exists",
    "attention": "approximate, near-uniform attention at init: the value path averages the "
                 "position Gram over the attended positions (netlens.paraxial.sequence)",
    "recurrent": "approximate: the hidden state's position Gram, gates at their rms at init",
}


def _db(x: float) -> float | None:
    return round(10 * math.log10(x), 2) if x > 0 and math.isfinite(x) else None


# --- the lists ---------------------------------------------------------------------------------

def _aberrations() -> list[dict[str, Any]]:
    try:
        from netlens.aberrations import entries
    except ModuleNotFoundError:        # a build without the aberration catalog lists the rest
        return []
    return entries()


def listing() -> dict[str, Any]:
    """Every entry with its one-line role."""
    from netlens.corrections import CORRECTIONS
    from netlens.elements import ELEMENTS
    from netlens.elements.inits import INITS

    return {
        "netlens": VERSION,
        "elements": [{"name": c.name, "kind": c.kind, "summary": c.summary, "source": c.source,
                      "corrects": list(c.corrects)} for c in ELEMENTS.values()],
        "inits": [{"name": i.name, "summary": i.summary, "source": i.source,
                   "aliases": list(i.aliases)} for i in INITS.values()],
        "aberrations": [{"code": a["code"], "name": a["name"], "scope": a["scope"],
                         "summary": a["measures"], "source": a["thresholds"]["source"]}
                        for a in _aberrations()],
        "corrections": [{"name": c.name, "summary": c.summary, "source": c.citation,
                         "addresses": list(c.addresses)} for c in CORRECTIONS.values()],
    }


# --- one entry ----------------------------------------------------------------------------------

def entry(name: str) -> dict[str, Any]:
    """The full entry for `name`: an element, an init (or alias), an aberration code or a
    correction. Unknown names are argument errors with a suggestion."""
    from netlens.corrections import CORRECTIONS
    from netlens.elements import ELEMENTS
    from netlens.elements.inits import ALIASES, INITS

    codes = {a["code"]: a for a in _aberrations()}
    if name in ELEMENTS:
        return _element(name)
    if name in INITS or name in ALIASES:
        return _init(ALIASES.get(name, name))
    if name.upper() in codes:
        return _aberration(codes[name.upper()])
    if name in CORRECTIONS:
        return _correction(name)
    known = list(ELEMENTS) + list(INITS) + list(ALIASES) + list(codes) + list(CORRECTIONS)
    hint = suggest(name, known) or suggest(name.upper(), codes)
    raise DesignError(f"nothing in the catalog is called `{name}`",
                      expected="an element, init, aberration code or correction",
                      suggestion=(f"Did you mean `{hint}`? " if hint else "")
                      + "Run `netlens catalog` to list them all.")


def _options(cls) -> list[dict[str, Any]]:
    out = []
    for field, info in cls.options.model_fields.items():
        default = None if info.is_required() else info.default
        if field == "init":
            default = "default"
        out.append({"name": field, "default": default, "required": info.is_required()})
    return out


def _element(name: str) -> dict[str, Any]:
    from netlens.corrections import CORRECTIONS
    from netlens.elements import ELEMENTS

    cls = ELEMENTS[name]
    doc = {"netlens": VERSION, "type": "element", "name": cls.name, "kind": cls.kind,
           "summary": cls.summary, "source": cls.source,
           "formula": getattr(cls, "formula", None) or RULES.get(cls.kind, ""),
           "options": _options(cls), "short": cls.short, "corrects": list(cls.corrects),
           "inserted_by": [c.name for c in CORRECTIONS.values()
                           if getattr(c, "element", None) == name]}
    if cls.kind == "activation":
        doc["gains"] = activation_gains(name)
        doc["critical_sigma_w2"] = _critical(name)
    return doc


def activation_gains(name: str, **params: float) -> list[dict[str, Any]]:
    """Paraxial forward gain E[φ²]/q and backward gain E[φ'²] in dB over input scale q: a
    homogeneous activation (relu) has the same row at every scale, a saturating one does not."""
    from netlens.paraxial.gaussian import moments

    rows = []
    for q in SCALES:
        m = moments(name, q, **params)
        rows.append({"q": q, "forward_db": _db(m.power / q), "backward_db": _db(m.slope),
                     "mean_share": round(m.mean ** 2 / m.power, 3) if m.power > 0 else None})
    return rows


def _critical(name: str) -> dict[str, float | None]:
    """σ_w² on the edge of chaos for each σ_b² (None where there is none: sigmoid, gelu)."""
    from netlens.paraxial.meanfield import critical_sigma_w2

    out: dict[str, float | None] = {}
    for sb in CRITICAL_BIASES:
        try:
            out[f"{sb:g}"] = round(critical_sigma_w2(name, sb), 4)
        except ValueError:
            out[f"{sb:g}"] = None
    return out


def _init(name: str) -> dict[str, Any]:
    from netlens.elements.inits import INITS, InitSpec, weight_stats

    info = INITS[name]
    doc: dict[str, Any] = {"netlens": VERSION, "type": "init", "name": info.name,
                           "summary": info.summary, "source": info.source,
                           "aliases": list(info.aliases)}
    if name == "critical":
        from netlens.paraxial.gaussian import ACTIVATIONS

        doc["critical_sigma_w2"] = {a: _critical(a) for a in ACTIVATIONS}
    elif name != "meanfield":
        doc["sigma_w2"] = {f"{fi}→{fo}": round(weight_stats(InitSpec(name), fi, fo)[0], 4)
                           for fi, fo in ((64, 64), (64, 256), (256, 64))}
    return doc


def _aberration(entry: dict[str, Any]) -> dict[str, Any]:
    from netlens.corrections import CORRECTIONS
    from netlens.elements import ELEMENTS

    code = entry["code"]
    return {"netlens": VERSION, "type": "aberration", **entry,
            "corrected_by_elements": [c.name for c in ELEMENTS.values() if code in c.corrects],
            # empty by construction (`Correction.addresses` is derived from these lists); kept
            # in the document for scripts that read it
            "other_corrections": [c.name for c in CORRECTIONS.values() if code in c.addresses
                                  and c.name not in entry["corrections"]
                                  and not any(c.name in v["corrections"] for v in entry["cases"].values())]}


def _correction(name: str) -> dict[str, Any]:
    from netlens.corrections import CORRECTIONS

    c = CORRECTIONS[name]
    used = []
    for a in _aberrations():
        cases = [k for k, v in a["cases"].items() if name in v["corrections"]]
        if cases:
            used.append(f"{a['code']} ({', '.join(cases)})")
        elif name in a["corrections"]:
            used.append(a["code"])
    return {"netlens": VERSION, "type": "correction", "name": c.name, "summary": c.summary,
            "source": c.citation, "addresses": list(c.addresses), "needs": c.needs,
            "predicted_by_paraxial": c.paraxial, "suggested_for": used,
            "doc": (type(c).__doc__ or "").strip()}
