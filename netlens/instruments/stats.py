"""Pure tensor statistics the instruments record. Each takes tensors and returns floats.

Measurement only: nothing here touches a model, an optimizer or a random generator.
"""
from __future__ import annotations

import math

import torch

RELU_FAMILY = frozenset({"relu", "leaky_relu", "elu", "selu", "gelu", "silu", "softplus"})
SATURATING = frozenset({"tanh", "sigmoid"})
TAIL = 0.97   # Karpathy's rule: |tanh| > 0.97 sits on a flat tail


def as_matrix(t: torch.Tensor) -> torch.Tensor:
    """(batch, features) view in float32 (float64 stays); a sequence (batch, T, D) is viewed per
    token, (batch·T, D)."""
    m = t.detach().reshape(-1, t.shape[-1]) if t.dim() == 3 else t.detach().reshape(t.shape[0], -1)
    return m if m.dtype in (torch.float32, torch.float64) else m.float()


def mean_square(t: torch.Tensor) -> float:
    return float(as_matrix(t).pow(2).mean())


def singular_values(m: torch.Tensor) -> torch.Tensor:
    """Singular values from the eigenvalues of the smaller Gram matrix, in float64: several times
    faster than an SVD on the tall-and-thin matrices instruments see, and exact enough for
    entropies and moments (only values below ~1e-8·s_max lose precision)."""
    m = m.double()
    g = m.T @ m if m.shape[0] >= m.shape[1] else m @ m.T
    if not bool(torch.isfinite(g).all()):       # overflowed: the values are missing, not a crash
        return torch.full((g.shape[0],), math.nan, dtype=torch.float64)
    try:
        return torch.linalg.eigvalsh(g).clamp_min(0).sqrt().flip(0)
    except RuntimeError:                        # LinAlgError: did not converge (huge, ill-conditioned)
        return torch.full((g.shape[0],), math.nan, dtype=torch.float64)


def effective_rank(m: torch.Tensor) -> float:
    """Roy & Vetterli (2007): exp of the entropy of the normalized singular values. A float32
    matrix's Gram eigenvalues are taken in float32 (float64 stays): the entropy is dominated by
    the large singular values, and agrees to ~1e-6 relative at half the cost."""
    s = None
    if m.dtype != torch.float64:
        m32 = m.float()
        g = m32.T @ m32 if m32.shape[0] >= m32.shape[1] else m32 @ m32.T
        if torch.isfinite(g).all():
            try:
                s = torch.linalg.eigvalsh(g).clamp_min(0).sqrt().double()
            except RuntimeError:          # no convergence in float32: retry in float64
                s = None
    if s is None:
        try:
            s = singular_values(m)
        except RuntimeError:
            return float("nan")
    total = s.sum()
    if not torch.isfinite(total) or total <= 0:
        return 0.0
    p = s / total
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


def unit_view(t: torch.Tensor) -> torch.Tensor:
    """(units, samples·positions): a unit is a feature, or a channel of an image."""
    t = t.detach()
    if t.dim() == 4:
        return t.transpose(0, 1).reshape(t.shape[1], -1)
    if t.dim() == 3:             # a sequence: a unit is a feature of every token
        return t.reshape(-1, t.shape[-1]).T
    return t.reshape(t.shape[0], -1).T


def dead_fraction(pre: torch.Tensor) -> float:
    """Fraction of units whose pre-activation is ≤ 0 on every probe sample (never active)."""
    u = unit_view(pre)
    return float((u <= 0).all(dim=1).float().mean())


def saturated_share(name: str, out: torch.Tensor) -> torch.Tensor:
    """The share of outputs on the flat tails, as a 0-d tensor (read back with others at once)."""
    o = out.detach().float()
    if name == "tanh":
        return (o.abs() > TAIL).float().mean()
    return ((o < 1 - TAIL) | (o > TAIL)).float().mean()


def saturated_fraction(name: str, out: torch.Tensor) -> float:
    return float(saturated_share(name, out))


def mean_share(t: torch.Tensor) -> float:
    """Share of the power held in per-unit means over the batch: Σ mean² / Σ E[x²]."""
    u = unit_view(t).float()
    q = u.pow(2).mean()
    return float(u.mean(dim=1).pow(2).mean() / q) if q > 0 else 0.0


def normalized_variance(x: torch.Tensor) -> float:
    """var(x)/mean(x)² — the spread measure that adds across rows under free probability."""
    x = x.detach().double().flatten()
    mu = x.mean()
    return float(x.var(unbiased=False) / mu ** 2) if mu != 0 else 0.0


SVD_LIMIT = 64    # above this smaller dimension, estimate instead of a full eigendecomposition


def spectrum(m: torch.Tensor) -> dict[str, float]:
    """Extreme singular values and `cond`, the normalized variance of the squared singular values.

    Small matrices get the exact spectrum. Larger ones use the Gram matrix G = M·Mᵀ (the smaller side):
    mean s² = tr G / n and mean s⁴ = ‖G‖²_F / n give `cond` exactly, and s_max comes from a few
    power iterations on G; s_min is left out (it would need the full spectrum; nothing judges it)."""
    if min(m.shape) <= SVD_LIMIT:
        s = singular_values(m)
        return {"s_max": float(s.max()), "s_min": float(s.min()),
                "cond": normalized_variance(s.pow(2))}
    g = m @ m.T if m.shape[0] <= m.shape[1] else m.T @ m    # the Gram in m's dtype (float32: fast)
    n = g.shape[0]
    mean2 = float(torch.trace(g.double())) / n
    mean4 = float(g.double().pow(2).sum()) / n
    v = torch.ones(n, dtype=g.dtype, device=g.device) / n ** 0.5
    lam = 0.0
    for _ in range(30):
        w = g @ v
        lam = float(w.norm())
        if lam == 0:
            break
        v = w / lam
    return {"s_max": lam ** 0.5, "cond": mean4 / mean2 ** 2 - 1 if mean2 > 0 else 0.0}


def weight_matrix(w: torch.Tensor) -> torch.Tensor:
    return w.detach().reshape(w.shape[0], -1).float()


def activation_slope_sq(module: torch.nn.Module, pre: torch.Tensor) -> torch.Tensor:
    """φ'(h)² over the probe batch, by autograd on a detached copy of the pre-activation."""
    h = pre.detach().float().requires_grad_(True)
    with torch.enable_grad():
        (g,) = torch.autograd.grad(module(h).sum(), h)
    return g.pow(2)
