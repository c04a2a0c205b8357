"""Pointwise activations. Paraxial rule: z ~ N(0, q_in); q_out = E[φ(z)²], backward gain E[φ'(z)²]
(docs/theory.md §1), computed in `netlens.paraxial.gaussian` (closed forms for the relu family)."""
from __future__ import annotations

from typing import Any

from pydantic import Field

from netlens.elements import register
from netlens.elements.base import Beam, Context, Element, NoOptions, Optics, Options, Shape


class Activation(Element):
    kind = "activation"
    torch_name: str = ""

    def phi_params(self) -> dict:
        """Keyword parameters of φ for the Gaussian moments (netlens.paraxial.gaussian)."""
        return {}

    def torch_params(self) -> dict:
        return self.phi_params()

    def paraxial(self, beam: Beam, ctx: Context) -> Optics:
        from netlens.paraxial.gaussian import APPROXIMATE, moments

        mo = moments(self.name, beam.q, **self.phi_params())
        gain = mo.power / beam.q if beam.q > 0 else 1.0
        approx = None
        if self.name in APPROXIMATE:
            approx = f"{self.name}: no stable bias-free fixed point; gains depend on the input scale"
        return Optics(Beam(beam.shape, mo.power, mo.mean ** 2), gain, mo.slope, mo.slope_var, approx)

    def build(self, shape: Shape, ctx: Context) -> Any:
        import torch

        return getattr(torch.nn, self.torch_name)(**self.torch_params())


def _simple(name: str, torch_name: str, summary: str, source: str, corrects: tuple[str, ...] = ()):
    cls = type(name.title(), (Activation,), {
        "name": name, "torch_name": torch_name, "summary": summary, "source": source,
        "corrects": corrects, "options": NoOptions,
    })
    return register(cls)


_simple("relu", "ReLU", "max(0, x); critical at σ_w² = 2 (He)", "Nair & Hinton 2010")
_simple("gelu", "GELU", "x·Φ(x), a smooth relu", "Hendrycks & Gimpel 2016", ("DEAD",))
_simple("silu", "SiLU", "x·sigmoid(x) (swish)", "Ramachandran et al. 2017", ("DEAD",))
_simple("selu", "SELU", "self-normalizing; needs LeCun init (σ_w² = 1)", "Klambauer et al. 2017")
_simple("tanh", "Tanh", "tanh(x); critical σ_w² depends on σ_b² (1.76 at 0.05)", "Schoenholz et al. 2017")
_simple("sigmoid", "Sigmoid", "1/(1+e^−x); χ = 0.056 at σ_w² = 1: no practical critical point",
        "Glorot & Bengio 2010")
_simple("softplus", "Softplus", "log(1+e^x), a smooth relu", "Dugas et al. 2001", ("DEAD",))
_simple("identity", "Identity", "no activation (a linear network)", "Saxe et al. 2014")


@register
class LeakyRelu(Activation):
    name = "leaky_relu"
    torch_name = "LeakyReLU"
    summary = "max(a·x, x); critical at σ_w² = 2/(1+a²)"
    source = "Maas et al. 2013"
    corrects = ("DEAD",)
    short = "slope"

    class options(Options):
        slope: float = Field(0.01, ge=0, lt=1)

    def phi_params(self) -> dict:
        return {"slope": self.opts.slope}

    def torch_params(self) -> dict:
        return {"negative_slope": self.opts.slope}


@register
class Elu(Activation):
    name = "elu"
    torch_name = "ELU"
    summary = "x for x > 0, α(eˣ − 1) below"
    source = "Clevert et al. 2016"
    corrects = ("DEAD", "MEAN")
    short = "alpha"

    class options(Options):
        alpha: float = Field(1.0, gt=0)

    def phi_params(self) -> dict:
        return {"alpha": self.opts.alpha}
