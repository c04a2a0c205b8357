"""Gaussian expectations of activation functions: the per-element numbers of the paraxial model.

In the mean-field limit (Poole et al. 2016, "Exponential expressivity in deep neural networks
through transient chaos"; Schoenholz et al. 2017, "Deep information propagation") a wide layer's
pre-activations are Gaussian, z ~ N(0, q), and everything the model needs from an activation φ is
a handful of Gaussian averages: E[φ], E[φ²] (forward power), E[φ'²] (backward power gain) and, for
pairs of inputs with correlation c, E[φ(u1)φ(u2)] and E[φ'(u1)φ'(u2)].

How they are computed:

* relu, leaky_relu and identity are all leaky relus (z for z > 0, a·z otherwise; a = 0, slope, 1).
  They have exact closed forms, including the arc-cosine kernel (Cho & Saul 2009) for pairs.
* Everything else uses one composite Gauss–Legendre rule. Plain Gauss–Hermite fails twice over:
  at a kink (docs/theory.md: it gives E[relu'²] = 0.456, not 0.5), and at large q, where features of
  width ~1 in z become narrow in standard units (tanh at q = 25: off by 10% with 150 nodes). So the
  rule breaks the line both at the Gaussian's scale (0, ±1, ±2, ±4, ±8 standard deviations) and
  at the activation's own scale (z = 0, where elu and selu have their kink, then ±2^k, where
  curvature and saturation happen). Between breakpoints the integrand is smooth, and 16 Legendre
  nodes per piece are good to ~1e-12.

q = 0 means the limit q → 0⁺. For a smooth φ this is the same as evaluating at z = 0. At a kink
each side keeps half the mass, so relu's E[φ'²] stays 1/2, as homogeneity requires.

NumPy only (no SciPy): the Legendre nodes come from numpy.polynomial.legendre.leggauss, the
logistic function is the overflow-free split form, and Φ(z) = erfc(−z/√2)/2 uses the standard
library's correctly rounded erfc, vectorized — so `netlens paraxial` starts without SciPy.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from netlens.errors import suggest

ACTIVATIONS: tuple[str, ...] = (
    "relu", "leaky_relu", "elu", "selu", "gelu", "silu", "tanh", "sigmoid", "softplus", "identity",
)
# Closed forms: these are all positively homogeneous (degree 1), so E[φ²] ∝ q and E[φ'²] does not
# depend on q at all.
EXACT: frozenset[str] = frozenset({"relu", "leaky_relu", "identity"})
# No bias-free fixed point with q > 0 (q → 0 over depth), so a report should call their
# mean-field predictions approximate (docs/theory.md §5).
APPROXIMATE: frozenset[str] = frozenset({"gelu", "silu"})

# torch.nn.SELU's constants (Klambauer et al. 2017).
SELU_ALPHA = 1.6732632423543772
SELU_SCALE = 1.0507009873554805

# Parameters each activation accepts, with torch's defaults.
_DEFAULTS: dict[str, dict[str, float]] = {"leaky_relu": {"slope": 0.01}, "elu": {"alpha": 1.0}}

Array = np.ndarray


@dataclass(frozen=True)
class Moments:
    """Gaussian averages of φ for z ~ N(0, q).

    slope_var is Var[φ'²] / E[φ'²]², the normalized spread of the squared derivative. It
    conditions the input-output Jacobian's spectrum: 1 for relu, 0 for a linear map.
    """

    mean: float       # E[φ(z)]
    power: float      # E[φ(z)²]
    slope: float      # E[φ'(z)²]
    slope_var: float  # Var[φ'(z)²] / E[φ'(z)²]²


# --------------------------------------------------------------------------- activations

@dataclass(frozen=True)
class _Activation:
    phi: Callable[[Array], Array]
    dphi: Callable[[Array], Array]


def _elu(alpha: float, scale: float = 1.0) -> _Activation:
    # exp only ever sees z ≤ 0, so large positive z cannot overflow
    def phi(z: Array) -> Array:
        return scale * np.where(z > 0, z, alpha * np.expm1(np.minimum(z, 0.0)))

    def dphi(z: Array) -> Array:
        return scale * np.where(z > 0, 1.0, alpha * np.exp(np.minimum(z, 0.0)))

    return _Activation(phi, dphi)


def _expit(z: Array) -> Array:
    """The logistic function 1/(1 + e^{−z}), without overflow for either sign of z."""
    z = np.asarray(z, dtype=float)
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


_ERFC = np.frompyfunc(math.erfc, 1, 1)


def _ndtr(z: Array) -> Array:
    """The standard normal CDF Φ(z) = erfc(−z/√2)/2."""
    z = np.asarray(z, dtype=float)
    return 0.5 * _ERFC(-z / math.sqrt(2.0)).astype(float)


def _sigmoid_derivative(z: Array) -> Array:
    s = _expit(z)
    return s * (1.0 - s)


def _tanh_derivative(z: Array) -> Array:
    # sech² z = 4e^{−2|z|}/(1 + e^{−2|z|})²: neither overflows (cosh does) nor cancels (1 − tanh² does)
    e = np.exp(-2.0 * np.abs(z))
    return 4.0 * e / (1.0 + e) ** 2


def _silu_derivative(z: Array) -> Array:
    s = _expit(z)
    return s * (1.0 + z * (1.0 - s))


_SMOOTH: dict[str, _Activation] = {
    "gelu": _Activation(lambda z: z * _ndtr(z),  # exact erf form, x·Φ(x)
                        lambda z: _ndtr(z) + z * np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)),
    "silu": _Activation(lambda z: z * _expit(z), _silu_derivative),
    "tanh": _Activation(np.tanh, _tanh_derivative),
    "sigmoid": _Activation(_expit, _sigmoid_derivative),
    "softplus": _Activation(lambda z: np.logaddexp(0.0, z), _expit),
}


def _activation(name: str, params: dict[str, float]) -> _Activation:
    """φ and φ' for an activation without a closed form."""
    if name == "elu":
        return _elu(params["alpha"])
    if name == "selu":
        return _elu(SELU_ALPHA, SELU_SCALE)
    return _SMOOTH[name]


