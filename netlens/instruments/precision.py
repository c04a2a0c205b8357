"""The precision instrument: how much of one update the parameter dtype kept.

Read by `Instruments.after_update` for every weight row at once, from the step taken
(Δw = after − before) and the gradient still in `.grad`:

    rounded = #{w : g ≠ 0 and w_after = w_before} / #{w : g ≠ 0}

the share of the row's weights that were meant to move (a non-zero gradient) but did not, because
the step was below about half an ulp of the weight and rounded away in the parameter's dtype
(float32: 2⁻²⁴ ≈ 6e-8 relative; bfloat16: 2⁻⁹ ≈ 2e-3 relative). It only reads.

A row of more than `SAMPLE` weights is read on a fixed random subset of `SAMPLE` of them (drawn
once per run from its own generator): the share's standard error is then at most
√(0.25/4096) ≈ 0.8%, against PREC's thresholds of 10% and 50%, and the count costs the same on a
512 × 512 layer as on a small one (counting every weight cost a quarter of a training step there).
Counted without boolean masks: #{g ≠ 0} = nnz(g), and a weight meant to move moved when
sign(g)·sign(Δw) ≠ 0 — the signs are exactly ±1 or 0, so their product cannot underflow the way
g·Δw could; Δw = 0 exactly when w_after = w_before (the difference of two distinct floats is
never zero, by gradual underflow).
"""
from __future__ import annotations

import torch

SAMPLE = 4096


def sample_indices(weights: dict[int, torch.Tensor], seed: int) -> dict[int, torch.Tensor | None]:
    """Per weight row, the flat indices it is read at (None: every weight)."""
    gen = torch.Generator().manual_seed(seed)
    return {i: (torch.randperm(w.numel(), generator=gen)[:SAMPLE].to(w.device)
                if w.numel() > SAMPLE else None) for i, w in weights.items()}


def counts(moved: list[torch.Tensor], grads: list[torch.Tensor | None],
           where: list[torch.Tensor | None]) -> list[torch.Tensor]:
    """Per row, two 0-d tensors (read back with the other readings at once): the weights meant
    to move, and those of them that moved, over the row's sampled weights (`where`). A row
    without a gradient counts 0 and 0."""
    out = []
    for step, g, idx in zip(moved, grads, where):
        if g is None:
            zero = torch.zeros((), dtype=torch.int64, device=step.device)
            out += [zero, zero]
            continue
        g, step = g.detach().reshape(-1), step.reshape(-1)
        if idx is not None:
            g, step = g[idx], step[idx]
        out += [torch.count_nonzero(g), torch.count_nonzero(g.sign().mul_(step.sign()))]
    return out


def share(meant: float, moved: float) -> float | None:
    """The rounded share from the two counts; None when nothing was meant to move."""
    return (meant - moved) / meant if meant > 0 else None
