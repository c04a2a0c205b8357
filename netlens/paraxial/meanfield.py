"""The mean-field recursion of deep random networks: fixed points, χ₁, depth scales, criticality.

A wide layer with weights of variance σ_w²/fan_in and biases of variance σ_b² maps the second
moment q of its pre-activations as q ← σ_w²·E_q[φ²] + σ_b² (the length map), and the correlation c
of two inputs as c ← (σ_w²·E_{q,c}[φ(u1)φ(u2)] + σ_b²)/q* (the correlation map) (Poole et al.
2016, "Exponential expressivity in deep neural networks through transient chaos", eqs. 3–5).

At the fixed point q*, χ₁ = σ_w²·E_{q*}[φ'²] is the per-layer gain of the gradient's power.
χ₁ < 1 is the ordered phase (vanishing gradients), χ₁ > 1 the chaotic phase (exploding) and
χ₁ = 1 is critical. The depth scales ξ_∇ = −1/log χ₁ and ξ_c = −1/log χ_c say over how many
layers gradients and correlations survive; networks train only to a depth of about 6ξ_c
(Schoenholz et al. 2017, "Deep information propagation", eqs. 7–9).

Assumptions: wide layers, independent weights, and gradients independent of the forward pass.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from netlens.paraxial.gaussian import EXACT, correlation_map, moments, slope_correlation

# Below this q the signal counts as collapsed, and above it as exploded (relu with σ_w² > 2).
_Q_ZERO = 1e-12
_Q_CAP = 1e12
# The σ_w² range `critical_sigma_w2` searches, and the σ_w² range (as a ratio) for one layer.
_SEARCH = (0.1, 50.0)
_LAYER_SEARCH = (1e-6, 1e6)
# How close χ₁ must come to 1 at a root for it to count as critical rather than a jump.
_CRITICAL_TOL = 1e-4
# Where to look for the largest correlation fixed point below 1: close to 1 on a log scale (it
# approaches 1 near criticality), then evenly spaced down to −1.
_C_GRID = np.concatenate([1.0 - np.logspace(-6, -1, 6), np.linspace(0.8, -1.0, 10)])


@dataclass(frozen=True)
class DepthScales:
    """The mean-field state at the fixed point, and the depths over which signals survive.

    A depth scale is negative when the quantity grows (xi_grad in the chaotic phase). It is ∞ at
    criticality.
    """

    q_star: float   # fixed point of the length map (0: collapsed, ∞: exploded)
    chi1: float     # σ_w²·E_{q*}[φ'²], the per-layer gain of gradient power
    xi_grad: float  # −1/log χ₁ (Schoenholz et al. 2017, eq. 9)
    xi_c: float     # −1/log χ_c, the correlation depth scale (Schoenholz et al. 2017, eq. 8)
    c_star: float   # fixed point of the correlation map: 1 in the ordered phase, < 1 when chaotic


def fixed_point_q(name: str, sigma_w2: float, sigma_b2: float, q0: float = 1.0,
                  **params: float) -> float:
    """The fixed point q* of q ← σ_w²·E_q[φ²] + σ_b² that depth-wise iteration from q0 reaches.

    Returns 0.0 when the signal collapses (below 1e-12) and ∞ when it grows without bound.

    The length map increases with q, so iterates move monotonically toward the nearest fixed
    point in one direction. Iterating it directly is slow near criticality: for tanh at σ_b² = 0
    q only decays like 1/depth. So we bracket the root by doubling or halving q in that
    direction, then solve with Brent's method.
    """
    _check_nonnegative(sigma_w2=sigma_w2, sigma_b2=sigma_b2, q0=q0)

    def excess(q: float) -> float:  # how much one layer changes q
        return sigma_w2 * moments(name, q, **params).power + sigma_b2 - q

    q = q0 if q0 > 0 else sigma_b2  # a zero input still gets the bias after one layer
    if q == 0.0:
        return 0.0
    start = excess(q)
    if start == 0.0:
        return q
    factor = 2.0 if start > 0 else 0.5
    nxt = q * factor
    while excess(nxt) * start > 0:  # still on the same side of the fixed point
        if nxt > _Q_CAP:
            return math.inf
        if nxt < _Q_ZERO:
            return 0.0
        q, nxt = nxt, nxt * factor
    lo, hi = sorted((q, nxt))
    return brentq(excess, lo, hi, xtol=1e-15, rtol=1e-13)


def chi1(name: str, sigma_w2: float, sigma_b2: float, **params: float) -> float:
    """χ₁ = σ_w²·E_{q*}[φ'²], the slope of the length map and the gradient's power gain per layer."""
    return _chi1_at(name, sigma_w2, fixed_point_q(name, sigma_w2, sigma_b2, **params), params)


def depth_scales(name: str, sigma_w2: float, sigma_b2: float, **params: float) -> DepthScales:
    """q*, χ₁ and the depth scales ξ_∇ and ξ_c (Schoenholz et al. 2017).

    If q* is 0 or ∞ there is no finite fixed point for the correlation map to sit at. Then c* is
    taken as 1 and ξ_c = ξ_∇.
    """
    q_star = fixed_point_q(name, sigma_w2, sigma_b2, **params)
    chi = _chi1_at(name, sigma_w2, q_star, params)
    c_star, chi_c = _correlation_fixed_point(name, sigma_w2, sigma_b2, q_star, chi, params)
    return DepthScales(q_star=q_star, chi1=chi, xi_grad=_depth_scale(chi), xi_c=_depth_scale(chi_c),
                       c_star=c_star)


def critical_sigma_w2(name: str, sigma_b2: float, **params: float) -> float:
    """The σ_w² on the edge of chaos, χ₁(σ_w², σ_b²) = 1 (Schoenholz et al. 2017, fig. 1).

    relu is 2 (He et al. 2015), leaky_relu 2/(1+a²) and identity 1, whatever σ_b². Otherwise the
    root is searched for in σ_w² ∈ [0.1, 50]. ValueError is raised if there is none there
    (sigmoid: χ₁ stays far below 1), or if χ₁ only jumps across 1 (gelu, silu).
    """
    _check_nonnegative(sigma_b2=sigma_b2)
    if name in EXACT:
        # positively homogeneous: E[φ'²] does not depend on q, so χ₁ = σ_w²·E[φ'²] exactly
        return 1.0 / moments(name, 1.0, **params).slope

    def excess(sigma_w2: float) -> float:
        return chi1(name, sigma_w2, sigma_b2, **params) - 1.0

    what = f"{name} has no critical σ_w² at σ_b² = {sigma_b2:g}"
    root = _solve(excess, *_SEARCH, what=what, gain="χ₁", variable="σ_w²")
    # χ₁ can also change sign by jumping, where the fixed point q* reached from q = 1 jumps (gelu
    # and silu: from 0 or a small q* to ∞). That is a sign change but not a critical point.
    if abs(excess(root)) > _CRITICAL_TOL:
        q_below, q_above = (fixed_point_q(name, root * f, sigma_b2, **params)
                            for f in (1 - 1e-9, 1 + 1e-9))
        raise ValueError(f"{what}: χ₁ jumps across 1 at σ_w² ≈ {root:.4g}, where the fixed point q* "
                         f"jumps from {q_below:.3g} to {q_above:.3g}; there is no stable fixed point "
                         f"with χ₁ = 1")
    return root


def critical_layer_sigma_w2(name: str, q_in: float, fan_in: float, fan_out: float,
                            sigma_b2: float = 0.0, **params: float) -> float:
    """The σ_w² (weights of variance σ_w²/fan_in, biases σ_b²) giving one layer a backward gain of 1.

    The layer is linear followed by `name`, and its input has mean square q_in. Its pre-activations
    have variance σ_w²·q_in + σ_b², and the gradient's power gain going back through it is
    σ_w²·(fan_out/fan_in)·E[φ'²]; this solves for gain = 1 (0 dB). relu: 2·fan_in/fan_out.
    This is the per-layer version of criticality that `init: critical` uses.
    """
    _check_nonnegative(q_in=q_in)
    if not (fan_in > 0 and fan_out > 0):
        raise ValueError(f"fan_in and fan_out must be positive, got {fan_in!r} and {fan_out!r}")
    ratio = fan_out / fan_in
    if name in EXACT:
        return 1.0 / (ratio * moments(name, 1.0, **params).slope)

    def excess(log_sigma_w2: float) -> float:  # solved in log σ_w² across six decades either way
        sigma_w2 = math.exp(log_sigma_w2)
        return sigma_w2 * ratio * moments(name, sigma_w2 * q_in + sigma_b2, **params).slope - 1.0

    lo, hi = (math.log(s) for s in _LAYER_SEARCH)
    return math.exp(_solve(excess, lo, hi, what=f"no σ_w² gives a {name} layer a backward gain of 1",
                           gain="the gain", variable="log σ_w²"))


# --------------------------------------------------------------------------- helpers

def _chi1_at(name: str, sigma_w2: float, q_star: float, params: dict[str, float]) -> float:
    # q* = ∞ (an exploding signal): use E[φ'²] at a very large q, i.e. its large-q limit
    return sigma_w2 * moments(name, min(q_star, _Q_CAP), **params).slope


def _correlation_fixed_point(name: str, sigma_w2: float, sigma_b2: float, q_star: float, chi: float,
                             params: dict[str, float]) -> tuple[float, float]:
    """(c*, χ_c): the stable fixed point of the correlation map and the map's slope there.

    Ordered phase (χ₁ ≤ 1): c* = 1 is stable and χ_c = χ₁. Chaotic phase: c = 1 is unstable, and
    correlations just below 1 fall to the largest fixed point below it (Poole et al. 2016, fig. 2).
    Then χ_c = σ_w²·E[φ'(u1)φ'(u2)] at (q*, c*).
    """
    if chi <= 1.0 or not 0.0 < q_star < math.inf:
        return 1.0, chi

    def excess(c: float) -> float:  # negative just below 1, and ≥ 0 at c = −1 (Cauchy–Schwarz)
        return (sigma_w2 * correlation_map(name, q_star, c, **params) + sigma_b2) / q_star - c

    above = 1.0
    for c in _C_GRID:
        if excess(c) >= 0.0:
            break
        above = c
    else:
        return -1.0, sigma_w2 * slope_correlation(name, q_star, -1.0, **params)
    if above == 1.0:
        # even 1 − 1e-6 is not above the fixed point, which is then indistinguishable from critical
        return 1.0, 1.0
    c_star = brentq(excess, c, above, xtol=1e-13)
    return c_star, sigma_w2 * slope_correlation(name, q_star, c_star, **params)


def _depth_scale(chi: float) -> float:
    """−1/log χ: the depth over which a per-layer factor χ changes things by e (∞ at χ = 1)."""
    if chi == 1.0:
        return math.inf
    if chi <= 0.0:
        return 0.0
    return -1.0 / math.log(chi)


def _solve(excess: Callable[[float], float], lo: float, hi: float, *, what: str, gain: str,
           variable: str) -> float:
    """The root of `excess` (gain − 1) in [lo, hi], or a ValueError saying how far off it stays."""
    f_lo, f_hi = excess(lo), excess(hi)
    if f_lo * f_hi > 0:
        raise ValueError(f"{what}: {gain} runs from {f_lo + 1:.3g} to {f_hi + 1:.3g} for {variable} "
                         f"in [{lo:.3g}, {hi:.3g}] and never reaches 1")
    return brentq(excess, lo, hi, xtol=1e-13, rtol=1e-12)


def _check_nonnegative(**values: float) -> None:
    for key, value in values.items():
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"{key} must be a finite number ≥ 0, got {value!r}")


_EPS = np.finfo(float).eps


def brentq(f: Callable[[float], float], a: float, b: float, xtol: float = 2e-12,
           rtol: float = 4 * _EPS, maxiter: int = 100) -> float:
    """A root of f in [a, b] (f(a), f(b) of opposite signs) by Brent's method (Brent 1973, ch. 4):
    inverse quadratic or secant steps, bisection when they would not shrink the bracket fast
    enough. The same iteration, tolerances and defaults as SciPy's `optimize.brentq`, so the
    paraxial numbers do not move — without importing SciPy at start-up."""
    rtol = max(rtol, 4 * _EPS)
    xpre, xcur = float(a), float(b)
    fpre, fcur = f(xpre), f(xcur)
    xblk = fblk = spre = scur = 0.0
    if fpre == 0:
        return xpre
    if fcur == 0:
        return xcur
    if math.copysign(1.0, fpre) == math.copysign(1.0, fcur):
        raise ValueError("f(a) and f(b) must have different signs")
    for _ in range(maxiter):
        if fpre != 0 and fcur != 0 and math.copysign(1.0, fpre) != math.copysign(1.0, fcur):
            xblk, fblk = xpre, fpre
            spre = scur = xcur - xpre
        if abs(fblk) < abs(fcur):
            xpre, xcur, xblk = xcur, xblk, xcur
            fpre, fcur, fblk = fcur, fblk, fcur
        delta = (xtol + rtol * abs(xcur)) / 2
        sbis = (xblk - xcur) / 2
        if fcur == 0 or abs(sbis) < delta:
            return xcur
        if abs(spre) > delta and abs(fcur) < abs(fpre):
            if xpre == xblk:                       # interpolate
                stry = -fcur * (xcur - xpre) / (fcur - fpre)
            else:                                  # extrapolate
                dpre = (fpre - fcur) / (xpre - xcur)
                dblk = (fblk - fcur) / (xblk - xcur)
                stry = -fcur * (fblk * dblk - fpre * dpre) / (dblk * dpre * (fblk - fpre))
            if 2 * abs(stry) < min(abs(spre), 3 * abs(sbis) - delta):
                spre, scur = scur, stry            # a good short step
            else:
                spre = scur = sbis                 # bisect
        else:
            spre = scur = sbis                     # bisect
        xpre, fpre = xcur, fcur
        xcur += scur if abs(scur) > delta else (delta if sbis > 0 else -delta)
        fcur = f(xcur)
    raise RuntimeError(f"brentq: no convergence in {maxiter} iterations")
