"""Top Hessian eigenvalue of the training loss by power iteration on Hessian-vector products.

The gradient graph is built once per estimate (create_graph=True); each product is one
double-backward through it. The eigenvector is kept between estimates (warm start), so after the
first estimate a few products usually suffice (Cohen et al. 2021 track sharpness this way).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class PowerIteration:
    max_products: int = 20
    tol: float = 1e-3
    vector: list[torch.Tensor] | None = field(default=None, repr=False)

    def estimate(self, loss: torch.Tensor, params: list[torch.Tensor],
                 generator: torch.Generator) -> tuple[float, int]:
        """(λ_max, products used). `generator` draws the first start vector without touching the
        global random state, so training is unaffected."""
        grads = torch.autograd.grad(loss, params, create_graph=True)
        v = self.vector
        if v is None or any(a.shape != p.shape for a, p in zip(v, params)):
            v = [torch.randn(p.shape, generator=generator, dtype=p.dtype).to(p.device) for p in params]
        v = _normalized(v)
        lam, used = 0.0, 0
        for used in range(1, self.max_products + 1):
            hv = torch.autograd.grad(grads, params, grad_outputs=v, retain_graph=True)
            new = sum(float((a * b).sum()) for a, b in zip(v, hv))   # Rayleigh quotient
            norm = _norm(hv)
            if not (norm > 0 and torch.isfinite(torch.tensor(norm))):
                break
            v = [h / norm for h in hv]
            if used > 1 and abs(new - lam) <= self.tol * max(abs(new), 1e-12):
                lam = new
                break
            lam = new
        self.vector = [t.detach() for t in v]
        return lam, used


def _norm(vs: list[torch.Tensor]) -> float:
    return float(torch.sqrt(sum((t.double() ** 2).sum() for t in vs)))


def _normalized(vs: list[torch.Tensor]) -> list[torch.Tensor]:
    n = _norm(vs)
    return [t / n for t in vs]
