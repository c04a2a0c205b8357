"""Weight initializations as weight statistics: σ_w² (in units of 1/fan_in) and σ_b².

The paraxial model needs only these two numbers; the builder draws weights with them.
Each init is one entry in `INITS`; `critical` is a solve (Schoenholz et al. 2017): the σ_w²
that makes this layer's paraxial backward gain, with the activation that follows it, 0 dB.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

from netlens.errors import DesignError, suggest


@dataclass(frozen=True)
class InitInfo:
    name: str
    summary: str
    source: str
    aliases: tuple[str, ...] = ()


INITS: dict[str, InitInfo] = {}
ALIASES: dict[str, str] = {}


def _init(name: str, summary: str, source: str, aliases: tuple[str, ...] = ()) -> None:
    INITS[name] = InitInfo(name, summary, source, aliases)
    for a in aliases:
        ALIASES[a] = name


_init("default", "PyTorch's kaiming_uniform_(a=√5): U(±1/√fan_in), σ_w² = 1/3, bias σ_b² = 1/(3·fan_in)",
      "PyTorch nn.Linear.reset_parameters")
_init("lecun", "N(0, 1/fan_in): σ_w² = 1", "LeCun et al. 1998, Efficient BackProp")
_init("he", "N(0, 2/fan_in): σ_w² = 2, critical for relu", "He et al. 2015", ("kaiming",))
_init("xavier", "N(0, 2/(fan_in+fan_out)): σ_w² = 2·fan_in/(fan_in+fan_out)", "Glorot & Bengio 2010",
      ("glorot",))
_init("orthogonal", "a random orthogonal matrix: all singular values equal (σ_w² = 1 when square)",
      "Saxe et al. 2014")
_init("zeros", "all weights zero: σ_w² = 0 (no signal passes)", "—")
_init("critical", "the σ_w² that makes this layer plus its activation 0 dB backward at init",
      "Schoenholz et al. 2017")
_init("meanfield", "Gaussian weights N(0, σ_w²/fan_in), biases N(0, σ_b²), written {sigma_w2, sigma_b2}",
      "Poole et al. 2016")


@dataclass(frozen=True)
class InitSpec:
    """A resolved `init:` cell. `gain` multiplies the weight std (so σ_w² by gain²); `sigma_b2`
    draws biases N(0, σ_b²) with any named init (`{name: critical, sigma_b2: 0.05}`)."""

    name: str = "default"
    gain: float = 1.0
    sigma_w2: float | None = None
    sigma_b2: float | None = None

    def label(self) -> str:
        if self.name == "meanfield":
            return f"σw²={self.sigma_w2:g}" + (f",σb²={self.sigma_b2:g}" if self.sigma_b2 else "")
        return self.name + (f"×{self.gain:g}" if self.gain != 1.0 else "")


def parse_init(value: Any) -> InitSpec:
    """Read an `init:` cell: a name, `{name: he, gain: 1.2}` or `{sigma_w2: 1.76, sigma_b2: 0.05}`."""
    if isinstance(value, InitSpec):
        return value
    if isinstance(value, str):
        key = ALIASES.get(value, value)
        if key not in INITS or key == "meanfield":
            names = [n for n in INITS if n != "meanfield"] + list(ALIASES)
            hint = suggest(value, names)
            raise DesignError(
                "unknown init",
                expected="one of " + ", ".join(n for n in INITS if n != "meanfield")
                + " or {sigma_w2: …, sigma_b2: …}",
                found=value,
                suggestion=f"Did you mean `{hint}`?" if hint else None,
            )
        return InitSpec(key)
    if isinstance(value, dict):
        keys = set(value)
        if keys <= {"sigma_w2", "sigma_b2"} and "sigma_w2" in keys:
            sw, sb = _number(value, "sigma_w2"), _number(value, "sigma_b2")
            if sw < 0 or sb < 0:
                raise DesignError("variances must be non-negative", expected="σ² ≥ 0", found=value)
            return InitSpec("meanfield", sigma_w2=sw, sigma_b2=sb)
        if keys <= {"name", "gain", "sigma_b2"} and "name" in keys:
            base = parse_init(value["name"])
            sb = _number(value, "sigma_b2") if "sigma_b2" in value else None
            gain = _number(value, "gain") if "gain" in value else 1.0
            if not gain > 0:
                raise DesignError("`gain` multiplies the weights' standard deviation: it must be "
                                  "positive", expected="gain > 0", found=gain)
            if sb is not None and sb < 0:
                raise DesignError("variances must be non-negative", expected="σ² ≥ 0", found=value)
            return InitSpec(base.name, gain=gain, sigma_b2=sb)
        allowed = ["name", "gain", "sigma_w2", "sigma_b2"]
        bad = sorted(keys - set(allowed)) or sorted(keys)
        hint = suggest(bad[0], allowed)
        raise DesignError(
            "an init mapping takes `name` (+ `gain`) or `sigma_w2` (+ `sigma_b2`)",
            expected="{name: he, gain: 1.2} or {sigma_w2: 1.76, sigma_b2: 0.05}",
            found=dict(value),
            suggestion=f"Did you mean `{hint}`?" if hint else None,
        )
    raise DesignError("an init is a name or a mapping", expected="e.g. `he`", found=value)


def _number(d: dict, key: str) -> float:
    v = d.get(key, 0.0)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise DesignError(f"`{key}` must be a finite number", expected="a number", found=v)
    return float(v)


def weight_stats(init: InitSpec, fan_in: int, fan_out: int,
                 critical: Callable[[], float] | None = None) -> tuple[float, float]:
    """(σ_w², σ_b²) of an init for a weight with these fans (σ_w² in units of 1/fan_in).

    `critical` computes the solve for `init: critical`; the caller knows the activation after
    the layer and the input power, this module does not."""
    g2 = init.gain ** 2
    if init.name == "default":
        return g2 / 3.0, 1.0 / (3.0 * fan_in)
    if init.name == "meanfield":
        return float(init.sigma_w2), float(init.sigma_b2 or 0.0)
    sb = float(init.sigma_b2 or 0.0)
    if init.name == "critical":
        if critical is None:
            raise DesignError("`init: critical` needs the paraxial solve")  # internal misuse only
        return critical() * g2, sb
    base = {
        "lecun": 1.0,
        "he": 2.0,
        "xavier": 2.0 * fan_in / (fan_in + fan_out),
        "orthogonal": 1.0 if fan_out <= fan_in else fan_in / fan_out,
        "zeros": 0.0,
    }[init.name]
    return base * g2, sb
