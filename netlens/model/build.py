"""design → model. One torch module per row, addressed by the row's index, so instruments can
hook any row and reports can name it. Weight statistics come from the paraxial trace (one source
of truth for `init: critical` and every other init)."""
from __future__ import annotations

import torch
from torch import nn

from netlens.elements import Context
from netlens.paraxial.trace import Trace
from netlens.prescription import Design


class Join(nn.Module):
    """The output of a residual block: skip (projected when shapes differ) + α·branch."""

    def __init__(self, in_shape: tuple, out_shape: tuple, scale: float):
        super().__init__()
        self.scale = scale
        self.proj: nn.Module | None = None
        if in_shape != out_shape:
            if len(in_shape) == 3:
                stride = max(1, in_shape[1] // out_shape[1])
                self.proj = nn.Conv2d(in_shape[0], out_shape[0], 1, stride=stride, bias=False)
            else:
                self.proj = nn.Linear(in_shape[0], out_shape[0], bias=False)
            # LeCun-normal keeps the skip path's power (the paraxial rule assumes so).
            nn.init.normal_(self.proj.weight, 0.0, self.proj.weight[0].numel() ** -0.5)

    def forward(self, x: torch.Tensor, branch: torch.Tensor) -> torch.Tensor:
        skip = x if self.proj is None else self.proj(x)
        return skip + self.scale * branch


class Network(nn.Module):
    """`rows[i]` is the module of row #i; residual rows hold a `Join`."""

    def __init__(self, design: Design, trace: Trace):
        super().__init__()
        mods = []
        for row, tr in zip(design.rows, trace.rows):
            if row.element is None:
                mods.append(Join(tr.in_shape, tr.out_shape, row.scale))
            else:
                mods.append(row.element.build(tr.in_shape, Context(sigma_w2=tr.sigma_w2,
                                                                   sigma_b2=tr.sigma_b2)))
        self.rows = nn.ModuleList(mods)
        self.top = [r.index for r in design.top_rows()]
        self.children_of = {r.index: list(r.children) for r in design.rows if r.element is None}

    def _chain(self, chain: list[int], x: torch.Tensor) -> torch.Tensor:
        for i in chain:
            if i in self.children_of:
                x = self.rows[i](x, self._chain(self.children_of[i], x))
            else:
                x = self.rows[i](x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._chain(self.top, x)


def build_network(design: Design, trace: Trace, seed: int | None = None) -> Network:
    """Build with the design's seed (or `seed`), so the same prescription always starts from the
    same weights."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(design.seed if seed is None else seed)
        return Network(design, trace)
