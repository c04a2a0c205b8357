"""COND — ill-conditioning: each row's share of the spread of the input–output Jacobian spectrum.

    COND_i = var(s²) / mean(s²)²      s: singular values of row i's Jacobian
                                      (weight rows: of the weight; activation rows: φ'(h) over
                                      the probe batch, from φ'(h)²)
    COND_SUM = Σ_i COND_i             (top-level rows)

Under free probability the normalized variances of independent factors add, so the SUM is the
spread of the whole network's Jacobian spectrum (Pennington, Schoenholz & Ganguli 2017, 2018).
A Gaussian square weight contributes 1, an orthogonal one 0, relu 1, tanh near 0 at small q.
A wide spread means some directions of the input are amplified and others crushed: learning is
fast along some and glacial along others (Saxe et al. 2014). Dynamical isometry is SUM ≈ 0.
"""
from __future__ import annotations

from netlens.aberrations import register
from netlens.aberrations.base import Aberration, Context, Reading, finite


@register
class Conditioning(Aberration):
    code = "COND"
    name = "ill-conditioning"
    unit = ""
    measures = ("normalized variance var(s²)/mean(s²)² of the row's Jacobian's squared singular "
                "values; judged on the SUM over the top-level rows")
    applies = "weight rows and activation rows (judged on the SUM)"
    explanation = (
        "Signals and gradients are not only scaled by each row but also stretched in some "
        "directions and squeezed in others. This column measures how unevenly a row stretches; "
        "the contributions add up along the network (the SUM row), and the sum says how uneven "
        "the whole network is. When it is large the gradient is dominated by a few directions: "
        "some features learn quickly, others almost not at all, and a learning rate safe for the "
        "steep directions is too slow for the flat ones. Gaussian weights with relu add about 2 "
        "per layer; orthogonal weights with tanh near its linear regime add almost nothing.")
    analogy = ("Optically, this is astigmatism of the whole system: different meridians are "
               "focused with different powers, so no single focus position is sharp everywhere.")
    corrections = ("orthogonal_init", "swap_activation", "wrap_residual", "remove_rows")

    def readings(self, ctx: Context) -> list[Reading]:
        out = [Reading(ctx.row(m.index)["cond"], m.index, severity="ok")   # judged on the SUM
               for m in ctx.rows if finite(ctx.row(m.index).get("cond"))]
        top = {i for i in ctx.top}
        parts = [r for r in out if r.row in top]
        if parts:
            total = sum(r.value for r in parts)
            big = sorted(parts, key=lambda r: -r.value)
            lead, acc = [], 0.0
            for r in big:                       # the rows that make up half of the sum
                lead.append(r.row)
                acc += r.value
                if acc >= total / 2:
                    break
            more = f" and {len(lead) - 4} more" if len(lead) > 4 else ""
            out.append(Reading(total, None, kind="sum", detail="half of it from " + ", ".join(
                f"#{i} {ctx.rows[i].label} ({ctx.row(i)['cond']:.2g})" for i in lead[:4]) + more))
        return out

    def message(self, reading: Reading, ctx: Context) -> str:
        return reading.detail
