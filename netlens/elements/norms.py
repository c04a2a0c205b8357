"""Normalization rows. Paraxial rule (docs/theory.md §1): output power γ² + β² = 1 at the default
affine init; backward gain 1/var_in — the *batch variance* (q − m) for batchnorm, which is what
makes deep BN-relu stacks explode by π/(π−1) per layer (Yang et al. 2019)."""
from __future__ import annotations

import math
from typing import Any

from pydantic import Field

from netlens.elements import register
from netlens.elements.base import Beam, Context, Element, NoOptions, Optics, Options, Shape
from netlens.errors import DesignError


def _size(shape: Shape) -> int:
    return math.prod(shape)


def _normalized(shape: Shape) -> list[int]:
    """The axes a per-sample norm normalizes: all of them, but only the last (each token's
    features) for a sequence (T, D)."""
    return [shape[-1]] if len(shape) == 2 else list(shape)


def _features(shape: Shape) -> int:
    return math.prod(_normalized(shape))


class Norm(Element):
    kind = "norm"
    corrects = ("GAIN", "FLOW", "RANK", "MEAN")

    def removes_mean(self) -> bool:
        return False

    def paraxial(self, beam: Beam, ctx: Context) -> Optics:
        var = beam.q - beam.m if self.removes_mean() else beam.q
        var = max(var, 1e-12)
        # Per-unit means over the batch: batchnorm removes them; per-sample norms keep their share.
        m = 0.0 if self.removes_mean() else (beam.m / beam.q if beam.q > 0 else 0.0)
        return Optics(Beam(beam.shape, 1.0, m), 1.0 / beam.q if beam.q > 0 else 1.0, 1.0 / var)

    def n_params(self, shape: Shape) -> int:
        return 2 * shape[0]


@register
class BatchNorm(Norm):
    name = "batchnorm"
    summary = "normalize each unit/channel over the batch, then scale and shift"
    source = "Ioffe & Szegedy 2015; gradient explosion: Yang et al. 2019"
    options = NoOptions

    def removes_mean(self) -> bool:
        return True

    def out_shape(self, shape: Shape) -> Shape:
        if len(shape) == 2:
            raise DesignError("`batchnorm` does not normalize sequences here",
                              expected="a flat vector or an image", found=f"a sequence {shape[0]}×{shape[1]}",
                              suggestion="Use `layernorm` or `rmsnorm`, which act on each token's features.")
        return shape

    def build(self, shape: Shape, ctx: Context) -> Any:
        import torch

        return (torch.nn.BatchNorm2d if len(shape) == 3 else torch.nn.BatchNorm1d)(shape[0])


@register
class LayerNorm(Norm):
    name = "layernorm"
    summary = "normalize each sample over its features (all of C×H×W for images)"
    source = "Ba et al. 2016"
    options = NoOptions

    def n_params(self, shape: Shape) -> int:
        return 2 * _features(shape)

    def build(self, shape: Shape, ctx: Context) -> Any:
        import torch

        return torch.nn.LayerNorm(_normalized(shape))


@register
class GroupNorm(Norm):
    name = "groupnorm"
    summary = "normalize groups of channels per sample"
    source = "Wu & He 2018"
    short = "groups"

    class options(Options):
        groups: int = Field(8, gt=0)

    def out_shape(self, shape: Shape) -> Shape:
        if shape[0] % self.opts.groups:
            raise DesignError(
                f"{shape[0]} channels cannot be split into {self.opts.groups} groups",
                expected=f"groups dividing {shape[0]}", found=self.opts.groups,
                suggestion="Pick a divisor of the channel count.")
        return shape

    def build(self, shape: Shape, ctx: Context) -> Any:
        import torch

        return torch.nn.GroupNorm(self.opts.groups, shape[0])


@register
class RmsNorm(Norm):
    name = "rmsnorm"
    summary = "divide each sample by its root mean square over features (no centring)"
    source = "Zhang & Sennrich 2019"
    options = NoOptions

    def n_params(self, shape: Shape) -> int:
        return _features(shape)

    def build(self, shape: Shape, ctx: Context) -> Any:
        import torch

        return torch.nn.RMSNorm(_normalized(shape))
