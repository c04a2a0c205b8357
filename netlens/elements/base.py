"""What every element of a prescription is: shape rule, parameter count, paraxial rule, builder.

An element is one row type (`linear`, `tanh`, `batchnorm` ...). Each subclass declares its
options as a pydantic model, which option the short form (`linear: 64`) sets, how it maps an
input shape to an output shape, how many parameters it has, its paraxial (mean-field) rule and
how to build the torch module. Everything here is torch-free except `build`, which imports torch
lazily, so `netlens paraxial` never loads it.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from netlens.errors import DesignError

Shape = tuple[int, ...]


class Options(BaseModel):
    """Base of element option models: unknown keys are errors. The validation schema is built
    once, lazily, the first time a prescription uses the element (`defer_build`): start-up does
    not pay for the elements a design never names."""

    # strict: `width: true` is not 1 and `width: "16"` not 16; no .inf or .nan
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False,
                              defer_build=True)


class NoOptions(Options):
    """Options of an element that takes none (`relu`, `flatten`): any key is an error."""


@dataclass(frozen=True)
class Beam:
    """The paraxial state between rows: shape, mean square `q`, and `m`, the mean square of
    per-unit means over the batch (the part of `q` a batchnorm removes)."""

    shape: Shape
    q: float
    m: float = 0.0
    # Sequences (T, D): the T×T Gram matrix of positions, G_ts = E[x_t·x_s]/D (numpy), which the
    # attention rules average over and the token rank is read from (netlens.paraxial.sequence).
    gram: Any = field(default=None, compare=False)


@dataclass(frozen=True)
class Optics:
    """One row's paraxial result: the beam after it and its gains (power ratios, not dB).

    `gain` is forward power out/in, `flow` the backward gain of gradient power (input side over
    output side), `cond` the row's additive contribution to the normalized variance of the
    network Jacobian's squared singular values. `approx` names an approximation, if any."""

    beam: Beam
    gain: float
    flow: float
    cond: float = 0.0
    approx: str | None = None


@dataclass
class Context:
    """What a row's rules may need beyond its input: the resolved weight statistics (for rows with
    weights), the activation that follows it (for `init: critical`), the training mode."""

    next_activation: tuple[str, dict] | None = None
    sigma_w2: float | None = None
    sigma_b2: float | None = None
    vocab: int | None = None        # token data: the vocabulary an `embedding` row looks up
    token_match: float | None = None  # P(two positions hold the same token) (embedding's Gram)
    pooled: bool = False            # a sequence row later averaged by `mean_pool` (its gradient
    #                                 is then shared by every position)


class Element(ABC):
    """Base class. Subclasses register themselves by `name` (see registry)."""

    name: ClassVar[str]
    kind: ClassVar[str] = "layer"   # layer | activation | norm | pool | reshape | regularizer
    summary: ClassVar[str] = ""
    source: ClassVar[str] = ""
    options: ClassVar[type[Options]] = NoOptions
    short: ClassVar[str | None] = None       # the option set by `name: value`
    corrects: ClassVar[tuple[str, ...]] = ()  # aberration codes this element helps correct
    has_weights: ClassVar[bool] = False

    def __init__(self, opts: Options):
        self.opts = opts

    # --- shapes -------------------------------------------------------------------------------
    def out_shape(self, shape: Shape) -> Shape:
        return shape

    def n_params(self, shape: Shape) -> int:
        return 0

    # --- paraxial -----------------------------------------------------------------------------
    def paraxial(self, beam: Beam, ctx: Context) -> Optics:
        out = Beam(self.out_shape(beam.shape), beam.q, beam.m)
        return Optics(out, 1.0, 1.0)

    # --- torch --------------------------------------------------------------------------------
    @abstractmethod
    def build(self, shape: Shape, ctx: Context) -> Any:
        """The torch module for this row (imports torch lazily)."""

    def describe(self) -> str:
        """The row as a short string for tables: `linear 64`, `leaky_relu 0.1`."""
        if self.short is None:
            return self.name
        return f"{self.name} {getattr(self.opts, self.short)}"


def need_rank(shape: Shape, ranks: tuple[int, ...], element: str) -> None:
    """Raise a shape error unless the input has one of the allowed numbers of dimensions."""
    if len(shape) not in ranks:
        want = " or ".join({1: "a flat vector (N, F)", 2: "a sequence (N, T, D)",
                            3: "an image (N, C, H, W)"}[r] for r in ranks)
        hint = " Add a `flatten` row before it." if 1 in ranks and len(shape) == 3 else ""
        if 3 in ranks and len(shape) == 1:
            hint = " Convolutions need image data such as `digits`, before any `flatten`."
        if ranks == (2,):
            hint = (" Sequence rows need token data and an `embedding` row first." if len(shape) == 1
                    else " Sequence rows need token data such as `sort` or `markov`.")
        if 1 in ranks and len(shape) == 2 and 2 not in ranks:
            hint = " Reduce the sequence with `mean_pool` or `last_token` first."
        raise DesignError(
            f"`{element}` cannot take this input",
            expected=want,
            found=f"shape {fmt_shape(shape)}",
            suggestion=hint.strip() or None,
        )


def fmt_shape(shape: Shape) -> str:
    return "×".join(str(s) for s in shape)
