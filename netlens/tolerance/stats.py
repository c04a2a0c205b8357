"""The statistics of tolerancing: a quantity over n runs, the resolution, and the verdicts.

    Stat(mean, sd, n)       sd is the sample standard deviation (n − 1 in the denominator)
    resolution = 2·sd·√(2/n)
        the smallest difference of two means of n runs each that is beyond noise: two standard
        errors of a difference, SE(Δ) = √(sd_a²/n_a + sd_b²/n_b), which is sd·√(2/n) when both
        groups have the noise floor's sd and n runs. A difference is *beyond noise* when
        |Δ| > 2·SE(Δ) — about a 95% two-sided test, the rule every verdict here uses.
    effect size (sigmas) = Δ / s_pooled, s_pooled = √((sd_a² + sd_b²)/2): the difference in
        units of the noise floor (Cohen's d)
    Wilson (1927) interval for a yield k/n at 95% (z = 1.96): well-behaved at k = 0 and k = n,
        where the normal approximation gives an empty interval.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

Z = 2.0          # standard errors of a difference that count as beyond noise
WILSON_Z = 1.96  # 95% confidence for the yield
RULE = ("a difference of means is beyond noise when |Δ| > 2·√(sd_a²/n_a + sd_b²/n_b), i.e. "
        "2·sd·√(2/n) for two groups of n runs with the noise floor's sd (about a 95% test)")


@dataclass(frozen=True)
class Stat:
    mean: float
    sd: float
    n: int

    @classmethod
    def of(cls, values: Iterable[float | None]) -> "Stat":
        xs = [float(v) for v in values if v is not None and math.isfinite(v)]
        if not xs:
            return cls(math.nan, math.nan, 0)
        m = sum(xs) / len(xs)
        sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else math.nan
        return cls(m, sd, len(xs))

    def to_json(self) -> dict:
        return {"mean": self.mean, "sd": self.sd, "n": self.n}

    @property
    def resolution(self) -> float:
        """2·sd·√(2/n): the smallest difference from another n-run mean that is beyond noise."""
        if self.n < 2 or not math.isfinite(self.sd):
            return math.nan
        return Z * self.sd * math.sqrt(2 / self.n)


@dataclass(frozen=True)
class Difference:
    delta: float          # b − a
    se: float             # standard error of the difference
    sigmas: float         # effect size Δ / s_pooled (±inf when both are noiseless and differ)
    beyond: bool          # |Δ| > 2·SE

    def to_json(self) -> dict:
        return {"delta": self.delta, "se": self.se, "sigmas": self.sigmas, "beyond": self.beyond}


def difference(a: Stat, b: Stat) -> Difference:
    """b − a against the noise of both (see the module's rule)."""
    if a.n == 0 or b.n == 0:
        return Difference(math.nan, math.nan, math.nan, False)
    delta = b.mean - a.mean
    va = a.sd ** 2 if math.isfinite(a.sd) else 0.0
    vb = b.sd ** 2 if math.isfinite(b.sd) else 0.0
    se = math.sqrt(va / a.n + vb / b.n)
    pooled = math.sqrt((va + vb) / 2)
    # two bit-identical groups differ by exactly 0; a static quantity (params) has sd 0
    tiny = 1e-12 * max(1.0, abs(a.mean), abs(b.mean))
    if pooled > tiny:
        sigmas = delta / pooled
    else:
        sigmas = 0.0 if abs(delta) <= tiny else math.copysign(math.inf, delta)
    return Difference(delta, se, sigmas, abs(delta) > max(Z * se, tiny))


def wilson(k: int, n: int, z: float = WILSON_Z) -> tuple[float, float]:
    """Wilson score interval for a proportion k/n."""
    if n == 0:
        return math.nan, math.nan
    p = k / n
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return max(0.0, mid - half), min(1.0, mid + half)
