"""MEAN — mean shift: how much of a pre-activation's power is a per-unit constant.

    MEAN_i = Σ_u mean_u² / Σ_u E[h_u²]     over the probe batch, h = output of a linear/conv row

A unit whose input has a large mean over the batch mostly adds a constant: it learns slowly
(the gradient's components share a sign, LeCun et al. 1998, "Efficient BackProp", §4.3) and
drives the next activation off-centre. Inputs that are all positive — the output of a relu
(share 0.32) or a sigmoid (0.85) — give a weight row a large mean share; batchnorm removes it
(Ioffe & Szegedy 2015). The head is left out: a classifier's logits are meant to carry means.

A stack of relu layers raises the share with depth even at He init: each relu passes part of
the samples' common direction on, and the correlation between samples follows the arc-cosine
kernel's map c → (√(1−c²) + (π − arccos c)·c)/π (Cho & Saul 2009): 0.32 after one relu, 0.49,
0.60, 0.68, 0.74, 0.78 after six. That is the normal state of a deep relu MLP, so the levels
sit above it (thresholds.py); a stack whose signal has sunk to its biases reads 1.
"""
from __future__ import annotations

from netlens.aberrations import register
from netlens.aberrations.base import Aberration, Context, Reading, finite


@register
class MeanShift(Aberration):
    code = "MEAN"
    name = "mean shift"
    unit = "fraction"
    measures = ("share of the power of the row's output held in per-unit means over the probe "
                "batch (mean²/q)")
    applies = "linear and conv rows, the head excluded"
    explanation = (
        "Ideally each unit of a layer's output varies around zero from sample to sample. If "
        "instead most of its power is a constant offset shared by all samples, the variation that "
        "carries information is a small ripple on top of it. The next activation then works "
        "off-centre (a relu that is always on, a tanh stuck on one side), and the weight "
        "gradients all share a sign, so gradient descent zig-zags. It comes from inputs that are "
        "all positive — sigmoid or relu outputs, or unnormalized data.")
    analogy = ("Optically, this is a decentred element: the beam passes off the optical axis, "
               "where the element bends it more than intended.")
    corrections = ("insert_batchnorm", "insert_layernorm", "swap_activation")

    def readings(self, ctx: Context) -> list[Reading]:
        return [Reading(ctx.row(m.index)["mean_share"], m.index) for m in ctx.rows
                if m.kind == "layer" and m.index != ctx.head
                and finite(ctx.row(m.index).get("mean_share"))]

    def message(self, reading: Reading, ctx: Context) -> str:
        return f"{reading.value:.0%} of this row's output power is a per-unit constant"
