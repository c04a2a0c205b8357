"""The non-layer sections of a prescription: `train`, `probe`, `diagnose`, `optimize`.

The `data` section's model lives with the data sources (`netlens.data.DataSpec`).
"""
from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from netlens.errors import DesignError


class Section(BaseModel):
    # strict: `true` is not 1 and "16" is not 16; no .inf or .nan where a number is expected;
    # schemas built once, on first validation, not at import (start-up)
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, defer_build=True)


class TrainSpec(Section):
    loss: Literal["cross_entropy", "mse", "bce"] | None = None   # None: by task (ce / mse)
    optimizer: Literal["sgd", "adam", "adamw", "rmsprop"] = "sgd"
    lr: float = Field(0.01, gt=0)
    momentum: float = Field(0.0, ge=0, lt=1)      # sgd/rmsprop momentum; β₁ for adam-family
    beta2: float = Field(0.999, gt=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    steps: int = Field(400, gt=0, le=100_000_000)
    schedule: Literal["constant", "cosine", "linear"] = "constant"
    warmup: int = Field(0, ge=0)                  # steps of linear warm-up (Goyal et al. 2017)
    clip: float | None = Field(None, gt=0)        # global gradient-norm clip (Pascanu et al. 2013)
    precision: Literal["float32", "float64", "bfloat16"] = "float32"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # torch's CPU threads: `auto` is one unless the model is large (netlens.train.threads)
    threads: int | Literal["auto"] = "auto"

    @field_validator("threads", mode="before")
    @classmethod
    def _threads(cls, value: Any) -> Any:
        if value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and value > 0):
            return value
        raise ValueError(f"expected `auto` or a whole number ≥ 1, found {value!r}")

    @model_validator(mode="after")
    def _fits_precision(self) -> "TrainSpec":
        # float32 and bfloat16 hold at most ~3.4e38; torch's optimizers cast lr into the weights'
        # type and fail on a larger value
        if self.precision != "float64" and self.lr > 3.4e38:
            raise DesignError(f"`lr` is beyond what {self.precision} holds (~3.4e38)",
                              path="train.lr", found=self.lr,
                              suggestion="Use a smaller learning rate, or `precision: float64`.")
        return self

    @model_validator(mode="after")
    def _adam_momentum(self) -> "TrainSpec":
        # Adam's β₁ defaults to 0.9 when the prescription leaves momentum unset.
        if self.optimizer in ("adam", "adamw") and "momentum" not in self.model_fields_set:
            self.momentum = 0.9
        return self


# A tier's cadence: `every` (each probe step), `log` (log-spaced: step 0, start·probe.every·2^k and
# the end, each tier its own start: netlens/instruments/schedule.py), or a number of steps N
# (multiples of N, and the end).
Cadence = Annotated[int, Field(gt=0)] | Literal["every", "log"]


class HessianSpec(Section):
    every: Cadence | None = None                  # when to estimate; default `log` from 16 × probe.every
    max_products: int = Field(20, gt=0, le=200)  # Hessian-vector products per estimate (cap)
    tol: float = Field(1e-3, gt=0)               # relative change that stops the iteration
    bottom: bool = False                         # also λ_min (most negative curvature: saddles)
    bottom_products: int = Field(40, gt=0, le=400)   # Hessian-vector products for λ_min


class ProbeSpec(Section):
    """When the instruments read (see netlens/instruments/schedule.py for the tiers).

    every   steps between probes of the cheap tier, read off the training step itself: forward
            and backward power, dead and saturated fractions, mean share, gradient norms, update
            ratio
    fixed   cadence of the fixed-probe-batch tier: effective rank, COND, weight spectra, the
            probe-batch loss, the noise scale
    eval    cadence of the evaluation passes: loss and accuracy on the training and validation
            splits
    hessian the top Hessian eigenvalue (preconditioned for Adam-family optimizers), its own cadence
    """
    every: int = Field(20, gt=0)
    batch: int = Field(256, gt=1)                # samples in the fixed probe batch
    fixed: Cadence = "log"
    eval: Cadence = "log"
    hessian: bool | HessianSpec = True

    def hessian_spec(self) -> HessianSpec | None:
        if self.hessian is False:
            return None
        return HessianSpec() if self.hessian is True else self.hessian


class DiagnoseSpec(Section):
    thresholds: dict[str, Any] = Field(default_factory=dict)
    fail_on: Literal["info", "warn", "error", "never"] = "error"


class OptimizeSpec(Section):
    model_config = ConfigDict(extra="allow", strict=True, allow_inf_nan=False,
                              defer_build=True)     # validated by netlens.optimize


class ToleranceSpec(Section):
    model_config = ConfigDict(extra="allow", defer_build=True)   # validated by netlens.tolerance
