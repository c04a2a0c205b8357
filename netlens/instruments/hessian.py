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

    def estimate(self, loss: torch.Tensor, params: Vec, generator: torch.Generator) -> tuple[float, int]:
        """(λ_max — or λ_min's Ritz estimate for `which="bottom"` — and the products used). `generator` draws the first start vector without touching the
        global random state, so training is unaffected."""
        grads = torch.autograd.grad(loss, params, create_graph=True)

        def hvp(v: Vec) -> Vec:
            return list(torch.autograd.grad(grads, params, grad_outputs=v, retain_graph=True))

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
