"""Rows with weights: `linear` and `conv2d`.

Paraxial rule (docs/theory.md §1): q_out = σ_w²·q_in + σ_b²; backward gain σ_w²·fan_out_eff/fan_in.
"""
from __future__ import annotations

from abc import abstractmethod
from typing import Any

from pydantic import Field, field_validator

from netlens.elements import register
from netlens.elements.base import Beam, Context, Element, Optics, Options, Shape, need_rank
from netlens.elements.inits import InitSpec, parse_init
from netlens.errors import DesignError


class WeightOptions(Options):
    bias: bool = True
    init: Any = Field("default", validate_default=True)

    @field_validator("init", mode="before")
    @classmethod
    def _init(cls, v: Any) -> InitSpec:
        return parse_init(v)


class Weighted(Element):
    """Common rules of rows with a weight matrix or kernel."""

    has_weights = True
    corrects = ("FLOW", "GAIN")

    @abstractmethod
    def fans(self, shape: Shape) -> tuple[int, int, float]:
        """(fan_in, fan_out of the weight, effective fan_out for the backward pass)."""

    def paraxial(self, beam: Beam, ctx: Context) -> Optics:
        fan_in, fan_out, fan_eff = self.fans(beam.shape)
        sw, sb = ctx.sigma_w2 or 0.0, (ctx.sigma_b2 or 0.0) if self.opts.bias else 0.0
        q = sw * beam.q + sb
        m = sw * beam.m + sb
        flow = sw * fan_eff / fan_in
        y = fan_out / fan_in
        # Marchenko–Pastur: normalized variance of squared singular values of a Gaussian matrix
        # is min(y, 1/y); an orthogonal matrix has none.
        cond = 0.0 if self.opts.init.name in ("orthogonal", "zeros") else min(y, 1 / y)
        gain = q / beam.q if beam.q > 0 else float("inf") if q > 0 else 1.0
        return Optics(Beam(self.out_shape(beam.shape), q, m), gain, flow, cond)

    def init_weights(self, module: Any, ctx: Context) -> None:
        """Draw the weights with the resolved statistics (torch's own for `default`)."""
        import torch

        init: InitSpec = self.opts.init
        if init.name == "default":
            if init.gain != 1.0:
                with torch.no_grad():
                    module.weight.mul_(init.gain)
            return
        fan_in = module.weight[0].numel()
        with torch.no_grad():
            if init.name == "orthogonal":
                torch.nn.init.orthogonal_(module.weight, gain=init.gain)
            else:
                std = (float(ctx.sigma_w2) / fan_in) ** 0.5
                torch.nn.init.normal_(module.weight, 0.0, std) if std > 0 else module.weight.zero_()
            if module.bias is not None:
                sb = float(ctx.sigma_b2 or 0.0)
                torch.nn.init.normal_(module.bias, 0.0, sb ** 0.5) if sb > 0 else module.bias.zero_()


@register
class Linear(Weighted):
    name = "linear"
    summary = "fully connected layer: y = W·x + b"
    source = "Rosenblatt 1958; mean field: Poole et al. 2016"

    class options(WeightOptions):
        width: int = Field(gt=0)

    short = "width"

    def out_shape(self, shape: Shape) -> Shape:
        # a sequence (T, D): acts on the last axis (errors about images keep to flat vectors)
        need_rank(shape, (1, 2) if len(shape) == 2 else (1,), self.name)
        return shape[:-1] + (self.opts.width,)

    def fans(self, shape: Shape) -> tuple[int, int, float]:
        return shape[-1], self.opts.width, float(self.opts.width)

    def n_params(self, shape: Shape) -> int:
        return shape[-1] * self.opts.width + (self.opts.width if self.opts.bias else 0)

    def build(self, shape: Shape, ctx: Context) -> Any:
        import torch

        mod = torch.nn.Linear(shape[-1], self.opts.width, bias=self.opts.bias)
        self.init_weights(mod, ctx)
        return mod


@register
class Conv2d(Weighted):
    name = "conv2d"
    summary = "2-D convolution over (C, H, W) images"
    source = "LeCun et al. 1989; fans as in He et al. 2015"

    class options(WeightOptions):
        channels: int = Field(gt=0)
        kernel: int = Field(3, gt=0)
        stride: int = Field(1, gt=0)
        padding: int | None = Field(None, ge=0)   # default: kernel // 2 ("same" at stride 1)

    short = "channels"

    def _pad(self) -> int:
        return self.opts.kernel // 2 if self.opts.padding is None else self.opts.padding

    def out_shape(self, shape: Shape) -> Shape:
        need_rank(shape, (3,), self.name)
        c, h, w = shape
        k, s, p = self.opts.kernel, self.opts.stride, self._pad()
        oh, ow = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
        if oh <= 0 or ow <= 0:
            raise DesignError(
                f"a {k}×{k} kernel does not fit the {h}×{w} image that arrives here",
                expected=f"kernel ≤ {h + 2 * p}", found=f"kernel {k}, padding {p}",
                suggestion="Use a smaller kernel, more padding, or fewer pooling rows before it.")
        return (self.opts.channels, oh, ow)

    def fans(self, shape: Shape) -> tuple[int, int, float]:
        k2 = self.opts.kernel ** 2
        return shape[0] * k2, self.opts.channels * k2, self.opts.channels * k2 / self.opts.stride ** 2

    def n_params(self, shape: Shape) -> int:
        c_out = self.opts.channels
        return shape[0] * c_out * self.opts.kernel ** 2 + (c_out if self.opts.bias else 0)

    def describe(self) -> str:
        o = self.opts
        return f"conv2d {o.channels} k{o.kernel}" + (f" s{o.stride}" if o.stride != 1 else "")

    def build(self, shape: Shape, ctx: Context) -> Any:
        import torch

        mod = torch.nn.Conv2d(shape[0], self.opts.channels, self.opts.kernel, self.opts.stride,
                              self._pad(), bias=self.opts.bias)
        self.init_weights(mod, ctx)
        return mod
