"""What a study found, as one JSON-shaped document (docs/json.md's `optimize --json`), and the files.

The document is read from the storage, so it describes the whole study — every run of the
command and every machine — not only the trials this process ran (those are in `this_run`).
Tables, files and `--json` all come from it.
"""
from __future__ import annotations

import csv
import io
import os
from collections import Counter
from pathlib import Path
from typing import Any

from netlens.prescription.yamlio import dump, plain

FORMAT = 1
TOP = 5


def _values(t) -> list[float] | None:
    return list(t.values) if t.values is not None else None


def _feasible(t) -> bool:
    return all(v <= 0 for v in t.constraints.values())


def trial_row(plan, t) -> dict[str, Any]:
    from optuna.trial import TrialState

    vals = _values(t)
    return {
        "trial": t.number,
        "state": t.state.name.lower(),
        "value": (vals[0] if len(vals) == 1 else vals) if vals and t.state == TrialState.COMPLETE else None,
        "params": {k: plain(v) for k, v in plan.space.values(t.params).items()},
        "labels": dict(t.params),
        "contributions": t.user_attrs.get("contributions"),
        "operands": t.user_attrs.get("operands"),
        "constraints": dict(t.constraints),
        "feasible": _feasible(t),
        "steps": t.user_attrs.get("steps"),
        "start": bool(t.user_attrs.get("start")),
        "pruned_by": t.user_attrs.get("pruned_by") or ("pruner" if t.state == TrialState.PRUNED else None),
        "reason": t.user_attrs.get("pruned_reason") or t.user_attrs.get("failed_reason"),
        "worker": t.user_attrs.get("worker"),
    }


def summarize(plan, study, this_run: dict | None = None, top: int = TOP) -> dict[str, Any]:
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    state = Counter(t.state for t in trials)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    multi = len(plan.merits) > 1
    start = next((t for t in complete if t.user_attrs.get("start")), None)
    feasible = [t for t in complete if _feasible(t)]
    if multi:
        front = sorted(study.best_trials, key=lambda t: tuple(t.values))
        best = front[0] if front else None
        ranked = front + sorted((t for t in complete if t not in front), key=lambda t: tuple(t.values))
    else:
        ranked = sorted(feasible, key=lambda t: t.value) + \
            sorted((t for t in complete if not _feasible(t)), key=lambda t: t.value)
        front, best = [], (ranked[0] if feasible else None)
    planned = plan.design.train.steps
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    spent = sum(int(t.user_attrs.get("steps") or 0) for t in finished)
    importances, note = importance(plan, study, complete)
    doc = {
        "netlens": FORMAT,
        "study": plan.study,
        "storage": plan.place.shown,
        "design": str(plan.path),
        "objectives": [m.text for m in plan.merits],
        "constraints": [c.text for c in plan.constraints],
        "variables": {v.path: v.describe() for v in plan.space.variables},
        "start": trial_row(plan, start) if start else {"value": None, "trial": None},
        "best": None if best is None else {
            "value": _one(best), "params": trial_row(plan, best)["params"], "trial": best.number,
            "contributions": best.user_attrs.get("contributions"),
        },
        "trials": {
            "requested": plan.settings.trials,
            "complete": state[TrialState.COMPLETE], "pruned": state[TrialState.PRUNED],
            "failed": state[TrialState.FAIL], "running": state[TrialState.RUNNING],
            "waiting": state[TrialState.WAITING],
        },
        "pruned_by": dict(Counter(trial_row(plan, t)["pruned_by"] for t in trials
                                  if t.state == TrialState.PRUNED)),
        "steps": {"spent": spent, "planned": planned * len(finished),
                  "saved": (1 - spent / (planned * len(finished))) if finished else 0.0},
        "importances": importances,
        "importance_note": note,
        "top": [trial_row(plan, t) for t in ranked[:top]],
        "pareto": [trial_row(plan, t) for t in front] if multi else None,
        "best_design": None,
        "plots": [],
        "this_run": this_run or {},
    }
    return doc


def _one(t) -> float | list[float]:
    return t.values[0] if len(t.values) == 1 else list(t.values)


