"""`netlens compare A.yaml B.yaml [C.yaml …]`: each design over the same seeds, side by side, and
for each metric whether B (C, …) is better, worse, or indistinguishable from A at n seeds.

Each design's runs are its tolerance noise floor (the seed group: runs that differ only in the
seed), in its own tolerance study — so `compare` after `tolerance` trains nothing new, and a
second compare trains only what is missing. The verdict uses the noise floor's rule
(`netlens.tolerance.stats`): a difference is a result only when |Δ| > 2·√(sd_a²/n + sd_b²/n);
the effect size is Δ over the pooled sd, signed so that positive is better.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

from netlens.tolerance.operands import HIGHER_IS_BETTER
from netlens.tolerance.settings import Settings
from netlens.tolerance.stats import RULE, Stat, difference

FORMAT = 1
METRICS = ("val_loss", "val_error", "val_accuracy", "train_loss", "train_accuracy", "params")


@dataclass
class CompareResult:
    doc: dict
    interrupted: bool = False

    def to_json(self) -> dict:
        return self.doc


def compare(paths: list[str | Path], settings: Settings | None = None,
            on_progress: Callable[[dict], None] | None = None) -> CompareResult:
    from netlens.errors import DesignError
    from netlens.tolerance.engine import Engine
    from netlens.tolerance.plan import Plan

    settings = settings or Settings()
    if len(paths) < 2:
        raise DesignError("compare needs at least two designs", found=" ".join(map(str, paths)),
                          suggestion="Run e.g. `netlens compare a.yaml b.yaml --seeds 5`.")
    one = replace(settings, only=["noise"], spec=None, monte_carlo=0, inverse=None)
    plans = [Plan.build(p, replace(one, flagged=list(one.flagged) + ["spec", "monte_carlo", "inverse"]))
             for p in paths]                  # every design checked before any training
    designs = []
    for plan in plans:
        specs = plan.noise_runs("seed")
        done = Engine(plan, on_progress).ensure(specs, label=f"compare {plan.design.name}")
        rs = [done[s.key] for s in specs if done[s.key] is not None and "failed" not in done[s.key]]
        metrics = {k: Stat.of(r["values"].get(k) for r in rs) for k in METRICS if k in plan.measures}
        metrics["findings"] = Stat.of(_findings(r, plan) for r in rs)
        codes = [c for c in plan.measures if c.isupper()]
        aberrations = {c: Stat.of(r["values"].get(c) for r in rs) for c in codes}
        designs.append({"name": plan.design.name, "file": str(plan.path), "study": plan.study,
                        "metrics": {k: s.to_json() for k, s in metrics.items()},
                        "aberrations": {c: s.to_json() for c, s in aberrations.items() if s.n and s.mean},
                        "diverged": sum(bool(r.get("diverged")) for r in rs),
                        "failed": len(specs) - len(rs), "_stats": metrics})
    verdicts = []
    a = designs[0]
    for b in designs[1:]:
        for k in a["_stats"]:
            if k not in b["_stats"]:
                continue
            verdicts.append(_verdict(k, a, b))
    for d in designs:
        d.pop("_stats")
    names = [d["name"] for d in designs]
    doc = {"netlens": FORMAT, "seeds": settings.seeds, "rule": RULE, "reference": names[0],
           "designs": designs, "verdicts": verdicts}
    return CompareResult(doc)


def _findings(r: dict, plan) -> float:
    """Aberration findings at warn or error (a code's severity score counts warn 1, error 2)."""
    return float(sum(1 for c in plan.measures if c.isupper() and (r["values"].get(c) or 0) > 0))


def _verdict(metric: str, a: dict, b: dict) -> dict[str, Any]:
    sa, sb = a["_stats"][metric], b["_stats"][metric]
    d = difference(sa, sb)
    sign = 1.0 if metric in HIGHER_IS_BETTER else -1.0      # positive: b is better
    if not d.beyond:
        verdict = "indistinguishable"
    else:
        verdict = "better" if sign * d.delta > 0 else "worse"
    sig = d.sigmas * sign + 0.0 if not math.isnan(d.sigmas) else d.sigmas     # + 0.0: no −0
    return {"metric": metric, "a": a["name"], "b": b["name"], "verdict": verdict, "sigmas": sig,
            "delta": d.delta, "resolution": 2 * d.se, "a_mean": sa.mean, "b_mean": sb.mean,
            "n": [sa.n, sb.n]}


# -- diagnose --verify --seeds N ---------------------------------------------------------------------
VERIFY_METRICS = ("val_loss", "val_accuracy", "train_loss")


def seed_stats(text: str, file: Path, seeds: int, overrides: dict | None = None,
               first: Any = None) -> dict[str, Stat]:
    """A prescription text trained over `seeds` seeds (the design's seed + k, all three streams),
    sequentially in this process; `first` (records of seed + 0, already trained) is reused."""
    from netlens.prescription import design_from_text
    from netlens.simulate import Seeds, simulate

    design = design_from_text(text, Path(file), overrides=overrides)
    values: dict[str, list] = {m: [] for m in VERIFY_METRICS}
    for k in range(seeds):
        if k == 0 and first is not None:
            rec = first
        else:
            s = design.seed + k
            rec = simulate(design, seeds=Seeds(s, s, s)).records
        end = rec.at("end") if rec.snapshots else None
        for m in VERIFY_METRICS:
            v = getattr(end, m, None) if end is not None else None
            values[m].append(v if rec.divergence is None else None)
    return {m: Stat.of(v) for m, v in values.items()}


def beyond_noise(before: dict[str, Stat], after: dict[str, Stat]) -> dict[str, Any]:
    """Per metric: better / worse / indistinguishable, by the noise floor's rule."""
    out = {}
    for m in VERIFY_METRICS:
        a, b = before[m], after[m]
        if not a.n or not b.n:
            continue
        d = difference(a, b)
        sign = 1.0 if m in HIGHER_IS_BETTER else -1.0
        verdict = "indistinguishable" if not d.beyond else ("better" if sign * d.delta > 0 else "worse")
        out[m] = {"before": a.to_json(), "after": b.to_json(), "verdict": verdict,
                  "sigmas": d.sigmas * sign + 0.0 if not math.isnan(d.sigmas) else d.sigmas}
    return out
