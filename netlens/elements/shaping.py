"""Rows that reshape, pool or regularize: `flatten`, `maxpool`, `avgpool`, `global_avgpool`, `dropout`,
`gaussian_dropout`."""
from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import numpy as np
from pydantic import Field

from netlens.elements import register
from netlens.elements.base import Beam, Context, Element, NoOptions, Optics, Options, Shape, need_rank
from netlens.errors import DesignError


@register
class Flatten(Element):
    name = "flatten"
    kind = "reshape"
    summary = "turn a (C, H, W) image into a vector of C·H·W features"
    options = NoOptions

    def out_shape(self, shape: Shape) -> Shape:
        return (math.prod(shape),)

    def build(self, shape: Shape, ctx: Context) -> Any:
        import torch

        return torch.nn.Flatten()


@lru_cache(maxsize=64)
def _max_power(n: int) -> float:
    """E[max(z_1..z_n)²] for iid standard normals, by quadrature of the max's density."""
    from math import erf

    x = np.linspace(-8, 8, 4001)
    pdf = np.exp(-x * x / 2) / math.sqrt(2 * math.pi)
    cdf = 0.5 * (1 + np.vectorize(erf)(x / math.sqrt(2)))
    dens = n * pdf * cdf ** (n - 1)
    return float(np.trapezoid(x * x * dens, x))


class Pool(Element):
    kind = "pool"
    short = "kernel"

    class options(Options):
        kernel: int = Field(2, gt=0)

    def out_shape(self, shape: Shape) -> Shape:
        need_rank(shape, (3,), self.name)
        c, h, w = shape
        k = self.opts.kernel
        if k > h or k > w:
            raise DesignError(f"a {k}×{k} pool does not fit the {h}×{w} image that arrives here",
                              expected=f"kernel ≤ {min(h, w)}", found=k)
        return (c, h // k, w // k)


@register
class MaxPool(Pool):
    name = "maxpool"
    summary = "max over k×k windows (stride k)"

    def paraxial(self, beam: Beam, ctx: Context) -> Optics:
        n = self.opts.kernel ** 2
        # Approximation: window entries independent and centred; gradient goes to one of n inputs.
        q = beam.q * _max_power(n)
        return Optics(Beam(self.out_shape(beam.shape), q, beam.m), q / beam.q, 1.0 / n, 0.0,
                      "maxpool: window entries taken as independent")

    def build(self, shape: Shape, ctx: Context) -> Any:
        import torch

        return torch.nn.MaxPool2d(self.opts.kernel)


def _average(beam: Beam, n: int, shape: Shape, label: str) -> Optics:
    # Averaging n independent entries keeps the mean and divides the variance by n;
    # each input gets 1/n of the output gradient, so gradient power per unit falls by n².
    q = beam.m + (beam.q - beam.m) / n
    return Optics(Beam(shape, q, beam.m), q / beam.q if beam.q else 1.0, 1.0 / n ** 2, 0.0,
                  f"{label}: window entries taken as independent")


@register
class AvgPool(Pool):
    name = "avgpool"
    summary = "mean over k×k windows (stride k)"

    def paraxial(self, beam: Beam, ctx: Context) -> Optics:
        return _average(beam, self.opts.kernel ** 2, self.out_shape(beam.shape), self.name)

    def build(self, shape: Shape, ctx: Context) -> Any:
        import torch

        return torch.nn.AvgPool2d(self.opts.kernel)


@register
class GlobalAvgPool(Element):
    name = "global_avgpool"
    kind = "pool"
    summary = "mean over all positions of each channel: (C, H, W) → (C,)"
    options = NoOptions

    def out_shape(self, shape: Shape) -> Shape:
        need_rank(shape, (3,), self.name)
        return (shape[0],)

    def paraxial(self, beam: Beam, ctx: Context) -> Optics:
        return _average(beam, beam.shape[1] * beam.shape[2], self.out_shape(beam.shape), self.name)

    def build(self, shape: Shape, ctx: Context) -> Any:
        import torch

        return torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())


@register
class Dropout(Element):
    name = "dropout"
    kind = "regularizer"
    summary = "zero each unit with probability p in training, scale the rest by 1/(1−p)"
    source = "Srivastava et al. 2014"
    corrects = ("GAP",)
    short = "p"

    class options(Options):
        p: float = Field(0.5, ge=0, lt=1)

    def paraxial(self, beam: Beam, ctx: Context) -> Optics:
        g = 1.0 / (1.0 - self.opts.p)
        return Optics(Beam(beam.shape, beam.q * g, beam.m), g, g)

    def build(self, shape: Shape, ctx: Context) -> Any:
        import torch

        return torch.nn.Dropout(self.opts.p)


@register
class GaussianDropout(Element):
    name = "gaussian_dropout"
    kind = "regularizer"
    summary = ("multiply each unit by 1 + N(0, p/(1−p)) in training: the same mean and variance "
               "as dropout with rate p, without the zeros")
    source = "Srivastava et al. 2014, §10 (multiplicative Gaussian noise)"
    corrects = ("GAP",)
    short = "p"

    class options(Options):
        p: float = Field(0.5, ge=0, lt=1)

    def paraxial(self, beam: Beam, ctx: Context) -> Optics:
        g = 1.0 / (1.0 - self.opts.p)       # E[(1 + ε)²] = 1 + p/(1−p), as for dropout
        return Optics(Beam(beam.shape, beam.q * g, beam.m), g, g)

    def build(self, shape: Shape, ctx: Context) -> Any:
        return _gaussian_dropout(self.opts.p)


def _gaussian_dropout(p: float):
    import torch

    class GaussianDropout(torch.nn.Dropout):
        """A Dropout subclass, so whatever switches dropout off (eval mode, the Hessian of a fixed
        function) switches this off too."""

        def forward(self, x):
            if not self.training or self.p == 0:
                return x
            sd = (self.p / (1 - self.p)) ** 0.5
            return x * (1 + sd * torch.randn_like(x))

    return GaussianDropout(p)
