"""Rows for token sequences: `embedding`, `positional`, `attention`, `mean_pool`, `last_token`,
`lstm`, `gru`.

A sequence is a batch × positions × width tensor; its per-sample shape here is (T, D). The data
gives token ids (T,); `embedding` turns them into (T, D); `linear`, the activations, `layernorm`,
`rmsnorm`, `dropout` and `residual` act on the last axis; `mean_pool` and `last_token` reduce
(T, D) to (D,) for a per-sequence label. A transformer block is two residual branches:

    - repeat: 2
      of:
        - residual: [layernorm, attention: 4]
        - residual: [layernorm, linear: 256, gelu, linear: 64]

Paraxial rules: `netlens.paraxial.sequence` (the Gram matrix of positions; attention at init).
The torch modules live in `netlens.model.sequence` and are imported only by `build`.
"""
from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
from pydantic import Field

from netlens.elements import register
from netlens.elements.base import Beam, Context, Element, NoOptions, Optics, Options, Shape, need_rank
from netlens.elements.layers import WeightOptions
from netlens.errors import DesignError


def _seq(shape: Shape, name: str) -> None:
    need_rank(shape, (2,), name)


@register
class Embedding(Element):
    name = "embedding"
    kind = "layer"
    has_weights = True
    summary = "look up a learned vector of `width` for each token id (vocabulary from the data)"
    source = "Bengio et al. 2003; token embeddings as in Vaswani et al. 2017"
    formula = ("q_out = std² (N(0, std²) entries; torch's default std 1); across positions "
               "G_ts = std²·P(x_t = x_s), the data's chance that two positions hold the same token")
    short = "width"
    takes_tokens = True

    class options(Options):
        width: int = Field(gt=0)
        std: float = Field(1.0, ge=0)       # init: entries N(0, std²)

    def out_shape(self, shape: Shape) -> Shape:
        if len(shape) != 1:
            raise DesignError("`embedding` takes token ids", expected="token data (N, T)",
                              found=f"shape {'×'.join(map(str, shape))}",
                              suggestion="Put `embedding` first, on token data such as `sort`.")
        return (shape[0], self.opts.width)

    def n_params(self, shape: Shape) -> int:
        return 0   # counted by the trace from the vocabulary (see `params`)

    def params(self, vocab: int) -> int:
        return vocab * self.opts.width

    def paraxial(self, beam: Beam, ctx: Context) -> Optics:
        from netlens.paraxial.sequence import APPROX_TOKENS, embedding_gram

        t = self.out_shape(beam.shape)[0]
        g = embedding_gram(t, self.opts.std, ctx.token_match)
        q = self.opts.std ** 2
        return Optics(Beam((t, self.opts.width), q, 0.0, gram=g), q / beam.q if beam.q else 1.0,
                      1.0, 0.0, APPROX_TOKENS)

    def build(self, shape: Shape, ctx: Context) -> Any:
        from netlens.model.sequence import TokenEmbedding

        if not ctx.vocab:
            raise DesignError("`embedding` needs token data with a vocabulary")
        return TokenEmbedding(ctx.vocab, self.opts.width, self.opts.std)


@register
class Positional(Element):
    name = "positional"
    kind = "layer"
    has_weights = True
    summary = "add a position code to each token: `learned` (a trained table) or `sinusoidal`"
    source = "Vaswani et al. 2017 (sinusoidal); Gehring et al. 2017 (learned)"
    formula = ("G_out = G_in + P·Pᵀ/D: learned N(0, std²) codes add std² to the diagonal, "
               "sinusoidal ones their exact Gram (power 1/2)")
    short = "kind"

    class options(Options):
        kind: Literal["learned", "sinusoidal"] = "learned"
        std: float = Field(1.0, ge=0)       # learned codes: entries N(0, std²)

    def out_shape(self, shape: Shape) -> Shape:
        _seq(shape, self.name)
        return shape

    def n_params(self, shape: Shape) -> int:
        return math.prod(shape) if self.opts.kind == "learned" else 0

    def paraxial(self, beam: Beam, ctx: Context) -> Optics:
        from netlens.paraxial.sequence import sinusoidal_table, with_gram

        t, d = self.out_shape(beam.shape)
        if self.opts.kind == "learned":
            add = self.opts.std ** 2 * np.eye(t)
        else:
            pe = sinusoidal_table(t, d)
            add = pe @ pe.T / d
        g = beam.gram if beam.gram is not None else beam.q * np.eye(t)
        return with_gram(Optics(beam, 1.0, 1.0), beam, g + add)

    def describe(self) -> str:
        return f"positional {self.opts.kind}"

    def build(self, shape: Shape, ctx: Context) -> Any:
        from netlens.model.sequence import PositionCode

        return PositionCode(shape[0], shape[1], self.opts.kind, self.opts.std)


