"""`run_tolerance()`: the whole of `netlens tolerance` as one function a notebook can call.

    from netlens.tolerance import Settings, run_tolerance
    result = run_tolerance("designs/quickstart.yaml", Settings(seeds=5, workers=2))
    result.doc["resolution"]["val_loss"]; result.doc["sensitivity"][0]
    result.to_json()                      # the `--json` document, also written as tolerance.json

Steps: plan (exit 2 on a mistake) → enqueue every run the asked parts need and train what the
study does not hold yet (`engine.Engine.ensure`) → bisect the inverse sensitivities, a round of
runs at a time → summarize → write tolerance.json and the plots into the output folder.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from netlens.tolerance.plan import INVERSE_REACH, INVERSE_STEPS, NOISE_SOURCES, Plan
from netlens.tolerance.runs import RunSpec
from netlens.tolerance.settings import Settings
from netlens.tolerance.stats import RULE, Stat, difference, wilson

FORMAT = 1
RUNS = Path("runs")
VERDICT_RANK = {"breaks": 2, "sensitive": 1, "within_noise": 0}


@dataclass
class ToleranceResult:
    doc: dict
    interrupted: bool = False
    errors: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return self.doc

    @property
    def folder(self) -> Path | None:
        return Path(self.doc["out"]) if self.doc.get("out") else None


def run_tolerance(path: str | Path, settings: Settings | None = None, out: Path | None = None,
                  on_progress: Callable[[dict], None] | None = None, write: bool = True) -> ToleranceResult:
    from sqlalchemy.exc import SQLAlchemyError

    from netlens.errors import RunError

    try:
        return _run(Path(path), settings or Settings(), out, on_progress, write)
    except SQLAlchemyError as e:
        raise RunError(f"the study's storage failed: {e.__class__.__name__}: "
                       f"{str(e).splitlines()[0]}") from None


def _run(path: Path, settings: Settings, out, on_progress, write: bool) -> ToleranceResult:
    from netlens.tolerance.engine import Engine

    plan = Plan.build(path, settings)
    parts = settings.parts()
    engine = Engine(plan, on_progress)
    groups: dict[str, list[RunSpec]] = {}
    if "noise" in parts:
        for src in NOISE_SOURCES:
            groups[f"noise:{src}"] = plan.noise_runs(src)
    if "sensitivity" in parts:
        groups["noise:seed"] = plan.noise_runs("seed")
        for t, p in plan.perturbations():
            groups[f"sens:{t.name}:{t.label(p)}"] = plan.sensitivity_runs(t, p)
    if "instability" in parts:
        groups["instability"] = plan.instability_runs()
    if "yield" in parts:
        groups["yield"] = plan.yield_runs()
    every = [s for specs in groups.values() for s in specs]
    done = engine.ensure(every, label="tolerance")
    doc = _head(plan, parts)
    if "noise:seed" in groups:
        base = _group(plan, done, groups["noise:seed"])
        doc["noise"] = {k: s.to_json() for k, s in base.items()}
        doc["resolution"] = {k: s.resolution for k, s in base.items()}
        if "noise" in parts:
            doc["noise_sources"] = {src: {k: s.to_json() for k, s in _group(plan, done, groups[f"noise:{src}"]).items()}
                                    for src in NOISE_SOURCES if src != "seed"}
        doc["spec_as_written"] = _spec_holds(plan, done, groups["noise:seed"])
    if "sensitivity" in parts:
        doc["sensitivity"], doc["rss"] = _sensitivity(plan, done, groups)
        inverse_runs = _inverse(plan, engine, done, groups["noise:seed"])
        if inverse_runs is not None:
            doc["inverse"] = inverse_runs
    if "instability" in parts:
        doc["instability"] = _instability(done[groups["instability"][0].key])
    if "yield" in parts:
        doc["yield"] = _yield(plan, done, groups["yield"])
    doc["runs"] = _counts(engine)
    if write:
        folder = Path(out) if out is not None else RUNS / f"{plan.design.name}-tolerance"
        from netlens.report.files import write_json
        from netlens.tolerance import plots

        doc["out"] = str(folder)
        doc["plots"] = [str(p) for p in plots.draw(doc, folder)]
        write_json(folder / "tolerance.json", doc)
    return ToleranceResult(doc, errors=[e for b in engine.log for e in b.errors])


def _head(plan: Plan, parts: list[str]) -> dict[str, Any]:
    return {"netlens": FORMAT, "design": str(plan.path), "name": plan.design.name,
            "study": plan.study, "storage": plan.place.shown, "merit": plan.merit.text,
            "seeds": plan.settings.seeds, "parts": parts, "rule": RULE,
            "spec": plan.spec.text if plan.spec else None,
            "operands": [t.to_json() for t in plan.operands.values()],
            "noise": {}, "resolution": {}, "sensitivity": [], "plots": [], "out": None}


# -- groups of runs ------------------------------------------------------------------------------
def _ok(r: dict | None) -> bool:
    return r is not None and "failed" not in r


def _group(plan: Plan, done: dict, specs: list[RunSpec]) -> dict[str, Stat]:
    rs = [done[s.key] for s in specs if _ok(done[s.key])]
    out = {k: Stat.of(r["values"].get(k) for r in rs) for k in plan.measures}
    if plan.merit.text not in out:
        out[plan.merit.text] = Stat.of(r.get("merit") for r in rs)
    return out


def _merit(plan: Plan, done: dict, specs: list[RunSpec]) -> Stat:
    return Stat.of(done[s.key].get("merit") for s in specs if _ok(done[s.key]))


def _spec_value(plan: Plan, done: dict, specs: list[RunSpec]) -> Stat:
    return Stat.of(done[s.key]["values"].get(plan.spec.operand) for s in specs if _ok(done[s.key]))


def _spec_holds(plan: Plan, done: dict, specs: list[RunSpec]) -> bool | None:
    """The spec on the mean over the runs; False when any run failed or diverged."""
    if plan.spec is None:
        return None
    rs = [done[s.key] for s in specs]
    if any(not _ok(r) or r.get("diverged") for r in rs):
        return False
    return plan.spec.holds(_spec_value(plan, done, specs).mean)


# -- sensitivity ---------------------------------------------------------------------------------
def _sensitivity(plan: Plan, done: dict, groups: dict) -> tuple[list[dict], dict]:
    base_specs = groups["noise:seed"]
    base = _group(plan, done, base_specs)
    base_merit = _merit(plan, done, base_specs)
    spec_base = _spec_holds(plan, done, base_specs)
    rows = []
    for t, p in plan.perturbations():
        specs = groups[f"sens:{t.name}:{t.label(p)}"]
        rs = [done[s.key] for s in specs]
        here = _group(plan, done, specs)
        merit = _merit(plan, done, specs)
        d = difference(base_merit, merit)
        failed = [r["failed"] for r in rs if not _ok(r)]
        diverged = sum(bool(r.get("diverged")) for r in rs if _ok(r))
        holds = _spec_holds(plan, done, specs)
        reason = ""
        if failed:
            verdict, reason = "breaks", f"{len(failed)} of {len(rs)} runs failed: {failed[0]}"
        elif diverged:
            verdict, reason = "breaks", f"{diverged} of {len(rs)} runs diverged"
        elif holds is False and spec_base:
            sv = _spec_value(plan, done, specs).mean
            verdict, reason = "breaks", f"misses the spec: {plan.spec.operand} {sv:.4g} (needs {plan.spec.text})"
        elif d.beyond:
            verdict = "sensitive"
            reason = f"|Δ| {abs(d.delta):.3g} > 2·SE {2 * d.se:.3g}"
        else:
            verdict = "within_noise"
            reason = f"|Δ| {abs(d.delta):.3g} ≤ 2·SE {2 * d.se:.3g}" if math.isfinite(d.delta) else "no result"
        rows.append({
            "operand": t.name, "perturbation": t.label(p), "value": None if t.mode == "twin" else t.value(p),
            "nominal": t.nominal, "about": t.about,
            "delta": {k: here[k].mean - base[k].mean if here[k].n and base[k].n else None for k in base},
            "merit": merit.to_json(), "merit_delta": d.delta, "se": d.se, "sigmas": d.sigmas,
            "verdict": verdict, "reason": reason, "diverged": diverged, "failed": len(failed),
            "spec_holds": holds,
        })
    rows.sort(key=lambda r: (-VERDICT_RANK[r["verdict"]], -_size(r["sigmas"])))
    finite = [r["merit_delta"] for r in rows if r["merit_delta"] is not None and math.isfinite(r["merit_delta"])]
    rss = math.sqrt(sum(x * x for x in finite)) if finite else math.nan
    sd = base_merit.sd
    return rows, {"delta": rss, "sigmas": rss / sd if sd and math.isfinite(sd) and sd > 0 else math.nan,
                  "rows": len(finite)}


def _size(x: float | None) -> float:
    if x is None or math.isnan(x):
        return -1.0
    return abs(x)


# -- inverse sensitivity -------------------------------------------------------------------------
class Bisection:
    """One side of one operand: from the design's value (spec met) toward `far`."""

    def __init__(self, t, side: int):
        self.t, self.side = t, side
        v0 = t.nominal
        if t.mode == "factor":
            far = v0 * INVERSE_REACH ** side
        else:
            widest = max(abs(p) for p in t.points) or 1
            far = v0 + side * INVERSE_REACH / 4 * widest
        if t.kind == "int":
            far = max(1, int(round(far)))
        self.good, self.bad, self.far = v0, None, far
        self.steps = 0
        self.open = False           # the spec still holds at the far end
        self.done = False

    def next(self) -> Any:
        if self.bad is None:
            return self.far
        if self.t.log and self.good > 0 and self.bad > 0:
            mid = math.sqrt(self.good * self.bad)
        else:
            mid = (self.good + self.bad) / 2
        if self.t.kind == "int":
            mid = int(round(mid))
            if mid in (self.good, self.bad):
                self.done = True
                return None
        return float(mid) if self.t.kind != "int" else mid

    def feed(self, value: Any, holds: bool) -> None:
        if self.bad is None:
            if holds:
                self.good, self.open, self.done = value, True, True
            else:
                self.bad = value
            return
        if holds:
            self.good = value
        else:
            self.bad = value
        self.steps += 1
        if self.steps >= INVERSE_STEPS:
            self.done = True

    def to_json(self) -> dict:
        return {"holds_to": self.good, "fails_at": self.bad, "open": self.open}


