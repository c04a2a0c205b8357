"""LOGT — attention logit growth: the largest |q·k|/√d_h of a row.

    LOGT_row = max over heads, queries t, keys s and probe sequences of |q_t·k_s| / √d_h

Dehghani et al. 2023 ("Scaling vision transformers to 22 billion parameters", ICML) report that
without normalization the attention logits of large models grow without bound during training,
the softmax becomes one-hot (see ENTR) and the loss diverges; layer-normalizing q and k
(qk-norm; Henry et al. 2020) removes it, and Wortsman et al. 2023 ("Small-scale proxies for
large-scale transformer training instabilities") reproduce the same growth in small models at
high learning rates. A logit gap of 20 already gives the losing key a weight of e^−20 ≈ 2·10⁻⁹,
so levels are set above what healthy rows need to attend sharply.
"""
from __future__ import annotations

from netlens.aberrations import register
from netlens.aberrations.base import Aberration, Context, Reading, finite


@register
class LogitGrowth(Aberration):
    code = "LOGT"
    name = "attention logit growth"
    unit = ""
    optional_column = True
    measures = "the largest |q·k|/√d_h of the row's attention logits over the probe batch"
    applies = "attention rows"
    explanation = (
        "The attention weights are a softmax of the logits q·k/√d_h. When q and k grow during "
        "training, the logits grow with the product of their norms, and past a gap of about 20 "
        "the softmax is one-hot in floating point: the row attends to one position, its "
        "gradient vanishes, and large models diverge. Normalizing q and k before their product "
        "(qk-norm) caps the logits; a lower learning rate or a warm-up slows their growth.")
    analogy = ("Optically, it is a gain stage driven into clipping: the signal grows until only "
               "the brightest input registers at all.")
    corrections = ("insert_qk_norm", "set_lr", "warmup", "switch_to_adamw", "pre_norm")

    def readings(self, ctx: Context) -> list[Reading]:
        return [Reading(ctx.row(m.index)["logit"], m.index) for m in ctx.rows
                if finite(ctx.row(m.index).get("logit"))]

    def message(self, reading: Reading, ctx: Context) -> str:
        return f"attention logits reach |q·k|/√d = {reading.value:.3g}"