def _leaky_slope(name: str, params: dict[str, float]) -> float:
    """The negative-side slope a of an EXACT activation: φ(z) = z for z > 0, a·z otherwise."""
    return {"relu": 0.0, "identity": 1.0, "leaky_relu": params.get("slope", 0.0)}[name]


def _resolve(name: str, params: dict[str, float]) -> dict[str, float]:
    """Check the name and parameters; return the parameters with defaults filled in."""
    if name not in ACTIVATIONS:
        hint = suggest(name, ACTIVATIONS)
        advice = f"did you mean {hint!r}?" if hint else f"known: {', '.join(ACTIVATIONS)}"
        raise ValueError(f"unknown activation {name!r}; {advice}")
    defaults = _DEFAULTS.get(name, {})
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        accepted = ", ".join(defaults) or "no parameters"
        raise ValueError(f"activation {name!r} does not take {', '.join(unknown)} (it takes {accepted})")
    resolved = {**defaults, **params}
    for key, value in resolved.items():
        if not math.isfinite(value):
            raise ValueError(f"activation {name!r}: {key} must be a finite number, got {value!r}")
    return resolved


def _check_q(q: float) -> float:
    if not (math.isfinite(q) and q >= 0):
        raise ValueError(f"the second moment q must be finite and ≥ 0, got {q!r}")
    return float(q)


# --------------------------------------------------------------------------- quadrature

_LEGENDRE_T, _LEGENDRE_W = np.polynomial.legendre.leggauss(16)
_REACH = 12.0  # standard deviations; the Gaussian mass beyond is ~1e-33
_SIGMA_BREAKS = np.array([-_REACH, -8.0, -4.0, -2.0, -1.0, 0.0, 1.0, 2.0, 4.0, 8.0, _REACH])
# In the activation's argument: the kink at 0, then a geometric ladder 0.25, 0.5, …, 32 out to
# where every activation here is linear or flat to machine precision.
_LADDER = 2.0 ** np.arange(-2, 6)
_ARG_BREAKS = np.concatenate([-_LADDER, [0.0], _LADDER])
# A standard deviation of exactly 0 would lose which side of a kink each node lies on; a tiny
# positive one keeps it, and so gives the q → 0⁺ limit.
_TINY_STD = 1e-150


def _gauss_rule(mean: Array, std: float) -> tuple[Array, Array]:
    """Nodes z and weights w with Σ w·f(z) ≈ E[f(z)], z ~ N(mean, std²), one rule per mean.

    mean has shape (m,); both results have shape (m, n). The breakpoints are taken in standard
    units x = (z − mean)/std and clipped to ±_REACH. Breakpoints that fall off the end give empty
    pieces with zero weight, which keeps every row the same shape.
    """
    mean = np.asarray(mean, dtype=float).reshape(-1, 1)
    std = max(std, _TINY_STD)
    arg_breaks = (_ARG_BREAKS - mean) / std
    sigma_breaks = np.broadcast_to(_SIGMA_BREAKS, (mean.shape[0], _SIGMA_BREAKS.size))
    breaks = np.concatenate([sigma_breaks, arg_breaks], axis=1)
    breaks = np.sort(np.clip(breaks, -_REACH, _REACH), axis=1)
    half = 0.5 * np.diff(breaks, axis=1)[..., None]
    mid = 0.5 * (breaks[:, 1:] + breaks[:, :-1])[..., None]
    x = mid + half * _LEGENDRE_T
    w = half * _LEGENDRE_W * np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
    m = mean.shape[0]
    return mean + std * x.reshape(m, -1), w.reshape(m, -1)


