"""The one table of thresholds: warn and error levels of every aberration, with their sources.

Each level starts from the published source it cites. A change is made only with a cited reason, recorded in the
entry's `calibration` (and so in `netlens catalog`). A prescription overrides levels with
`diagnose: {thresholds: {FLOW: {warn: 15, error: 30}}}` (or `FLOW: [15, 30]`; `null` turns a
level off), and the command line with `--threshold FLOW=15,30` (`STEP=-4:-1.5,-5.5:-1` for a
range, `-` to turn a level off).

How a value is compared (`sense`):
  above    value > level                 below    value < level
  beyond   |value| > level (both signs)  outside  value outside [low, high]
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Literal

from netlens.errors import DesignError, suggest

Level = float | tuple[float, float] | None
Sense = Literal["above", "below", "beyond", "outside"]


@dataclass(frozen=True)
class Limits:
    warn: Level
    error: Level
    sense: Sense
    unit: str
    source: str
    calibration: str = ""      # what changed from the starting values, and why

    def crosses(self, value: float, level: Level) -> bool:
        if level is None or value is None or math.isnan(value):
            return False
        if self.sense == "above":
            return value > level
        if self.sense == "below":
            return value < level
        if self.sense == "beyond":
            return abs(value) > level
        low, high = level
        return not (low <= value <= high)

    def severity(self, value: float) -> str:
        if self.crosses(value, self.error):
            return "error"
        if self.crosses(value, self.warn):
            return "warn"
        return "ok"

    def crossed(self, severity: str, value: float) -> float | list[float] | None:
        """The level a value crossed, signed like the value for `beyond`."""
        level = self.error if severity == "error" else self.warn
        if level is None:
            return None
        if self.sense == "beyond":
            return math.copysign(level, value)
        return list(level) if isinstance(level, tuple) else level

    def badness(self, value: float) -> float:
        """Larger is worse: orders flagged rows, worst first."""
        if self.sense == "above":
            return value
        if self.sense == "below":
            return -value
        if self.sense == "beyond":
            return abs(value)
        low, high = self.warn if self.warn is not None else self.error
        return max(low - value, value - high)

    def describe(self, severity: str, value: float) -> str:
        """`below −40 dB`, `> 0.4`, `outside [−4, −1.5]`."""
        level = self.crossed(severity, value)
        unit = f" {self.unit}" if self.unit and self.unit not in ("×", "fraction", "ratio", "") else ""
        if level is None:
            return "no threshold"
        if self.sense == "outside":
            return f"outside [{_n(level[0])}, {_n(level[1])}]{unit}"
        if self.sense == "beyond":
            return f"{'below' if value < 0 else 'above'} {_n(level, signed=True)}{unit}"
        return f"{'>' if self.sense == 'above' else '<'} {_n(level)}{unit}"

    def to_dict(self) -> dict[str, Any]:
        conv = (lambda lv: list(lv) if isinstance(lv, tuple) else lv)
        return {"warn": conv(self.warn), "error": conv(self.error), "sense": self.sense,
                "unit": self.unit, "source": self.source, "calibration": self.calibration}


# When a network has fitted its training set (netlens.aberrations.window): then a trainability
# symptom that appears only late in the run did not stop it learning, and is reported as info.
# "Fitted" is the outcome a practitioner reads first — the training loss far below where it
# started, and a classifier right on nearly every training sample (Zhang et al. 2017 use
# training accuracy 1 as "fitted"; 0.95 leaves room for label noise and augmentation).
FIT_LOSS = 0.2          # training loss at most this fraction of its initial value
FIT_ACCURACY = 0.95     # and, for a classifier, training accuracy at least this


def _n(x: float, signed: bool = False) -> str:
    text = f"{x:+g}" if signed else f"{x:g}"
    return text.replace("-", "−")


TABLE: dict[str, Limits] = {
    # -- per row -------------------------------------------------------------------------
    "GAIN": Limits(20.0, 40.0, "beyond", "dB",
                   "mean-field theory (Poole et al. 2016; Schoenholz et al. 2017)",
                   calibration="Not judged on the network's output row: small-cnn's logits reach "
                               "Σ +17.2 dB after 300 steps and keep growing as cross-entropy "
                               "sharpens them, with no row downstream to distort; a hot output "
                               "at initialization is INIT's."),
    "FLOW": Limits(20.0, 40.0, "beyond", "dB",
                   "Glorot & Bengio 2010; AUTOTRAINER's first/last ratio 1e-3 is −60 dB",
                   calibration="Judged on the gradient power summed over units (the per-unit "
                               "cumulative gain + 10·log10(width at the row / width at the "
                               "output)). Per unit, small-cnn — which trains to 100% — measured "
                               "Σ −25.8 dB at init: −19.1 dB of it is the 512→10 read-out's width "
                               "ratio and −6 dB the 2×2 max-pool's, narrowing by construction, not "
                               "depth. Summed over units it is −5.7 dB; the per-row column stays "
                               "per unit, beside the paraxial prediction. Top-level pooling rows' "
                               "own gains are left out of Σ: a global average pool over 8×8 "
                               "positions gives −18 dB summed over units, which the convolution "
                               "before it sums back into its weight gradient (weight sharing)."),
    "DEAD": Limits(0.1, 0.4, "above", "fraction",
                   "Lu et al. 2019 (dying relu); AUTOTRAINER γ = 0.7",
                   calibration="Measured since the tiered instruments on the training step's own "
                               "mini-batch (no extra pass) at a row where the batch holds ≥ 256 "
                               "samples·positions (a conv row's pixels count), else on the "
                               "256-sample probe batch as before. A unit firing on a fraction f of "
                               "inputs reads dead with probability (1−f)^B: at B = 64 a unit "
                               "firing on 2% of inputs reads dead 27% of the time (the healthy "
                               "layernorm-mlp warned), at 256 0.6%. Levels unchanged: the bundled and healthy designs' "
                               "DEAD findings did not change (quickstart, small-cnn and the healthy "
                               "suite stay clean; deep-narrow-relu and default-init-relu keep "
                               "theirs)."),
    "SATR": Limits(0.1, 0.3, "above", "fraction",
                   "Glorot & Bengio 2010; Karpathy's 0.97 rule"),
    "RANK": Limits(0.25, 0.1, "below", "ratio",
                   "Daneshmand et al. 2020; Noci et al. 2022",
                   calibration="Still on the fixed probe batch, but at fewer steps (the fixed "
                               "tier: step 0, 2·every·4^k up to half the run, and the end — "
                               "quickstart reads at 0, 40 and 300) and from float32 Gram "
                               "eigenvalues (≤ 1e-6 relative from float64); the levels and the "
                               "designs' findings unchanged."),
    "COND": Limits(30.0, 100.0, "above", "",
                   "Saxe et al. 2014; Pennington et al. 2017, 2018 (dynamical isometry)",
                   calibration="The fixed tier, as RANK. The weights' term is exact from the Gram "
                               "matrix for every size above 64 (it was for above 256; the full "
                               "spectrum gave the same value below), so only s_min is left out "
                               "there."),
    "MEAN": Limits(0.8, 0.9, "above", "fraction",
                   "LeCun et al. 1998 (centred inputs); Ioffe & Szegedy 2015; the relu "
                   "correlation map (Cho & Saul 2009)",
                   calibration="Raised from 0.5 / 0.8. A sound He-initialized relu MLP carries a "
                               "mean share at init that grows with depth by construction: the "
                               "share of the k-th hidden linear row is the samples' correlation "
                               "c_k of the arc-cosine kernel, c_{k+1} = (√(1−c_k²) + (π − "
                               "arccos c_k)·c_k)/π from c_0 ≈ 0 — 0.32, 0.49, 0.60, 0.68, 0.74, "
                               "0.78. Measured at step 0 on a six-layer He relu MLP on the digits: "
                               "0.30, 0.44, 0.69, 0.70, 0.74; with layernorm before each relu on "
                               "two moons 0.38 … 0.76 (designs/healthy/layernorm-mlp-moons.yaml, "
                               "which trains to 98%). The bias floor of a starved stack "
                               "(default-init-relu, deep-tanh) reads 1.00 and stays an error; a "
                               "sigmoid's input (0.85) is a warning."),
    "STEP": Limits((-4.0, -1.5), (-5.5, -1.0), "outside", "log10",
                   "CS231n \"≈1e-3\"; Karpathy",
                   calibration="Judged on the update ratio divided by the schedule's factor "
                               "lr(t)/lr: a cosine or linear decay shrinks late updates on "
                               "purpose, and small-cnn (cosine to 0) measured log10 r ≈ −4.0 "
                               "on its first conv over the second half without this. Not "
                               "judged at step 0, where the window is the first update alone: "
                               "small-cnn's head moves 10^−1.07 in its first SGD step (the initial "
                               "loss's large gradient), 10^−2.6 afterwards. Over the judging window "
                               "only the too-small case is judged (a frozen layer cannot learn); "
                               "too large is judged on the second half of the run, where a layer "
                               "must settle: random-labels' head moves 10^−1.35 per step over its "
                               "first 125 SGD steps (lr 0.1, momentum 0.9) and 10^−2.2 over the "
                               "second half, and small-cnn's head 10^−1.43 at step 20. The levels "
                               "themselves are the starting ones."),
    "PREC": Limits(0.1, 0.5, "above", "fraction",
                   "IEEE 754 round-to-nearest (Goldberg 1991); Micikevicius et al. 2018 (FP32 master "
                   "weights); Kalamkar et al. 2019 (bfloat16 training)",
                   calibration="A row of more than 4,096 weights is counted on a fixed random "
                               "sample of 4,096 of them (standard error ≤ 0.8%, far inside the "
                               "10% and 50% levels; counting every weight cost a quarter of a "
                               "training step on a 512 × 512 layer). The levels are the "
                               "starting ones."),
    # -- sequences (attention rows; rank across tokens) --------------------------------------
    "ENTR": Limits(0.15, 0.05, "below", "ratio",
                   "Zhai et al. 2023 (attention entropy collapse)",
                   calibration="Mean over a row's heads of entropy / log(attended positions). "
                               "Zhai et al. report collapsed runs at near-zero entropy in most "
                               "heads; the healthy designs/sequences/transformer.yaml (sort, 400 "
                               "steps) ends at row means 0.92 and 0.54, single heads down to 0.48 "
                               "(sorting needs sharp heads) — so the row mean, not the sharpest "
                               "head, is judged. attention-logits.yaml reaches 0.007."),
    "LOGT": Limits(50.0, 200.0, "above", "",
                   "Dehghani et al. 2023 (ViT-22B, qk-norm); Wortsman et al. 2023",
                   calibration="A gap of 20 already makes the softmax one-hot to 2·10⁻⁹; the "
                               "healthy transformer design ends with max |q·k|/√d = 18.1 (6.1 "
                               "on its first row); attention-logits.yaml (lr 0.03, 2× q/k "
                               "init, no qk-norm) reaches 1,340."),
    "TRNK": Limits(0.25, 0.1, "below", "ratio",
                   "Dong, Cordonnier & Loukas 2021; Noci et al. 2022",
                   calibration="RANK's levels, relative to the embedded input's token rank. "
                               "Judged on top-level rows only: an attention branch's own output "
                               "is low-rank at init by design (near-uniform averaging: 0.37 of "
                               "min(T, D) in a default-init pre-norm block). The healthy "
                               "transformer's top-level rows stay ≥ 0.95; attention-only.yaml "
                               "measures 0.05 at step 0 (paraxial 0.03)."),
    # -- network -------------------------------------------------------------------------
    "SHRP": Limits(0.9, 1.2, "above", "×",
                   "Cohen et al. 2021, 2022 (edge of stability); the quadratic η < 2/λ",
                   calibration="Adam, AdamW and RMSProp, reported as info before, are judged on "
                               "the preconditioned sharpness λ₁(P⁻¹H) against (2+2β₁)/((1−β₁)η) "
                               "(RMSProp 2(1+β)/η), P from the optimizer's own state (Cohen et al. "
                               "2022), with the SGD levels: a full-batch Adam MLP at η = 0.01 "
                               "hovers at 0.97–1.05× its limit from step 40 on (the adaptive edge, "
                               "a warning like full-batch GD's), quickstart reads 0.01×. Not "
                               "measured at step 0 for these optimizers (v̂₁ = g₁²: a weight with "
                               "a ~0 first gradient gets P ≈ ε and λ₁(P⁻¹H) ~10⁷). The Hessian is "
                               "estimated at log-spaced steps (16·every·2^k and the end) instead "
                               "of every 5th probe: SHRP reads the last estimate at or before the "
                               "judged step, so at the end it is the same estimate as before."),
    "DIVG": Limits(10.0, None, "above", "×",
                   "the loss above 10× its initial value; a non-finite value",
                   calibration="The first design had one level (\"any\"). A non-finite value is an "
                               "error (the run has no result left to judge); a finite loss "
                               "blow-up past 10× stays a warning."),
    "INIT": Limits(1.5, 3.0, "above", "×",
                   "Karpathy 2019, \"A Recipe for Training Neural Networks\""),
    "STAL": Limits(0.9, 0.98, "above", "×",
                   "a netlens convention: under 2% progress over the run is an error"),
    "GAP": Limits(0.1, 0.3, "above", "", "Zhang et al. 2017"),
    "NOIS": Limits(0.02, None, "below", "×",
                   "McCandlish et al. 2018; Liu et al. 2020 (GSNR)"),
}


def resolve(prescription: dict[str, Any] | None = None, command_line: list[str] | None = None,
            table: dict[str, Limits] | None = None) -> dict[str, Limits]:
    """The table with the prescription's overrides, then the command line's, applied."""
    out = dict(table or TABLE)
    for code, raw in (prescription or {}).items():
        key = _code(code, out, f"diagnose.thresholds.{code}")
        out[key] = _apply(out[key], raw, f"diagnose.thresholds.{code}")
    for text in command_line or []:
        code, sep, raw = text.partition("=")
        if not sep:
            raise DesignError("a threshold is written CODE=WARN,ERROR", path="--threshold",
                              expected="e.g. `FLOW=15,30`, `DEAD=0.2` or `STEP=-4:-1.5,-5.5:-1`",
                              found=text)
        key = _code(code.strip(), out, "--threshold")
        out[key] = _apply(out[key], _parse_cli(raw, key), "--threshold " + text)
    return out


def _code(code: str, table: dict[str, Limits], path: str) -> str:
    key = str(code).strip().upper()
    if key not in table:
        hint = suggest(key, table)
        raise DesignError(f"unknown aberration `{code}`", path=path,
                          expected="one of " + ", ".join(table),
                          suggestion=f"Did you mean `{hint}`?" if hint else None)
    return key


def _parse_cli(raw: str, code: str) -> dict[str, Any]:
    parts = [p.strip() for p in raw.split(",")]
    if len(parts) > 2:
        raise DesignError(f"`{code}` takes at most two levels, warn and error", path="--threshold",
                          found=raw, expected="WARN,ERROR")
    out: dict[str, Any] = {}
    for name, part in zip(("warn", "error"), parts):
        if part == "":
            continue
        if part.lower() in ("-", "none", "off"):
            out[name] = None
        elif ":" in part:
            out[name] = [_number(x, code) for x in part.split(":", 1)]
        else:
            out[name] = _number(part, code)
    return out


def _number(text: str, code: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):         # nan would never fire; inf is `-` (off) spelt oddly
        raise DesignError(f"a threshold level of `{code}` must be a finite number", path="--threshold",
                          found=text, suggestion="Write `-` to turn a level off.")
    return value


def _apply(limits: Limits, raw: Any, path: str) -> Limits:
    single_range = (limits.sense == "outside" and isinstance(raw, (list, tuple))
                    and all(isinstance(v, (int, float)) for v in raw))
    if (isinstance(raw, (int, float)) and not isinstance(raw, bool)) or single_range:
        raw = {"warn": raw}                      # one level: the warning
    elif isinstance(raw, (list, tuple)):
        raw = dict(zip(("warn", "error"), raw))
    if not isinstance(raw, dict) or set(raw) - {"warn", "error"}:
        raise DesignError("a threshold override gives `warn` and/or `error`", path=path,
                          expected="`{warn: …, error: …}` or `[warn, error]`", found=raw)
    levels = {k: _level(limits, v, path) for k, v in raw.items()}
    out = replace(limits, **levels, calibration=(limits.calibration + " " if limits.calibration else "")
                  + f"Overridden here: {_show(levels)}.")
    _check_order(out, path)
    return out


def _level(limits: Limits, value: Any, path: str) -> Level:
    if value is None:
        return None
    if limits.sense == "outside":
        ok = (isinstance(value, (list, tuple)) and len(value) == 2
              and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                      for v in value)
              and value[0] < value[1])
        if not ok:
            raise DesignError("this threshold is a range", path=path,
                              expected="[low, high] with low < high", found=value)
        return (float(value[0]), float(value[1]))
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise DesignError("a threshold level must be a finite number (or null to turn it off)",
                          path=path, found=value)
    return float(value)


def _check_order(limits: Limits, path: str) -> None:
    w, e = limits.warn, limits.error
    if w is None or e is None:
        return
    if limits.sense == "outside":
        bad = not (e[0] <= w[0] and w[1] <= e[1])
    elif limits.sense == "below":
        bad = e > w
    else:
        bad = e < w
    if bad:
        raise DesignError("the error level must lie beyond the warn level", path=path,
                          found=f"warn {w}, error {e}",
                          expected="error further from the healthy range than warn")


def _show(levels: dict[str, Level]) -> str:
    return ", ".join(f"{k} {'off' if v is None else v}" for k, v in levels.items())
