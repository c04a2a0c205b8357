"""Instruments for sequences: token inputs, attention statistics, and the rank across tokens.

Called once per probe from the instruments' probe forward (`Instruments._forward_backward`),
with the rows' captured inputs and outputs. Measurement only: it recomputes attention logits
under `no_grad` from each attention row's input (`SelfAttention.statistics`), draws no random
numbers and writes nothing to the model, so training stays bit-identical.

Per attention row:
  entropy   the attention entropy of each head, averaged over queries and probe sequences, over
            its maximum log(attended positions) (T, or t + 1 at position t when causal) — 1 is
            uniform attention, 0 every query on one key (Zhai et al. 2023, "Stabilizing
            transformer training by preventing attention entropy collapse")
  logit     the largest |q·k|/√d_h over the probe batch (Dehghani et al. 2023, ViT-22B: logits
            that grow without bound make the softmax one-hot and training diverge)
Per sequence row (output batch × T × D):
  trank     the effective rank (Roy & Vetterli 2007) of each sequence's T × D output, averaged
            over up to 64 probe sequences, over min(T, D) — rank collapse across tokens (Dong,
            Cordonnier & Loukas 2021; Noci et al. 2022)
Token inputs: the reference power of a token is 1 (a one-hot vector; the data's own ids are not
a signal), there is no input gradient, and the input's effective rank is that of the one-hot
token matrix, exp H(√n_v/Σ√n_v) for token counts n_v.
"""
from __future__ import annotations

import math

import torch

TRANK_SEQUENCES = 64


def token_input(net) -> bool:
    from netlens.model.sequence import TokenEmbedding

    return any(isinstance(m, TokenEmbedding) for m in net.rows)


def onehot_erank(x: torch.Tensor) -> float:
    """Effective rank of the one-hot matrix of the token ids in `x` (its singular values are
    the square roots of the token counts)."""
    _, counts = torch.unique(x.detach().long(), return_counts=True)
    s = counts.double().sqrt()
    p = s / s.sum()
    return float(torch.exp(-(p * p.log()).sum()))


def token_rank(out: torch.Tensor) -> float:
    """Mean effective rank of each sequence's T × D matrix over min(T, D)."""
    x = out.detach()[:TRANK_SEQUENCES].double()
    if x.dim() != 3 or not torch.isfinite(x).all():
        return math.nan
    t, d = x.shape[1], x.shape[2]
    g = x @ x.transpose(1, 2) if t <= d else x.transpose(1, 2) @ x
    s = torch.linalg.eigvalsh(g).clamp_min(0).sqrt()
    total = s.sum(-1, keepdim=True)
    p = s / total.clamp_min(1e-300)
    h = -(torch.where(p > 0, p * p.clamp_min(1e-300).log(), torch.zeros_like(p))).sum(-1)
    er = torch.where(total.squeeze(-1) > 0, torch.exp(h), torch.zeros_like(h))
    return float(er.mean()) / min(t, d)


def measure(instruments, snap, outs: dict, ins: dict) -> None:
    """Fill the sequence quantities of one probe snapshot (see the module doc)."""
    from netlens.model.sequence import SelfAttention

    net = instruments.net
    if token_input(net):
        snap.input_q, snap.input_p = 1.0, math.nan
        if not math.isfinite(getattr(instruments, "_token_erank", math.nan)):
            instruments._token_erank = onehot_erank(instruments.x)
        instruments.input_erank = instruments._token_erank
    for meta, r in zip(instruments.meta, snap.rows):
        out = outs.get(meta.index)
        if out is None or out.dim() != 3:
            continue
        r["trank"] = token_rank(out)
        module = net.rows[meta.index]
        if isinstance(module, SelfAttention) and meta.index in ins:
            st = module.statistics(ins[meta.index])
            r["entropy"] = st["entropy"]
            r["entropy_min"] = min(st["entropy"]) if st["entropy"] else math.nan
            r["logit"] = st["max_logit"]
