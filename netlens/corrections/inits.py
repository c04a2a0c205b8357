"""Corrections that change how weight rows are initialized (their σ_w², docs/paraxial.md).

Each rewrites the `init:` of the hidden weight rows it concerns; the head is left alone (its
scale sets the initial logits, which INIT judges). A mean-field bias variance the user wrote
(`sigma_b2`) is kept: it moves the critical point (docs/theory.md §1, the tanh critical line).
"""
from __future__ import annotations

import math

from netlens.corrections import register
from netlens.corrections.base import Case, Correction, NotApplicable, Site, hidden_weights, next_activation, sites
from netlens.corrections.edit import Edit
from netlens.elements.inits import InitSpec
from netlens.prescription import Design

RELU_LIKE = ("relu", "leaky_relu", "elu", "gelu", "silu", "softplus")
SQUASHING = ("tanh", "sigmoid", "identity")


def _init_value(name: str, spec: InitSpec, gain: float = 1.0):
    """`he`, or `{name: he, gain: …, sigma_b2: …}` when a gain or a bias variance is kept."""
    from netlens.corrections.edit import flow_map

    extra = {}
    if gain != 1.0:
        extra["gain"] = round(gain, 4)
    if spec.sigma_b2:
        extra["sigma_b2"] = spec.sigma_b2
    return flow_map(name=name, **extra) if extra else name


class InitCorrection(Correction):
    """Set `init: <target>` on the hidden weight rows whose next activation is in `activations`."""

    target: str
    activations: tuple[str, ...] | None = None    # None: every hidden weight row
    paraxial = True

    def gain(self, design: Design, site: Site) -> float:
        return 1.0

    def concerns(self, design: Design, row) -> bool:
        if self.activations is None:
            return True
        act = next_activation(design, row)
        return (act.name if act is not None else "identity") in self.activations

    def plan(self, design: Design, case: Case) -> list[Site]:
        todo = [s for s in sites(hidden_weights(design, lambda r: self.concerns(design, r)))
                if not self._already(design, s)]
        if not todo:
            raise NotApplicable(f"no hidden weight row to set to `init: {self.target}`")
        return todo

    def _already(self, design: Design, site: Site) -> bool:
        spec = site.rows[0].element.opts.init
        return spec.name == self.target and math.isclose(spec.gain, self.gain(design, site), rel_tol=1e-3)

    def apply(self, edit: Edit, design: Design, case: Case) -> str:
        todo = self.plan(design, case)
        for site in todo:
            spec = site.rows[0].element.opts.init
            edit.set_option(edit.current(site.keys), "init", _init_value(self.target, spec, self.gain(design, site)))
        n = sum(len(s.rows) for s in todo)
        return f"init: {self.target} on {n} weight row{'s' * (n != 1)} ({len(todo)} in the YAML)"


@register
class HeInit(InitCorrection):
    name = "he_init"
    target = "he"
    activations = RELU_LIKE
    summary = "init: he (σ_w² = 2) on weight rows feeding a relu-family activation: 0 dB per layer"
    citation = "He et al. 2015, Delving deep into rectifiers"


@register
class XavierInit(InitCorrection):
    name = "xavier_init"
    target = "xavier"
    activations = SQUASHING
    summary = "init: xavier (σ_w² = 2·fan_in/(fan_in+fan_out)) on rows feeding tanh/sigmoid/linear"
    citation = "Glorot & Bengio 2010, Understanding the difficulty of training deep feedforward networks"


@register
class OrthogonalInit(InitCorrection):
    name = "orthogonal_init"
    target = "orthogonal"
    summary = ("init: orthogonal on hidden weight rows (gain √(2/(1+a²)) before a relu family): "
               "all singular values equal, the Jacobian spectrum's spread from weights is 0")
    citation = "Saxe et al. 2014; Pennington et al. 2017 (dynamical isometry)"

    def gain(self, design: Design, site: Site) -> float:
        act = next_activation(design, site.rows[0])
        if act is not None and act.name in ("relu", "leaky_relu"):
            a = act.opts.slope if act.name == "leaky_relu" else 0.0
            return math.sqrt(2.0 / (1.0 + a * a))
        return 1.0


@register
class CriticalInit(InitCorrection):
    name = "critical_init"
    target = "critical"
    summary = ("init: critical — per row, the σ_w² that makes the layer and its activation 0 dB "
               "backward (the edge of chaos), solved by the paraxial trace")
    citation = "Schoenholz et al. 2017, Deep information propagation"
    # At criticality the correlation depth ξ_c diverges: inputs stay distinguishable (RANK).
    needs = "the paraxial solve of each row (no run measurement)"

    def concerns(self, design: Design, row) -> bool:
        return next_activation(design, row) is not None