def importance(plan, study, complete: list) -> tuple[dict[str, float], str]:
    """fANOVA importances (Hutter et al. 2014) of the variables for the (first) objective, and
    one sentence on what they mean."""
    import warnings

    import optuna

    varied = [p for p in plan.space.paths if len({repr(t.params.get(p)) for t in complete}) > 1]
    if len(complete) < 2 or not varied:
        return {}, (f"Importances need at least two complete trials that differ; this study has "
                    f"{len(complete)} complete.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            imp = optuna.importance.get_param_importances(
                study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0), params=varied,
                target=(lambda t: t.values[0]) if len(plan.merits) > 1 else None)
    except (RuntimeError, ValueError) as e:
        return {}, f"Importances could not be computed ({e})."
    imp = {k: float(v) for k, v in sorted(imp.items(), key=lambda kv: -kv[1])}
    name, share = next(iter(imp.items()))
    what = "merit" if len(plan.merits) == 1 else f"first objective ({plan.merits[0].text})"
    head = (f"`{name}` accounts for {share:.0%} of how much the {what} varies between the "
            f"{len(complete)} complete trials")
    if len(imp) == 1:
        tail = "; it is the only variable cell that changed."
    elif share >= 0.5:
        tail = (", so it is the cell worth getting right, while cells near 0% hardly matter within "
                "the ranges searched and could be fixed at their best values.")
    else:
        tail = (", and the rest is spread over the other cells: they matter together, so keep them "
                "all variable.")
    return imp, f"Importance (fANOVA): {head}{tail}"


# -- files --------------------------------------------------------------------------------------
def best_design_text(plan, study, doc: dict, out_dir: Path) -> str | None:
    """The prescription with the best trial's values as each variable cell's `start:`."""
    from netlens.optimize.space import with_starts

    best = doc["best"]
    if best is None:
        return None
    t = study.get_trials(deepcopy=False)
    trial = next(x for x in t if x.number == best["trial"])
    tree = with_starts(plan.design.tree, plan.space, plan.space.values(trial.params))
    _rebase(tree, plan.design.base_dir, out_dir)
    start = doc["start"]["value"]
    head = (f"# Written by `netlens optimize`: study `{plan.study}`, best trial #{best['trial']}, "
            f"{' | '.join(doc['objectives'])} = {_fmt(best['value'])}"
            + (f" (the prescription as written: {_fmt(start)})" if start is not None else "") + ".\n"
            "# Each variable cell's `start:` holds the best value; `simulate` uses it, `optimize` "
            "searches on.\n")
    return head + dump(tree)


def _fmt(v) -> str:
    if isinstance(v, list):
        return ", ".join(_fmt(x) for x in v)
    return "—" if v is None else f"{v:.5g}"


def _rebase(tree, src: Path, dst: Path) -> None:
    """Keep a relative data file path valid when the prescription is written to another folder."""
    data = tree.get("data") if isinstance(tree, dict) else None
    source = data.get("source") if isinstance(data, dict) else None
    if not isinstance(source, str) or not source.endswith((".csv", ".npz")) or os.path.isabs(source):
        return
    if Path(src).resolve() != Path(dst).resolve():
        data["source"] = os.path.relpath(Path(src).resolve() / source, Path(dst).resolve())


def trials_csv(plan, study) -> str:
    rows = [trial_row(plan, t) for t in study.get_trials(deepcopy=False)]
    buf = io.StringIO()
    w = csv.writer(buf)
    names = [m.text for m in plan.merits]
    w.writerow(["trial", "state", *names, *plan.space.paths, "steps", "start", "pruned_by",
                "reason", "worker"])
    for r in rows:
        v = r["value"]
        vals = v if isinstance(v, list) else [v] * (1 if v is not None else 0)
        vals = vals or [None] * len(names)
        w.writerow([r["trial"], r["state"], *["" if x is None else x for x in vals],
                    *[r["labels"].get(p, "") for p in plan.space.paths], r["steps"] or 0,
                    int(r["start"]), r["pruned_by"] or "", r["reason"] or "", r["worker"] or ""])
    return buf.getvalue()

