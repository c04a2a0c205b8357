"""`diagnose --fix` and `--verify`: apply the first applicable correction of each error-level
finding, then (with `--verify`) re-simulate with the same seed and keep only what helped.

The corrections are applied one after another, each to the prescription the previous one left;
row references in the findings follow the inserted and removed rows (`remap.compose`). A
finding is skipped when a correction already applied addresses it (FLOW's `he_init` also cures
the STAL it caused), when the paraxial model sees it flagged before and gone after, or when it
may be a symptom of a cause corrected above (`SYMPTOMS`): one cause at a time, as a lens
designer changes one element and re-traces.
Verification walks the same chain: each correction is simulated on top of the ones kept so
far and judged against that run, so every verdict is about one correction.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netlens.corrections import CORRECTIONS
from netlens.corrections.base import Case, NotApplicable
from netlens.corrections.findings import error_level, measured
from netlens.corrections.patch import Corrector, Patch, fixed_name
from netlens.corrections.remap import IndexMap, compose, remap_index
from netlens.corrections.text import unified
from netlens.prescription import Design

# What counts as better or worse in a verification run, beyond the aberration itself.
LOSS_TOLERANCE = 0.10        # a final train loss up by more than 10% is worse
ACCURACY_TOLERANCE = 0.02    # an accuracy down by more than 2 points is worse
PARAXIAL_CHECK = ("GAIN", "FLOW", "MEAN")   # codes the paraxial model can call resolved
# Findings that follow from another aberration (the judge's "causes before symptoms"): once the
# cause is corrected they are left for the next diagnosis instead of corrected blind. A
# diverged run's other readings come from the blow-up; a signal that vanishes or explodes kills
# units, saturates them, collapses the rank, leaves only the biases' means, stalls the loss.
_SIGNAL_SYMPTOMS = ("DEAD", "SATR", "RANK", "COND", "MEAN", "STEP", "INIT", "STAL")
SYMPTOMS = {
    "DIVG": ("FLOW", "GAIN", "SHRP", "STEP", "STAL", "DEAD", "SATR", "RANK", "COND", "MEAN", "INIT"),
    "FLOW": _SIGNAL_SYMPTOMS,
    "GAIN": _SIGNAL_SYMPTOMS,
}


@dataclass
class Step:
    """One error-level finding and what `--fix` does about it."""

    finding: dict[str, Any]
    case: Case
    patch: Patch | None = None
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        f = self.finding
        return {"finding": {"code": f["code"], "kind": f.get("kind"), "row": f.get("row"),
                            "severity": f["severity"], "value": f.get("value")},
                "correction": self.patch.name if self.patch else None,
                "did": self.patch.did if self.patch else None, "note": self.note}


@dataclass
class Fix:
    design: Design                  # the prescription as diagnosed
    original: str                   # its text
    steps: list[Step]
    path: Path                      # where NAME.fixed.yaml goes
    text: str | None = None         # the corrected prescription (None: nothing to change)
    fixed: Design | None = None
    written: bool = False
    verify: "Verification | None" = None

    @property
    def applied(self) -> list[Step]:
        return [s for s in self.steps if s.patch is not None]

    @property
    def diff(self) -> str:
        return unified(self.original, self.text, self.design.file.name, self.path.name) if self.text else ""

    def to_json(self) -> dict[str, Any]:
        return {"file": str(self.path) if self.written else None, "written": self.written,
                "steps": [s.to_json() for s in self.steps], "patch": self.diff or None}


def plan(design: Design, findings: list[dict[str, Any]], records: Any = None,
         limits: dict | None = None, out: Path | None = None,
         corrector: Corrector | None = None) -> Fix:
    """The chain of corrections `--fix` applies: the first applicable one for each error-level
    finding, most severe first, each on the result of the ones before it."""
    first = corrector or Corrector(design)
    original = first.original
    current, mapping, applied = first, {r.index: r.index for r in design.rows}, []
    steps = []
    run = measured(records)
    for f in findings:
        if f["severity"] != "error":
            continue
        row = remap_index(f.get("row"), mapping)
        case = Case.of({**f, "row": row}, **run)
        step = Step(f, case)
        steps.append(step)
        names = f.get("suggested") or [c["name"] if isinstance(c, dict) else c for c in f.get("corrections", [])]
        by = next((n for n in applied if n in names or case.code in CORRECTIONS[n].addresses), None)
        if by is not None:
            step.note = f"addressed by {by}, applied above"
            continue
        if _resolved(case.code, first, current, limits):
            step.note = f"the paraxial model predicts {case.code} resolved by the corrections above"
            continue
        cause = next((s.finding["code"] for s in steps if s.patch is not None
                      and case.code in SYMPTOMS.get(s.finding["code"], ())), None)
        if cause is not None:
            step.note = (f"may be a symptom of the {cause} corrected above: "
                         f"re-diagnose the fixed prescription (--verify shows whether it remains)")
            continue
        patches = current.suggest(case, names, None, error_level(limits, case.code))
        if not patches:
            step.note = "no applicable correction"
            continue
        step.patch = patches[0]
        applied.append(step.patch.name)
        mapping = compose(mapping, step.patch.index_map)
        current = Corrector(step.patch.design, step.patch.text)
    fix = Fix(design, original, steps, (out or design.file.parent) / fixed_name(design))
    if applied:
        fix.text, fix.fixed = current.text, current.design
    return fix


def _resolved(code: str, first: Corrector, current: Corrector, limits: dict | None) -> bool:
    if code not in PARAXIAL_CHECK or current is first or not limits or code not in limits:
        return False
    lim = limits[code]
    return lim.severity(first.before.value(code)) == "error" and \
        lim.severity(current.before.value(code)) != "error"


def write(fix: Fix) -> None:
    from netlens.report.files import write_text

    if fix.text is not None:
        write_text(fix.path, fix.text)
        fix.written = True


# --- verification -------------------------------------------------------------------------------

@dataclass
class Trial:
    """A simulated prescription and its judgement."""

    design: Design
    text: str
    records: Any
    diagnosis: Any
    doc: dict[str, Any]
    run_dir: Path | None


@dataclass
class Verdict:
    step: Step
    kept: bool
    reason: str
    trial: Trial | None = None
    noise: dict[str, Any] | None = None     # --seeds N: per metric, before → after beyond noise?

    def to_json(self) -> dict[str, Any]:
        out = {"correction": self.step.patch.name, "finding": self.step.finding["code"],
               "kept": self.kept, "reason": self.reason}
        if self.trial is not None:
            out.update(run_dir=str(self.trial.run_dir) if self.trial.run_dir else None,
                       metrics=self.trial.doc["metrics"], divergence=self.trial.doc.get("divergence"),
                       aberrations=worst_by_code(self.trial))
        if self.noise is not None:
            out["noise"] = self.noise
        return out


@dataclass
class Verification:
    before: Trial
    after: Trial                  # the last kept state; the last trial when none was kept
    verdicts: list[Verdict] = field(default_factory=list)

    @property
    def kept(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.kept]

    def to_json(self) -> dict[str, Any]:
        b, a = worst_by_code(self.before), worst_by_code(self.after)
        return {"before": _summary(self.before), "after": _summary(self.after),
                "corrections": [v.to_json() for v in self.verdicts], "kept": bool(self.kept),
                "aberrations": {code: {"before": b[code], "after": a[code]} for code in b}}


def _summary(t: Trial) -> dict[str, Any]:
    return {"metrics": t.doc["metrics"], "findings": t.doc["findings"],
            "run_dir": str(t.run_dir) if t.run_dir else None, "divergence": t.doc.get("divergence")}


def verify(fix: Fix, before: Trial, *, at: str | int = "end", limits: dict | None = None,
           overrides: dict[str, Any] | None = None, progress: bool = False,
           seeds: int = 1) -> Verification:
    """Re-simulate the chain with the design's seed; keep a correction only if it helped.

    Each correction is applied to the prescription kept so far, simulated into
    `RUN/verify/N-name/`, judged the same way as the original, and compared with the last kept
    run. The file written afterwards holds only the kept corrections."""
    result = Verification(before, before)
    base = before
    run = measured(before.records)
    mapping: IndexMap = {r.index: r.index for r in before.design.rows}
    all_kept = True
    for n, step in enumerate(fix.applied, 1):
        f = step.finding
        patch = step.patch              # planned on exactly the corrections kept so far
        if not all_kept:                # an earlier one was dropped: apply this one without it
            case = Case.of({**f, "row": remap_index(f.get("row"), mapping)}, **run)
            try:
                patch = Corrector(base.design, base.text).correct(step.patch.name, case)
            except NotApplicable as e:
                result.verdicts.append(Verdict(step, False, f"not applicable without the dropped "
                                                            f"corrections: {e}"))
                continue
        run_dir = (before.run_dir / "verify" / f"{n}-{patch.name}") if before.run_dir else None
        trial = simulate_text(patch.text, fix.design.file, at=at, limits=limits, overrides=overrides,
                              run_dir=run_dir, progress=progress)
        if getattr(trial.records, "interrupted", False):
            result.verdicts.append(Verdict(step, False, "interrupted before the end: not judged", trial))
            break
        kept, reason = judge_step(f["code"], base, trial, limits)
        verdict = Verdict(step, kept, reason, trial)
        if seeds > 1:             # before → after against the noise floor (netlens tolerance's rule)
            verdict.noise = _over_seeds(base, trial, fix.design.file, seeds, overrides)
            verdict.reason += "; at " + str(seeds) + " seeds: " + ", ".join(
                f"{m} {v['verdict']}" for m, v in verdict.noise.items())
        result.verdicts.append(verdict)
        if kept:
            base = trial
            mapping = compose(mapping, patch.index_map)
        all_kept = all_kept and kept
    tried = [v.trial for v in result.verdicts if v.trial is not None]
    result.after = base if base is not before or not tried else tried[-1]
    fix.verify = result
    fix.text, fix.fixed = (base.text, base.design) if base is not before else (None, None)
    return result


_SEED_STATS: dict[tuple, Any] = {}


def _over_seeds(before: Trial, after: Trial, file: Path, seeds: int, overrides) -> dict[str, Any]:
    from netlens.tolerance.comparison import beyond_noise, seed_stats

    def stats(t: Trial):
        key = (t.text, seeds, repr(sorted((overrides or {}).items())))
        if key not in _SEED_STATS:
            _SEED_STATS[key] = seed_stats(t.text, file, seeds, overrides, first=t.records)
        return _SEED_STATS[key]

    return beyond_noise(stats(before), stats(after))


def simulate_text(text: str, file: Path, *, at: str | int, limits: dict | None,
                  overrides: dict[str, Any] | None, run_dir: Path | None, progress: bool) -> Trial:
    """Load a prescription text as if it were `file`, simulate it, judge it, write its run folder."""
    from netlens.aberrations import judge
    from netlens.api import progress_bar
    from netlens.diagnose import write_diagnosis
    from netlens.prescription import design_from_text
    from netlens.runs import simulate_document, write_run
    from netlens.simulate import simulate

    design = design_from_text(text, Path(file), overrides=overrides)
    bar = progress_bar(design.train.steps, f"verify {design.name}") if progress else None
    if bar is None:
        run = simulate(design)
    else:
        with bar:
            task = bar.add_task(f"verify {design.name}", total=design.train.steps, loss="—")
            run = simulate(design, on_step=lambda step, loss: bar.update(
                task, completed=step, loss=f"{loss:.4g}"))
    dx = judge(run.records, run.trace, at, limits)
    if run_dir is not None:
        write_run(run, simulate_document(run, run_dir), run_dir)
        doc = write_diagnosis(design, run.trace, run.records, run_dir, dx, plot=False)
    else:
        from netlens.report.diagnosis import diagnose_doc

        doc = diagnose_doc(design, run.trace, run.records, None, dx)
    return Trial(design, text, run.records, dx, doc, run_dir)


# --- judging one correction --------------------------------------------------------------------

def worst(trial: Trial, code: str) -> tuple[str, float | None]:
    """The most severe finding of `code` in a trial: (severity, value); ("ok", None) if none."""
    for f in trial.doc["findings"]:          # most severe first
        if f["code"] == code and f["severity"] in ("warn", "error"):
            return f["severity"], f.get("value")
    return "ok", None


RANK = {"ok": 0, "info": 0, "warn": 1, "error": 2}


def _diverged(t: Trial) -> bool:
    return t.doc.get("divergence") is not None or any(
        f["code"] == "DIVG" and f["severity"] == "error" for f in t.doc["findings"])


def _errors(t: Trial) -> int:
    return sum(f["severity"] == "error" for f in t.doc["findings"])


def judge_step(code: str, before: Trial, after: Trial, limits: dict | None) -> tuple[bool, str]:
    """Did the correction help? Its own aberration must improve (less severe, or the same
    severity with a value nearer the healthy range) or the run must train better, and nothing
    may get worse: no new divergence, no more error findings, no higher final loss, no lower
    accuracy."""
    mb, ma = before.doc["metrics"], after.doc["metrics"]
    (sb, vb), (sa, va) = worst(before, code), worst(after, code)
    lim = (limits or {}).get(code)
    target = RANK[sa] < RANK[sb] or (
        sa == sb != "ok" and lim is not None and vb is not None and va is not None
        and lim.badness(va) < lim.badness(vb))
    worse, better = [], []
    if _diverged(after) and not _diverged(before):
        worse.append("the run now diverges")
    if _diverged(before) and not _diverged(after):
        better.append("no longer diverges")
    if _errors(after) > _errors(before):
        worse.append(f"error findings {_errors(before)} → {_errors(after)}")
    lb, la = mb.get("train_loss"), ma.get("train_loss")
    if lb is not None and la is not None:
        if la > lb * (1 + LOSS_TOLERANCE) + 1e-6:
            worse.append(f"final train loss {lb:.4g} → {la:.4g}")
        elif la < lb * (1 - LOSS_TOLERANCE):
            better.append(f"final train loss {lb:.4g} → {la:.4g}")
    for key in ("train_accuracy", "val_accuracy"):
        ab, aa = mb.get(key), ma.get(key)
        if ab is not None and aa is not None:
            if aa < ab - ACCURACY_TOLERANCE:
                worse.append(f"{key.replace('_', ' ')} {ab:.3f} → {aa:.3f}")
            elif aa > ab + ACCURACY_TOLERANCE:
                better.append(f"{key.replace('_', ' ')} {ab:.3f} → {aa:.3f}")
    change = f"{code} {_show(sb, vb)} → {_show(sa, va)}"
    if worse:
        return False, "made things worse: " + "; ".join(worse) + f" ({change})"
    if not target and not better:
        return False, f"did not help: {change}, losses and accuracies unchanged"
    return True, "helped: " + "; ".join(([change] if target else []) + better)


def _show(severity: str, value: float | None) -> str:
    if severity == "ok" or value is None:
        return "ok"
    return f"{severity} ({value:.3g})"


def worst_by_code(trial: Trial) -> dict[str, dict[str, Any]]:
    """Per aberration code: the worst severity and value in a trial."""
    from netlens.aberrations import CATALOG

    out = {}
    for code in CATALOG:
        severity, value = worst(trial, code)
        out[code] = {"severity": severity, "value": value}
    return out


# --- the command ------------------------------------------------------------------------------

def fix_result(result: Any, *, verify_runs: bool = False, overrides: dict[str, Any] | None = None,
               out: Path | None = None, progress: bool = False, seeds: int = 1) -> Fix:
    """`diagnose --fix` (and `--verify`) on a diagnose result (`netlens.diagnose.Result`):
    plan the chain, verify it if asked, write NAME.fixed.yaml, and add `fix` (and `verify`) to
    the result's document."""
    from netlens.corrections.findings import attach

    doc, dx = result.doc, result.diagnosis
    corrector = Corrector(result.design)
    if any("suggested" not in f for f in doc["findings"]):
        attach(doc, result.design, result.records, dx.limits, corrector)
    fix = plan(result.design, doc["findings"], result.records, dx.limits, out, corrector)
    if verify_runs and fix.applied:
        before = Trial(result.design, corrector.original, result.records, dx, doc, result.run_dir)
        verify(fix, before, at=dx.requested, limits=dx.limits, overrides=overrides, progress=progress,
               seeds=seeds)
    write(fix)
    doc["fix"] = fix.to_json()
    if fix.verify is not None:
        doc["verify"] = fix.verify.to_json()
    return fix
