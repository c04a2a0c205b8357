"""The precision instrument: how much of one update the parameter dtype kept.

Called once per weight row from `Instruments.after_update`, with the weights before the step and
the parameter after it (its `.grad` still holds the step's gradient):

    rounded = #{w : g ≠ 0 and w_after = w_before} / #{w : g ≠ 0}

the share of the row's weights that were meant to move (a non-zero gradient) but did not, because
the step was below about half an ulp of the weight and rounded away in the parameter's dtype
(float32: 2⁻²⁴ ≈ 6e-8 relative; bfloat16: 2⁻⁹ ≈ 2e-3 relative). It only reads.
"""
from __future__ import annotations

import torch


def rounded_share(before: torch.Tensor, weight: torch.Tensor) -> float | None:
    grad = weight.grad
    if grad is None:
        return None
    meant = grad.detach() != 0
    n = int(meant.sum())
    if n == 0:
        return None
    kept = weight.detach() == before
    return float((kept & meant).sum()) / n


def record(snap, index: int, before: torch.Tensor, weight: torch.Tensor) -> None:
    """Store the row's rounded share in the probe's snapshot (no snapshot: nothing)."""
    if snap is not None:
        share = rounded_share(before, weight)
        if share is not None:
            snap.rows[index]["rounded"] = share