class AttentionOptions(WeightOptions):
    heads: int = Field(1, gt=0)
    causal: bool = False
    qk_norm: bool = False
    dropout: float = Field(0.0, ge=0, lt=1)


def _widths(width: int, heads: int) -> str:
    """Nearby widths that divide by `heads`, and head counts that divide `width`."""
    lo, hi = (width // heads) * heads, (width // heads + 1) * heads
    widths = [w for w in (lo, hi) if w > 0]
    divisors = [h for h in range(1, min(width, 16) + 1) if width % h == 0]
    return (f"Use a width of {' or '.join(map(str, widths))} for {heads} heads, or "
            f"heads: {', '.join(map(str, divisors[-4:]))} for width {width}.")


@register
class Attention(Element):
    name = "attention"
    kind = "attention"
    has_weights = True
    summary = ("multi-head self-attention over the positions (width kept): softmax(q·kᵀ/√d_h)·v, "
               "`causal` masks later positions, `qk_norm` layer-normalizes q and k")
    source = ("Vaswani et al. 2017; qk-norm: Dehghani et al. 2023 (ViT-22B), Henry et al. 2020; "
              "rank collapse: Dong, Cordonnier & Loukas 2021")
    formula = ("near-uniform attention at init (approximate): G_out = σ_o²(σ_v² Σ E[p_ts p_t's'] G_ss' "
               "+ σ_b²) + σ_b², so q_out ≈ σ⁴·q·(c̄ + (1 − c̄)/n) over n attended positions of mean "
               "correlation c̄ (n = t + 1 when causal); backward the same average of the "
               "gradient's position Gram; see docs/sequences.md")
    corrects = ("LOGT", "ENTR")
    short = "heads"
    options = AttentionOptions

    def out_shape(self, shape: Shape) -> Shape:
        _seq(shape, self.name)
        width, heads = shape[1], self.opts.heads
        if width % heads:
            raise DesignError(f"a width of {width} does not split into {heads} heads",
                              expected=f"a width divisible by {heads}", found=f"width {width}",
                              suggestion=_widths(width, heads))
        return shape

    def n_params(self, shape: Shape) -> int:
        d = shape[1]
        return 4 * d * d + (4 * d if self.opts.bias else 0) + (4 * d // self.opts.heads if self.opts.qk_norm else 0)

    def fans(self, shape: Shape) -> tuple[int, int, float]:
        return shape[1], shape[1], float(shape[1])

    def paraxial(self, beam: Beam, ctx: Context) -> Optics:
        from netlens.paraxial.sequence import attention_optics

        self.out_shape(beam.shape)
        g = beam.gram if beam.gram is not None else beam.q * np.eye(beam.shape[0])
        sb = (ctx.sigma_b2 or 0.0) if self.opts.bias else 0.0
        optics, rule = attention_optics(Beam(beam.shape, beam.q, beam.m, gram=g), self.opts.heads,
                                        self.opts.causal, self.opts.qk_norm, self.opts.dropout,
                                        ctx.sigma_w2 or 0.0, sb)
        self.rule = rule            # read by the trace for the backward pass
        return optics

    def describe(self) -> str:
        o = self.opts
        extra = [x for x, on in (("causal", o.causal), ("qk_norm", o.qk_norm)) if on]
        return f"attention {o.heads}h" + "".join(f" {x}" for x in extra)

    def build(self, shape: Shape, ctx: Context) -> Any:
        from netlens.model.sequence import SelfAttention

        o = self.opts
        return SelfAttention(shape[1], o.heads, o.causal, o.qk_norm, o.dropout, o.bias,
                             o.init.name, o.init.gain, ctx.sigma_w2, ctx.sigma_b2)


class Reduce(Element):
    kind = "pool"
    options = NoOptions

    def out_shape(self, shape: Shape) -> Shape:
        _seq(shape, self.name)
        return (shape[1],)


@register
class MeanPool(Reduce):
    name = "mean_pool"
    summary = "average over the positions: (T, D) → (D,), for one label per sequence"
    source = "e.g. Kim 2014 (pooling over time); Dosovitskiy et al. 2021 (ViT's GAP variant)"
    formula = "q_out = ΣG_ts/T² (the mean of the position Gram); backward gain per unit 1/T²"

    def paraxial(self, beam: Beam, ctx: Context) -> Optics:
        t = beam.shape[0]
        q = float(np.mean(beam.gram)) if beam.gram is not None else beam.q / t
        return Optics(Beam(self.out_shape(beam.shape), q, beam.m), q / beam.q if beam.q else 1.0,
                      1.0 / t ** 2)

    def build(self, shape: Shape, ctx: Context) -> Any:
        from netlens.model.sequence import MeanPool as Module

        return Module()


@register
class LastToken(Reduce):
    name = "last_token"
    summary = "keep the last position: (T, D) → (D,) (with causal attention it has seen them all)"
    source = "Radford et al. 2018 (GPT's classification head)"
    formula = "q_out = G_TT, the last position's power; backward gain per unit 1/T"

    def paraxial(self, beam: Beam, ctx: Context) -> Optics:
        t = beam.shape[0]
        q = float(beam.gram[-1, -1]) if beam.gram is not None else beam.q
        return Optics(Beam(self.out_shape(beam.shape), q, beam.m), q / beam.q if beam.q else 1.0,
                      1.0 / t)

    def build(self, shape: Shape, ctx: Context) -> Any:
        from netlens.model.sequence import LastToken as Module

        return Module()


class Recurrent(Element):
    kind = "recurrent"
    has_weights = True
    short = "hidden"
    cell: str = ""
    gates: int = 1

    class options(Options):
        hidden: int = Field(gt=0)
        layers: int = Field(1, gt=0)

    def out_shape(self, shape: Shape) -> Shape:
        _seq(shape, self.name)
        return (shape[0], self.opts.hidden)

    def n_params(self, shape: Shape) -> int:
        h, total, d = self.opts.hidden, 0, shape[1]
        for _ in range(self.opts.layers):
            total += self.gates * (h * d + h * h + 2 * h)
            d = h
        return total

    def describe(self) -> str:
        return f"{self.name} {self.opts.hidden}" + (f" ×{self.opts.layers}" if self.opts.layers > 1 else "")

    def paraxial(self, beam: Beam, ctx: Context) -> Optics:
        from netlens.paraxial.recurrent import recurrent_gram
        from netlens.paraxial.sequence import with_gram

        t, d = beam.shape
        g = beam.gram if beam.gram is not None else beam.q * np.eye(t)
        for layer in range(self.opts.layers):
            g = recurrent_gram(self.cell, g, d if layer == 0 else self.opts.hidden, self.opts.hidden)
        flow = _recurrent_flow(self.cell, d, self.opts.hidden)
        base = Optics(Beam((t, self.opts.hidden), float(np.mean(np.diag(g))), 0.0), 1.0, flow)
        return with_gram(base, beam, g, f"{self.name}: gates at their rms at init, candidates "
                                        f"Gaussian (forward); backward gain rough")

    def build(self, shape: Shape, ctx: Context) -> Any:
        from netlens.model.sequence import Recurrent as Module

        return Module(self.cell, shape[1], self.opts.hidden, self.opts.layers)


def _recurrent_flow(cell: str, d: int, h: int) -> float:
    """Backward gain per unit through the input weights at init (rough): PyTorch's U(±1/√H)
    weights have variance 1/(3H); the candidate path's slopes are ≈ 1/4 (LSTM: i·o·tanh') or
    ≈ 1/2 (GRU: 1 − z), summed over the gates it feeds."""
    slope2 = 1 / 16 if cell == "lstm" else 1 / 4
    return (1 / 3) * slope2 * (h / h)


@register
class Lstm(Recurrent):
    name = "lstm"
    cell = "lstm"
    gates = 4
    summary = "long short-term memory over the positions: (T, D) → (T, hidden)"
    source = "Hochreiter & Schmidhuber 1997; PyTorch's U(±1/√hidden) init"
    formula = ("at init (approximate): C_u = (D·G_x + H·G_h(t−1) + 2)/(3H) per gate; c_t = Σ_k "
               "γ_i γ_f^{t−k} g_k, G_h = γ_o²·E[tanh c_t tanh c_s], gates at their rms γ; see "
               "netlens/paraxial/recurrent.py")


@register
class Gru(Recurrent):
    name = "gru"
    cell = "gru"
    gates = 3
    summary = "gated recurrent unit over the positions: (T, D) → (T, hidden)"
    source = "Cho et al. 2014; PyTorch's U(±1/√hidden) init"
    formula = ("at init (approximate): h_t = Σ_k (1 − γ)γ^{t−k} n_k, n = tanh(W_in x + b + "
               "r∘(W_hn h + b)), G_h = M·C_n·Mᵀ with gates at their rms γ; see "
               "netlens/paraxial/recurrent.py")
