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
    """Roy & Vetterli (2007): exp of the entropy of the normalized singular values."""
    return effective_ranks([m])[0]


def effective_ranks(mats: list[torch.Tensor]) -> list[float]:
    """The effective rank of each matrix, read back at once (the fixed tier takes one per row:
    a read-back per row cost more than the reductions on a small network). A float32 matrix's
    Gram eigenvalues are taken in float32 (float64 stays): the entropy is dominated by the large
    singular values, and agrees to ~1e-6 relative at half the cost; a float32 Gram that
    overflowed or did not converge is retried in float64 (`singular_values`)."""
    grams = []
    for m in mats:
        m = m if m.dtype == torch.float64 else m.float()
        grams.append(m.T @ m if m.shape[0] >= m.shape[1] else m @ m.T)
    finite = torch.stack([torch.isfinite(g).all() for g in grams]).tolist() if grams else []
    entropies = []
    for m, g, ok in zip(mats, grams, finite):
        s = None
        if ok:
            try:
                s = torch.linalg.eigvalsh(g).clamp_min(0).sqrt().double()
            except RuntimeError:          # no convergence in float32: retry in float64
                s = None
        if s is None:
            try:
                s = singular_values(m)
            except RuntimeError:
                s = torch.full((1,), math.nan, dtype=torch.float64, device=m.device)
        total = s.sum()
        p = s / total
        entropies.append(torch.stack([total, -torch.special.xlogy(p, p).sum()]))
    out = []
    for total, entropy in (torch.stack(entropies).tolist() if entropies else []):
        out.append(math.exp(entropy) if math.isfinite(total) and total > 0 else 0.0)
    return out


def unit_view(t: torch.Tensor) -> torch.Tensor:
    """(units, samples·positions): a unit is a feature, or a channel of an image."""
    t = t.detach()
    if t.dim() == 4:
        return t.transpose(0, 1).reshape(t.shape[1], -1)
    if t.dim() == 3:             # a sequence: a unit is a feature of every token
        return t.reshape(-1, t.shape[-1]).T
    return t.reshape(t.shape[0], -1).T


def dead_fraction(pre: torch.Tensor) -> float:
    return float(dead_share(pre))


def dead_share(pre: torch.Tensor) -> torch.Tensor:
    """Fraction of units whose pre-activation is ≤ 0 on every probe sample (never active), as a
    0-d tensor (read back with others at once)."""
    u = unit_view(pre)
    return (u <= 0).all(dim=1).float().mean()


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
    return float(spread(x))


def spread(x: torch.Tensor) -> torch.Tensor:
    """`normalized_variance` as a 0-d float64 tensor (0 when the mean is 0)."""
    x = x.detach().double().flatten()
    mu = x.mean()
    return torch.where(mu != 0, x.var(unbiased=False) / (mu * mu), torch.zeros_like(mu))


SVD_LIMIT = 64    # above this smaller dimension, estimate instead of a full eigendecomposition


def spectrum(m: torch.Tensor) -> dict[str, float]:
    """Extreme singular values and `cond`, the normalized variance of the squared singular values.

    Small matrices get the exact spectrum. Larger ones use the Gram matrix G = M·Mᵀ (the smaller side):
    mean s² = tr G / n and mean s⁴ = ‖G‖²_F / n give `cond` exactly, and s_max comes from a few
    power iterations on G; s_min is left out (it would need the full spectrum; nothing judges it)."""
    parts = spectrum_parts(m)
    return dict(zip(parts, torch.stack(list(parts.values())).tolist()))


def spectrum_parts(m: torch.Tensor) -> dict[str, torch.Tensor]:
    """`spectrum` as 0-d float64 tensors, so that several weights are read back at once."""
    if min(m.shape) <= SVD_LIMIT:
        s = singular_values(m)
        return {"s_max": s.max(), "s_min": s.min(), "cond": spread(s.pow(2))}
    g = m @ m.T if m.shape[0] <= m.shape[1] else m.T @ m    # the Gram in m's dtype (float32: fast)
    n = g.shape[0]
    mean2 = torch.trace(g.double()) / n
    mean4 = g.double().pow(2).sum() / n
    v = torch.ones(n, dtype=g.dtype, device=g.device) / n ** 0.5
    lam = torch.zeros((), dtype=g.dtype, device=g.device)
    for _ in range(30):                 # a fixed count: no read-back inside the loop
        w = g @ v
        lam = w.norm()
        v = w / torch.where(lam > 0, lam, torch.ones_like(lam))    # a zero matrix stays at 0
    cond = torch.where(mean2 > 0, mean4 / (mean2 * mean2) - 1, torch.zeros_like(mean2))
    return {"s_max": lam.double().sqrt(), "cond": cond}


def weight_matrix(w: torch.Tensor) -> torch.Tensor:
    return w.detach().reshape(w.shape[0], -1).float()


def activation_slope_sq(module: torch.nn.Module, pre: torch.Tensor) -> torch.Tensor:
    """φ'(h)² over the probe batch, by autograd on a detached copy of the pre-activation."""
    h = pre.detach().float().requires_grad_(True)
    with torch.enable_grad():
        (g,) = torch.autograd.grad(module(h).sum(), h)
    return g.pow(2)
