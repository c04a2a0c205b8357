"""The plan every process of one tolerance run agrees on: the design, its operands, the merit,
the spec, the study — and the runs each part needs.

`Plan.build` checks everything that can be checked before training (exit 2 on a mistake): the
operand paths, the spec, the seeds, the parts asked for. The study is named after the design and a
hash of what its runs depend on (the prescription without its `about`, `optimize`, `diagnose` and
`tolerance` sections, and the flags' overrides), so editing the design starts a fresh study while a
re-run of the same design finds every run it already has.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from netlens.errors import DesignError, suggest
from netlens.tolerance.operands import Spec, Tolerance
from netlens.tolerance.runs import RunSpec, same_seeds
from netlens.tolerance.settings import PARTS, Settings

NOISE_SOURCES = ("seed", "init", "order")
INVERSE_REACH = 16.0      # bisection looks this far: ×16 / ÷16 for a factor, 4 × the widest delta
INVERSE_STEPS = 5         # bisection halvings per side (log space: within 2^(4/32) ≈ 9%)


@dataclass
class Plan:
    path: Path
    design: Any
    task: str
    settings: Settings
    merit: Any                          # optimize's Merit
    operands: dict[str, Tolerance]
    measures: list[str]
    spec: Spec | None
    place: Any                          # optimize's storage Place
    study: str
    section: dict

    @classmethod
    def build(cls, path: str | Path, settings: Settings) -> "Plan":
        from netlens.data import describe
        from netlens.optimize.merit import parse_merit
        from netlens.optimize.storage import default_url, place
        from netlens.paraxial.trace import trace
        from netlens.prescription import load_design
        from netlens.tolerance.operands import measures, operands, parse_spec
        from netlens.train.outputs import loss_outputs

        path = Path(path)
        design = load_design(path, overrides={**settings.overrides(), "probe.hessian": False})
        section = dict(design.tolerance.model_extra or {})
        _settle(settings, section, design)
        with design.blame():
            info = describe(design.data, design.base_dir)
            trace(design, info, loss_outputs(design.train, info))
            merit_text = settings.merit or (design.optimize.model_extra or {}).get("merit") or "val_loss"
            merit = parse_merit(merit_text, info.task, "--merit" if "merit" in settings.flagged
                                else "tolerance.merit")
            ops = operands(design, section)
            names = measures(info.task, hessian=False)
            spec = None
            if settings.spec:
                spec = parse_spec(settings.spec, names, "--spec" if "spec" in settings.flagged
                                  else "tolerance.spec")
        if not ops and "sensitivity" in settings.parts():
            raise design.locate(DesignError("there is nothing to perturb: `defaults: false` and no "
                                            "operand listed", path="tolerance",
                                            suggestion="List an operand, e.g. `train.lr: {factor: [0.5, 2]}`."))
        for name in settings.inverse or []:
            if name not in ops:
                hint = suggest(name, list(ops))
                raise DesignError(f"unknown tolerance operand `{name}`", path="--inverse",
                                  expected="one of " + ", ".join(ops),
                                  suggestion=f"Did you mean `{hint}`?" if hint else None)
            if not ops[name].numeric:
                raise DesignError(f"`{name}` is not numeric: inverse sensitivity bisects a number",
                                  path="--inverse", suggestion="Pick e.g. train.lr.")
        study = settings.study or f"{design.name}-tolerance-{_fingerprint(design, settings)}"
        return cls(path, design, info.task, settings, merit, ops, names, spec,
                   place(settings.storage or default_url(design)), study, section)

    # -- the runs of each part ---------------------------------------------------------------
    @property
    def base(self) -> int:
        return self.design.seed

    def noise_runs(self, source: str = "seed") -> list[RunSpec]:
        """n runs that differ only in `source`: seed (all three streams), init or order."""
        n, s = self.settings.seeds, self.base
        out = []
        for k in range(n):
            if source == "seed":
                seeds = same_seeds(s + k)
            elif source == "init":
                seeds = (s, s + k, s)
            else:
                seeds = (s, s, s + k)
            out.append(RunSpec((), seeds))
        return out

    def perturbations(self) -> list[tuple[Tolerance, Any]]:
        return [(t, p) for t in self.operands.values() for p in t.points]

    def sensitivity_runs(self, t: Tolerance, point: Any) -> list[RunSpec]:
        seeds = [same_seeds(self.base + k) for k in range(self.settings.seeds)]
        if t.mode == "twin":
            return [RunSpec((), s, twin=True) for s in seeds]
        return [RunSpec(((t.name, t.value(point)),), s) for s in seeds]

    def instability_runs(self) -> list[RunSpec]:
        return [RunSpec((), same_seeds(self.base), kind="instability")]

    def yield_draws(self) -> list[dict[str, Any]]:
        """The Monte Carlo samples: every numeric operand drawn at once, a fresh seed each."""
        numeric = [t for t in self.operands.values() if t.numeric]
        out = []
        for i in range(self.settings.monte_carlo):
            rng = np.random.default_rng([self.base, 7, i])
            out.append({t.name: t.draw(rng) for t in numeric})
        return out

    def yield_runs(self) -> list[RunSpec]:
        return [RunSpec(tuple(sorted(d.items())), same_seeds(self.base + 1000 + i))
                for i, d in enumerate(self.yield_draws())]

    def inverse_operands(self) -> list[Tolerance]:
        if self.spec is None:
            return []
        names = self.settings.inverse
        if names is None:
            names = ["train.lr"] if "train.lr" in self.operands else []
        return [self.operands[n] for n in names]

    def value_runs(self, t: Tolerance, value: Any) -> list[RunSpec]:
        return [RunSpec(((t.name, value),), same_seeds(self.base + k)) for k in range(self.settings.seeds)]


def _settle(settings: Settings, section: dict, design) -> None:
    """The section's settings under the flags; then the checks that need no training."""
    for key in ("seeds", "spec", "merit", "monte_carlo", "inverse"):
        if key in section and key not in settings.flagged:
            setattr(settings, key, section[key])
    where = "--seeds" if "seeds" in settings.flagged else "tolerance.seeds"
    if isinstance(settings.seeds, bool) or not isinstance(settings.seeds, int) or settings.seeds < 2:
        raise design.locate(DesignError(
            "the noise floor needs at least 2 seeds: one run has no spread to measure", path=where,
            found=settings.seeds, suggestion="Use --seeds 3 or more (5 is the default)."))
    if settings.workers < 1:
        raise DesignError("--workers is at least 1", path="--workers", found=settings.workers)
    for p in settings.only or []:
        if p not in PARTS:
            hint = suggest(p, PARTS)
            raise DesignError(f"unknown part `{p}`", path="--only", expected="a comma-separated list of "
                              + ", ".join(PARTS), suggestion=f"Did you mean `{hint}`?" if hint else None)
    if "yield" in settings.parts() and not settings.monte_carlo:
        raise DesignError("the yield needs Monte Carlo samples", path="--only",
                          suggestion="Add --monte-carlo 20 (and a --spec).")
    if settings.monte_carlo and not settings.spec:
        raise DesignError("the yield is the fraction of runs meeting a spec, and none is given",
                          path="--monte-carlo",
                          suggestion="Add e.g. --spec \"val_accuracy >= 0.95\".")
    if settings.inverse and not settings.spec:
        raise DesignError("inverse sensitivity needs a spec", path="--inverse",
                          suggestion="Add e.g. --spec \"val_accuracy >= 0.95\".")


def _fingerprint(design, settings: Settings) -> str:
    tree = {k: v for k, v in design.resolved.items() if k not in ("about", "optimize", "diagnose", "tolerance")}
    text = json.dumps({"tree": tree, "overrides": settings.overrides(), "format": 1},
                      sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:8]