def _expect_pair(f: Callable[[Array], Array], g: Callable[[Array], Array], q: float, c: float) -> float:
    """E[f(u1)·g(u2)] for (u1, u2) Gaussian with variances q and correlation c.

    Conditioning on u1 gives u2 | u1 ~ N(c·u1, q(1 − c²)). Each inner rule is built around its own
    conditional mean, so g's kink at 0 is still a breakpoint, wherever it falls.
    """
    u1, w1 = _gauss_rule(np.zeros(1), math.sqrt(q))
    u2, w2 = _gauss_rule(c * u1[0], math.sqrt(q * max(0.0, 1.0 - c * c)))
    return float(np.sum(w1[0] * f(u1[0]) * np.sum(w2 * g(u2), axis=1)))


def _quadrature_moments(act: _Activation, q: float) -> Moments:
    z, w = _gauss_rule(np.zeros(1), math.sqrt(q))
    phi, d2 = act.phi(z), act.dphi(z) ** 2
    slope = float(np.sum(w * d2))
    # take the variance about the mean directly rather than as E[φ'^4] − E[φ'²]²: no cancellation
    var = float(np.sum(w * (d2 - slope) ** 2))
    return Moments(mean=float(np.sum(w * phi)), power=float(np.sum(w * phi * phi)),
                   slope=slope, slope_var=var / slope ** 2 if slope > 0 else 0.0)


# --------------------------------------------------------------------------- closed forms

def _leaky_moments(a: float, q: float) -> Moments:
    """φ(z) = z for z > 0, a·z otherwise (relu: a = 0; identity: a = 1), z ~ N(0, q), exactly.

    φ = (1−a)·relu(z) + a·z, and φ'² takes the values 1 and a² with probability 1/2 each.
    """
    return Moments(mean=(1.0 - a) * math.sqrt(q / (2 * math.pi)),
                   power=(1.0 + a * a) * q / 2,
                   slope=(1.0 + a * a) / 2,
                   slope_var=((1.0 - a * a) / (1.0 + a * a)) ** 2)


def _leaky_pair(a: float, q: float, c: float, derivative: bool) -> float:
    """E[φ(u1)φ(u2)] (or E[φ'(u1)φ'(u2)]) for the leaky relu of slope a, by the arc-cosine kernel.

    With θ = arccos c: E[relu relu] = q(sin θ + (π−θ)c)/2π and E[relu' relu'] = (π−θ)/2π
    (Cho & Saul 2009). E[relu(u1)·u2] = qc/2 by symmetry, which gives the cross terms of
    φ = (1−a)·relu + a·id.
    """
    theta = math.acos(min(1.0, max(-1.0, c)))
    if derivative:
        return a + (1.0 - a) ** 2 * (math.pi - theta) / (2 * math.pi)
    kernel = q * (math.sin(theta) + (math.pi - theta) * c) / (2 * math.pi)
    return (1.0 - a) ** 2 * kernel + a * q * c


# --------------------------------------------------------------------------- public API

def moments(name: str, q: float, **params: float) -> Moments:
    """E[φ], E[φ²], E[φ'²] and Var[φ'²]/E[φ'²]² for z ~ N(0, q) (Poole et al. 2016, eqs. 3–4).

    params: `slope` for leaky_relu (default 0.01), `alpha` for elu (default 1.0). Unknown names
    and parameters raise ValueError.
    """
    resolved = _resolve(name, params)
    return _moments(name, _check_q(q), tuple(sorted(resolved.items())))


@lru_cache(maxsize=8192)  # the mean-field root finders ask for the same (name, q) many times
def _moments(name: str, q: float, params: tuple[tuple[str, float], ...]) -> Moments:
    p = dict(params)
    if name in EXACT:
        return _leaky_moments(_leaky_slope(name, p), q)
    return _quadrature_moments(_activation(name, p), q)


def correlation_map(name: str, q: float, c: float, **params: float) -> float:
    """E[φ(u1)φ(u2)] for (u1, u2) jointly Gaussian with variances q and correlation c.

    This is the numerator of the correlation map of Poole et al. 2016 (eq. 5), whose fixed point
    and slope give the correlation depth scale ξ_c of Schoenholz et al. 2017.
    """
    return _pair(name, q, c, params, derivative=False)


def slope_correlation(name: str, q: float, c: float, **params: float) -> float:
    """E[φ'(u1)φ'(u2)] for (u1, u2) as in `correlation_map`.

    σ_w² times this, at the fixed point (q*, c*), is χ_c, the slope of the correlation map
    (Schoenholz et al. 2017, eq. 8). At c = 1 it equals E[φ'²].
    """
    return _pair(name, q, c, params, derivative=True)


def _pair(name: str, q: float, c: float, params: dict[str, float], derivative: bool) -> float:
    resolved = _resolve(name, params)
    q = _check_q(q)
    if not -1.0 <= c <= 1.0:
        raise ValueError(f"a correlation must lie in [-1, 1], got {c!r}")
    if name in EXACT:
        return _leaky_pair(_leaky_slope(name, resolved), q, c, derivative)
    act = _activation(name, resolved)
    f = act.dphi if derivative else act.phi
    return _expect_pair(f, f, q, c)
