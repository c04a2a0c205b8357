"""Top Hessian eigenvalue of the training loss by Lanczos on Hessian-vector products.

The largest *algebraic* eigenvalue is what the stability limit η·λ < 2 is about; plain power
iteration finds the largest in magnitude, which early in training is often a large negative one
(a saddle). Lanczos builds a small tridiagonal matrix from k products whose top Ritz value
converges to λ_max from below, fast for extremal eigenvalues (Ghorbani et al. 2019 use it for
Hessian spectra). The gradient graph is built once per estimate (create_graph=True); each product
is one double-backward through it. The top Ritz vector is kept as the next start (warm start), as
Cohen et al. (2021) track sharpness.

`which="bottom"` tracks the other end of the same Krylov space: the smallest Ritz value, an
upper bound on the most negative eigenvalue λ_min (Ritz values lie inside the spectrum), so a
negative reading proves a direction of negative curvature — a saddle — exists (Dauphin et al.
2014). It converges more slowly than the top when a few large positive outliers dominate the
spectrum (Ghorbani et al. 2019), hence its own, larger product budget in `probe.hessian`.

Preconditioned sharpness (Cohen et al. 2022, "Adaptive Gradient Methods at the Edge of
Stability", arXiv 2207.14484): an adaptive optimizer steps along −η·P⁻¹∇L with a diagonal
preconditioner P, so its stability is governed by λ₁(P⁻¹H), not λ₁(H). P⁻¹H has the eigenvalues of
the symmetric P^{−1/2} H P^{−1/2}, which Lanczos takes through the products v ↦ D·H(D·v),
D = P^{−1/2}. `preconditioner` builds P from the optimizer's own state: Adam/AdamW
P = √(v/(1−β₂ᵗ)) + ε (bias-corrected second moments, as the update uses them), RMSProp
P = √v + ε (√(v − ḡ²) + ε when centered).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import math

import torch

Vec = list[torch.Tensor]


@dataclass
class Lanczos:
    max_products: int = 20
    tol: float = 1e-3
    which: str = "top"                  # "top": λ_max; "bottom": the most negative end, λ_min
    vector: Vec | None = field(default=None, repr=False)

    def estimate(self, loss: torch.Tensor, params: Vec, generator: torch.Generator,
                 scale: Vec | None = None) -> tuple[float, int]:
        """(λ_max — or λ_min's Ritz estimate for `which="bottom"` — and the products used). `generator` draws the first start vector without touching the
        global random state, so training is unaffected. With `scale` D (one tensor per parameter),
        the operator is D·H·D: D = P^{−1/2} gives the preconditioned sharpness λ₁(P⁻¹H)."""
        grads = torch.autograd.grad(loss, params, create_graph=True)

        def hvp(v: Vec) -> Vec:
            if scale is not None:
                v = [d * t for d, t in zip(scale, v)]
            out = list(torch.autograd.grad(grads, params, grad_outputs=v, retain_graph=True))
            return out if scale is None else [d * t for d, t in zip(scale, out)]

        v = self.vector
        if v is None or any(a.shape != p.shape for a, p in zip(v, params)):
            v = [torch.randn(p.shape, generator=generator, dtype=p.dtype).to(p.device) for p in params]
        v = _scale(v, 1.0 / _norm(v))
        basis: list[Vec] = [v]
        alphas: list[float] = []
        betas: list[float] = []
        top, top_prev, ritz = 0.0, None, torch.ones(1, dtype=torch.float64)
        for k in range(self.max_products):
            w = hvp(basis[-1])
            if not all(torch.isfinite(t).all() for t in w):
                break
            alphas.append(_dot(w, basis[-1]))
            # Full re-orthogonalization against the basis: k is small, and it keeps Ritz values honest.
            for b in basis:
                w = _axpy(w, b, -_dot(w, b))
            T = _tridiagonal(alphas, betas)
            if not bool(torch.isfinite(T).all()):
                top = math.nan
                break
            try:
                evals, evecs = torch.linalg.eigh(T)
            except RuntimeError:             # LinAlgError: the estimate is missing, not a crash
                top = math.nan
                break
            end = 0 if self.which == "bottom" else -1
            top, ritz = float(evals[end]), evecs[:, end]
            if top_prev is not None and abs(top - top_prev) <= self.tol * max(abs(top), 1e-12):
                break
            top_prev = top
            beta = _norm(w)
            if beta <= 1e-12 * max(abs(top), 1.0) or k == self.max_products - 1:
                break
            betas.append(beta)
            basis.append(_scale(w, 1.0 / beta))
        used = len(alphas)
        # Warm start: the tracked Ritz vector, Σ_i y_i·v_i.
        start = [torch.zeros_like(p) for p in params]
        for coef, b in zip(ritz.tolist(), basis[: len(ritz)]):
            start = _axpy(start, b, coef)
        n = _norm(start)
        self.vector = [t.detach() / n for t in start] if n > 0 else None
        return top, used


def preconditioner(optimizer: torch.optim.Optimizer, params: Vec,
                   grads: list[torch.Tensor | None]) -> Vec | None:
    """D = P^{−1/2} per parameter: P is the diagonal preconditioner of the update an Adam, AdamW
    or RMSprop optimizer is about to take with gradients `grads` (its state's second moments
    advanced by this gradient, bias-corrected for Adam), plus ε. None for other optimizers.

    At step 0 this is P of the first update: Adam's v̂₁ = g₁² (its first step is a sign step)."""
    if not isinstance(optimizer, (torch.optim.Adam, torch.optim.AdamW, torch.optim.RMSprop)):
        return None
    group_of = {id(p): g for g in optimizer.param_groups for p in g["params"]}
    out = []
    with torch.no_grad():
        for p, grad in zip(params, grads):
            st, g = optimizer.state.get(p) or {}, group_of.get(id(p))
            if g is None:
                return None
            grad = torch.zeros_like(p) if grad is None else grad.detach()
            if isinstance(optimizer, torch.optim.RMSprop):
                alpha = g["alpha"]
                v = alpha * st["square_avg"] if "square_avg" in st else torch.zeros_like(p)
                if g["weight_decay"]:
                    grad = grad + g["weight_decay"] * p.detach()
                v = v + (1 - alpha) * grad * grad
                if g.get("centered"):
                    mean = alpha * st["grad_avg"] if "grad_avg" in st else torch.zeros_like(p)
                    v = v - (mean + (1 - alpha) * grad) ** 2
            else:
                b2 = g["betas"][1]
                if g["weight_decay"] and not isinstance(optimizer, torch.optim.AdamW):
                    grad = grad + g["weight_decay"] * p.detach()      # Adam's coupled L2
                t = float(st["step"]) + 1 if "step" in st else 1.0
                v = b2 * st["exp_avg_sq"] if "exp_avg_sq" in st else torch.zeros_like(p)
                v = (v + (1 - b2) * grad * grad) / (1 - b2 ** t)
            out.append((v.clamp_min(0).sqrt() + g["eps"]).rsqrt().to(p.dtype))
    return out


def _tridiagonal(alphas: list[float], betas: list[float]) -> torch.Tensor:
    k = len(alphas)
    T = torch.diag(torch.tensor(alphas, dtype=torch.float64))
    if k > 1:
        off = torch.tensor(betas[: k - 1], dtype=torch.float64)
        T += torch.diag(off, 1) + torch.diag(off, -1)
    return T


def _dot(a: Vec, b: Vec) -> float:
    return float(sum((x.double() * y.double()).sum() for x, y in zip(a, b)))


def _norm(a: Vec) -> float:
    return _dot(a, a) ** 0.5


def _scale(a: Vec, c: float) -> Vec:
    return [x * c for x in a]


def _axpy(a: Vec, b: Vec, c: float) -> Vec:
    return [x + c * y for x, y in zip(a, b)]
