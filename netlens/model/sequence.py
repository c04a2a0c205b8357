"""Torch modules of the sequence rows (`netlens.elements.sequence`). Inputs are (batch, T) token
ids — carried as floating-point numbers like every other input, cast back here — or
(batch, T, D) sequences.

`SelfAttention.statistics(x)` is how the attention row exposes what it does when asked: the
attention entropy per head, the attended positions, and the largest |q·k|/√d_h, recomputed under
`no_grad` from the row's input (the instruments ask on probe steps; training never does).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class TokenEmbedding(nn.Module):
    def __init__(self, vocab: int, width: int, std: float):
        super().__init__()
        self.vocab = vocab
        self.weight = nn.Parameter(torch.empty(vocab, width))
        nn.init.normal_(self.weight, 0.0, std) if std > 0 else nn.init.zeros_(self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.embedding(x.long(), self.weight)


class PositionCode(nn.Module):
    def __init__(self, t: int, d: int, kind: str, std: float):
        super().__init__()
        self.kind = kind
        if kind == "learned":
            self.table = nn.Parameter(torch.randn(t, d) * std)
        else:
            pos = torch.arange(t, dtype=torch.float64)[:, None]
            freq = torch.exp(-math.log(10000.0) * torch.arange(0, d, 2, dtype=torch.float64) / d)
            pe = torch.zeros(t, d, dtype=torch.float64)
            pe[:, 0::2] = torch.sin(pos * freq)
            pe[:, 1::2] = torch.cos(pos * freq)[:, : d // 2]
            self.register_buffer("table", pe.float(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.table.to(x.dtype)


def _init_linear(mod: nn.Linear, init: str, gain: float, sigma_w2: float | None, sigma_b2: float | None):
    """As `Weighted.init_weights`: torch's default (× gain), orthogonal, or N(0, σ_w²/fan_in)."""
    with torch.no_grad():
        if init == "default":
            if gain != 1.0:
                mod.weight.mul_(gain)
            return
        if init == "orthogonal":
            nn.init.orthogonal_(mod.weight, gain=gain)
        else:
            std = (float(sigma_w2 or 0.0) / mod.weight.shape[1]) ** 0.5
            nn.init.normal_(mod.weight, 0.0, std) if std > 0 else mod.weight.zero_()
        if mod.bias is not None:
            sb = float(sigma_b2 or 0.0)
            nn.init.normal_(mod.bias, 0.0, sb ** 0.5) if sb > 0 else mod.bias.zero_()


class SelfAttention(nn.Module):
    def __init__(self, d: int, heads: int, causal: bool, qk_norm: bool, dropout: float, bias: bool,
                 init: str, gain: float, sigma_w2: float | None, sigma_b2: float | None):
        super().__init__()
        self.heads, self.dh, self.causal = heads, d // heads, causal
        self.q = nn.Linear(d, d, bias=bias)
        self.k = nn.Linear(d, d, bias=bias)
        self.v = nn.Linear(d, d, bias=bias)
        self.o = nn.Linear(d, d, bias=bias)
        for m in (self.q, self.k, self.v, self.o):
            _init_linear(m, init, gain, sigma_w2, sigma_b2)
        self.q_norm = nn.LayerNorm(self.dh) if qk_norm else None
        self.k_norm = nn.LayerNorm(self.dh) if qk_norm else None
        self.drop = nn.Dropout(dropout)

    def _split(self, t: torch.Tensor) -> torch.Tensor:
        b, n, _ = t.shape
        return t.view(b, n, self.heads, self.dh).transpose(1, 2)          # (B, H, T, dh)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        q, k = self._split(self.q(x)), self._split(self.k(x))
        if self.q_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)
        s = q @ k.transpose(-1, -2) / math.sqrt(self.dh)
        if self.causal:
            n = x.shape[1]
            mask = torch.ones(n, n, dtype=torch.bool, device=x.device).triu(1)
            s = s.masked_fill(mask, float("-inf"))
        return s

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.drop(torch.softmax(self.logits(x), dim=-1))
        a = (p @ self._split(self.v(x))).transpose(1, 2).reshape(x.shape)
        return self.o(a)

    @torch.no_grad()
    def statistics(self, x: torch.Tensor) -> dict[str, list[float] | float]:
        """Per head: the attention entropy averaged over queries and samples, against its
        maximum log(attended positions); the largest |q·k|/√d_h over the batch."""
        s = self.logits(x.detach()).double()
        p = torch.softmax(s, dim=-1)
        logp = torch.log_softmax(s, dim=-1)
        ent = -(torch.where(p > 0, p * logp, torch.zeros_like(p))).sum(-1)      # (B, H, T)
        n = x.shape[1]
        attended = torch.arange(1, n + 1, dtype=s.dtype) if self.causal else torch.full((n,), float(n), dtype=s.dtype)
        logn = torch.log(attended)
        # Positions that attend to a single key (the first, when causal) carry no entropy to lose.
        keep = logn > 0
        ratio = (ent[..., keep] / logn[keep]).mean(dim=(0, 2)) if keep.any() else torch.ones(self.heads, dtype=s.dtype)
        finite = torch.isfinite(s)
        logit = float(s.abs().masked_fill(~finite, 0).max()) if finite.any() else math.nan
        return {"entropy": [float(v) for v in ratio], "entropy_nats": [float(v) for v in ent.mean(dim=(0, 2))],
                "max_logit": logit}


class MeanPool(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=1)


class LastToken(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, -1]


class Recurrent(nn.Module):
    def __init__(self, cell: str, d: int, hidden: int, layers: int):
        super().__init__()
        cls = nn.LSTM if cell == "lstm" else nn.GRU
        self.rnn = cls(d, hidden, num_layers=layers, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rnn(x)[0]