def _inverse(plan: Plan, engine, done: dict, base_specs: list[RunSpec]) -> list[dict] | None:
    ops = plan.inverse_operands()
    if not ops:
        return None
    if not _spec_holds(plan, done, base_specs):
        return [{"operand": t.name, "nominal": t.nominal, "spec": plan.spec.text, "low": None,
                 "high": None, "text": f"the design misses {plan.spec.text} as written: no margin"}
                for t in ops]
    sides = {(t.name, s): Bisection(t, s) for t in ops for s in (-1, 1)}
    while True:
        ask = {}
        for k, b in sides.items():
            if not b.done:
                v = b.next()
                if v is not None:
                    ask[k] = v
        if not ask:
            break
        runs = {k: plan.value_runs(sides[k].t, v) for k, v in ask.items()}
        got = engine.ensure([s for rs in runs.values() for s in rs], label="inverse sensitivity")
        for k, v in ask.items():
            sides[k].feed(v, bool(_spec_holds(plan, got, runs[k])))
    out = []
    for t in ops:
        lo, hi = sides[(t.name, -1)], sides[(t.name, 1)]
        out.append({"operand": t.name, "nominal": t.nominal, "spec": plan.spec.text,
                    "low": lo.good, "high": hi.good, "down": lo.to_json(), "up": hi.to_json(),
                    "text": _margin_text(t, lo, hi, plan.spec.text)})
    return out


