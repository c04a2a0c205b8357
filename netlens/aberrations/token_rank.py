"""TRNK — rank collapse across tokens: the positions of a sequence become the same vector.

    trank_i = mean over probe sequences of erank(X_i) / min(T, D)   (X_i: the T × D output of
                                                                     one sequence at row i)
    TRNK_i  = trank_i / trank_embedding                 (relative to the embedded input)

erank is Roy & Vetterli's effective rank, exp of the entropy of the normalized singular values
(as RANK, which measures the same across the samples of a batch). Dong, Cordonnier & Loukas 2021
("Attention is not all you need: pure attention loses rank doubly exponentially with depth")
prove that a stack of self-attention rows without skip connections or MLPs drives every position
toward the same vector, rank one, doubly exponentially fast; Noci et al. 2022 ("Signal
propagation in transformers") show the same at initialization and that it makes the gradients of
queries and keys vanish. Skip connections keep the rank. Judged on the top-level rows, the
stream that the next block reads: inside a residual branch an attention output is low-rank by
design (near-uniform averaging at init), and the join adds it to a full-rank stream. The
paraxial model predicts the same ratio from the Gram matrix of positions
(`netlens.paraxial.sequence`), shown in the message at step 0.
"""
from __future__ import annotations

from netlens.aberrations import register
from netlens.aberrations.base import Aberration, Context, Reading, finite


def reference(values: dict[int, float], rows) -> float | None:
    """The first row's value that has one (the embedding's output)."""
    for m in rows:
        v = values.get(m.index)
        if v is not None and finite(v) and v > 0:
            return v
    return None


@register
class TokenRank(Aberration):
    code = "TRNK"
    name = "rank collapse across tokens"
    unit = "ratio"
    optional_column = True
    measures = ("effective rank of each sequence's T × D output (positions × features), averaged "
                "over the probe sequences, relative to the embedded input's")
    applies = "sequence rows of the top-level stack (judged); residual branches (shown)"
    explanation = (
        "Look at one sequence at one row as a matrix: a vector per position. Its effective rank "
        "counts how many different vectors the positions still carry. Attention averages "
        "positions; a stack of attention rows without skip connections averages them again and "
        "again, until every position holds the same vector — the model can no longer tell "
        "which token sits where, and the gradients of queries and keys vanish. This is RANK "
        "across the tokens of a sequence rather than across the samples of a batch.")
    analogy = ("Optically, it is defocus that grows with every element: each element blurs the "
               "image a little more until the whole field is one uniform patch.")
    corrections = ("wrap_residual", "pre_norm", "remove_rows")

    def readings(self, ctx: Context) -> list[Reading]:
        values = {m.index: ctx.row(m.index).get("trank") for m in ctx.rows}
        base = reference(values, ctx.rows)
        if base is None:
            return []
        top = set(ctx.top)
        return [Reading(v / base, m.index, severity=None if m.index in top else "ok")
                for m in ctx.rows if finite(v := values[m.index])]

    def message(self, reading: Reading, ctx: Context) -> str:
        m = ctx.rows[reading.row]
        text = f"effective rank across positions {ctx.row(m.index)['trank']:.2f} of min(T, D)"
        if ctx.trace is not None and ctx.step == 0:
            pred = predicted(ctx.trace)
            if reading.row in pred:
                text += f"; paraxial predicts {pred[reading.row]:.2f} of the embedded input's here"
        return text


def predicted(trace) -> dict[int, float]:
    """The paraxial TRNK of every sequence row: its predicted token rank over the first one's."""
    ranks = [(t.index, t.token_rank) for t in trace.rows if t.token_rank is not None]
    if not ranks or not ranks[0][1]:
        return {}
    base = ranks[0][1]
    return {i: r / base for i, r in ranks}
