"""RANK — rank collapse: the row's outputs over a batch span few directions.

    erank(X) = exp(−Σ p_k log p_k),  p_k = s_k / Σ s   (Roy & Vetterli 2007; s: singular
                                                         values of the batch × features output)
    RANK_i = erank(X_i) / min(erank(X_input), width_i)

Deep networks without normalization or skip connections map different inputs ever closer
together as depth grows, until the output's batch matrix is nearly rank one (Daneshmand et al.
2020; Noci et al. 2022 for transformers). docs/theory.md: a 50-layer He relu MLP on digits takes the
input's effective rank 40.8 down to 6.2; with batchnorm it stays near 95. The ratio is to what the
row could carry: the input's rank, or its width if that is smaller.
"""
from __future__ import annotations

from netlens.aberrations import register
from netlens.aberrations.base import Aberration, Context, Reading, finite


@register
class Rank(Aberration):
    code = "RANK"
    name = "rank collapse"
    unit = "ratio"
    measures = ("effective rank of the row's output over the probe batch divided by "
                "min(effective rank of the network input, the row's width)")
    applies = "every row"
    explanation = (
        "Feed a batch of different inputs through the network and look at the outputs of a row "
        "as a matrix (samples × features). Its effective rank counts how many independent "
        "directions the samples still span. If it collapses, different inputs have become nearly "
        "the same vector, the rows below can no longer tell them apart, and the gradients for "
        "different samples point the same way — training slows or stalls. Deep stacks without "
        "normalization or skip connections collapse rank with depth.")
    analogy = ("Optically, this is a loss of resolution: distinct object points blur into the "
               "same image spot, and no later element can separate them again.")
    corrections = ("insert_batchnorm", "wrap_residual", "orthogonal_init", "he_init", "remove_rows")

    def readings(self, ctx: Context) -> list[Reading]:
        base = ctx.records.input_erank
        out = []
        for m in ctx.rows:
            erank = ctx.row(m.index).get("erank")
            if not (finite(erank) and finite(base) and base > 0):
                continue
            out.append(Reading(erank / min(base, m.width), m.index))
        return out

    def message(self, reading: Reading, ctx: Context) -> str:
        m = ctx.rows[reading.row]
        return (f"effective rank {ctx.row(m.index)['erank']:.1f} against "
                f"{min(ctx.records.input_erank, m.width):.1f} available (input {ctx.records.input_erank:.1f}, "
                f"width {m.width})")