def _margin_text(t, lo: Bisection, hi: Bisection, spec: str) -> str:
    def v(x):
        return f"{x:.3g}" if isinstance(x, float) else str(x)

    closed = [f"rise to {v(hi.good)}" if not hi.open else None,
              f"fall to {v(lo.good)}" if not lo.open else None]
    closed = [c for c in closed if c]
    still = [v(x.good) for x in (hi, lo) if x.open]
    text = f"{t.name} {v(t.nominal)} "
    if closed:
        text += "can " + " and ".join(closed) + f" before {spec} fails"
    if still:
        text += (", and " if closed else "") + f"still meets {spec} at {' and '.join(still)} (the ends searched)"
    return text


# -- instability -----------------------------------------------------------------------------------
def _instability(r: dict | None) -> dict[str, Any]:
    if not _ok(r):
        return {"relative_distance": None, "doubling_steps": None, "disagreement": None,
                "seed_disagreement": None, "unstable": None,
                "failed": (r or {}).get("failed", "not run")}
    keys = ("relative_distance", "doubling_steps", "disagreement", "seed_disagreement", "unstable",
            "initial_distance", "curve", "flipped", "twin_diverged", "seed_seeds")
    from netlens.tolerance.runs import doubling

    out = {k: r.get(k) for k in keys}
    out["doubling_steps"] = doubling(r.get("curve") or [])
    return out


# -- yield ---------------------------------------------------------------------------------------
def _yield(plan: Plan, done: dict, specs: list[RunSpec]) -> dict[str, Any]:
    draws = plan.yield_draws()
    samples, passed = [], 0
    for d, s in zip(draws, specs):
        r = done[s.key]
        value = r["values"].get(plan.spec.operand) if _ok(r) else None
        ok = _ok(r) and not r.get("diverged") and plan.spec.holds(value)
        passed += ok
        samples.append({"values": d, "value": value, "passed": ok,
                        "diverged": bool(_ok(r) and r.get("diverged"))})
    n = len(samples)
    low, high = wilson(passed, n)
    return {"spec": plan.spec.text, "operand": plan.spec.operand, "fraction": passed / n if n else math.nan,
            "low": low, "high": high, "n": n, "passed": passed,
            "interval": "Wilson score, 95%", "samples": samples}


def _counts(engine) -> dict[str, Any]:
    done = engine.seen
    trained = [x for b in engine.log for x in b.trained]
    return {"total": len(done), "trained_now": len(trained),
            "failed": sum(1 for r in done.values() if r is not None and "failed" in r),
            "seconds": round(sum(b.seconds for b in engine.log), 3),
            "workers": max((b.workers for b in engine.log), default=0)}
