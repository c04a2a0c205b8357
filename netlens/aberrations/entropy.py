"""ENTR — attention entropy collapse: the attention of a row's heads concentrates on one position.

    ENTR_row = mean over heads h of  H_h / log n,   H_h = −Σ_s p_ts log p_ts
    (averaged over query positions t and probe sequences; n the attended positions: T, or t + 1
    when causal, so 1 is uniform attention and 0 every query on a single key)

Zhai et al. 2023 ("Stabilizing transformer training by preventing attention entropy collapse",
ICML) find that unstable transformer runs are preceded by the attention entropy of most heads
falling toward zero — the softmax saturates, its gradient vanishes, and the loss spikes or
plateaus; σReparam, qk-norm (Dehghani et al. 2023), a warm-up or a lower learning rate prevent
it. Single sharp heads are normal (a head that attends to the previous token, or to the t-th
smallest for `sort`), so the row's mean over heads is judged, not its sharpest head.
"""
from __future__ import annotations

from netlens.aberrations import register
from netlens.aberrations.base import Aberration, Context, Reading, finite


@register
class EntropyCollapse(Aberration):
    code = "ENTR"
    name = "attention entropy collapse"
    unit = "ratio"
    optional_column = True
    measures = ("attention entropy of the row, averaged over heads, queries and probe sequences, "
                "over its maximum log(attended positions)")
    applies = "attention rows"
    explanation = (
        "Each attention head spreads its query over the positions it may attend to; its entropy "
        "says how widely (log n when uniform, 0 when it looks at one position only). When the "
        "heads of a row collapse to near-zero entropy, the softmax is saturated: its gradient "
        "vanishes, the row can no longer change where it looks, and training runs into loss "
        "spikes or stalls. It comes from attention logits that grow too fast — a learning rate "
        "too high for the depth, no warm-up, or q·k without normalization.")
    analogy = ("Optically, it is a lens stopped down to a pinhole: every image point receives "
               "light from a single object point, and moving the lens no longer changes the image.")
    corrections = ("insert_qk_norm", "warmup", "set_lr", "pre_norm")

    def readings(self, ctx: Context) -> list[Reading]:
        out = []
        for m in ctx.rows:
            ent = ctx.row(m.index).get("entropy")
            if isinstance(ent, list) and ent and all(finite(e) for e in ent):
                out.append(Reading(sum(ent) / len(ent), m.index))
        return out

    def message(self, reading: Reading, ctx: Context) -> str:
        ent = ctx.row(reading.row)["entropy"]
        return (f"heads at {', '.join(f'{e:.2f}' for e in ent)} of their maximum entropy "
                f"(1 = uniform attention)")
