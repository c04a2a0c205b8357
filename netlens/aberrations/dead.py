"""DEAD — dead units: relu-family units that are off for every sample of the probe batch.

    dead = fraction of units u with h_u ≤ 0 on every probe sample   (h: the pre-activation;
                                                                      a unit is a feature, or a
                                                                      channel of an image)

A dead relu passes no signal forward and no gradient backward, so nothing can revive it by
gradient descent. Deep, narrow relu nets die at initialization with a probability that grows
with depth (Lu et al. 2019, "Dying ReLU and initialization"); a large step can also push a
unit's bias so negative that it never fires again. AUTOTRAINER flags a layer at 70% dead.
"""
from __future__ import annotations

from netlens.aberrations import register
from netlens.aberrations.base import Aberration, Context, Reading, finite


@register
class Dead(Aberration):
    code = "DEAD"
    name = "dead units"
    unit = "fraction"
    measures = "fraction of the row's units that are never active (h ≤ 0) over the probe batch"
    applies = "relu-family activation rows (relu, leaky_relu, elu, selu, gelu, silu, softplus)"
    explanation = (
        "A relu outputs zero for every negative input, and its gradient there is zero too. A unit "
        "whose input is negative for every sample is 'dead': it contributes nothing forward, "
        "receives no gradient backward, and so can never learn its way back. The layer is "
        "effectively narrower than written; past a few tens of percent the network loses "
        "capacity, and a layer that is all dead cuts the network in two. Deep narrow stacks die "
        "at initialization; too large a learning rate kills units during training.")
    analogy = ("Optically, dead units are an obstruction in the pupil: part of the aperture "
               "passes no light, and the image is formed by what is left.")
    corrections = ("swap_activation", "he_init", "insert_batchnorm", "widen", "set_lr", "warmup")

    def readings(self, ctx: Context) -> list[Reading]:
        return [Reading(ctx.row(m.index)["dead"], m.index) for m in ctx.rows
                if finite(ctx.row(m.index).get("dead"))]

    def message(self, reading: Reading, ctx: Context) -> str:
        width = ctx.rows[reading.row].out_shape[0]
        return f"{round(reading.value * width)} of {width} units never fire on the probe batch"
