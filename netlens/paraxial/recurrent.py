"""LSTM and GRU at initialization: the hidden state's Gram matrix over positions (approximate).

PyTorch draws every weight and bias of `nn.LSTM`/`nn.GRU` from U(±1/√H): variance 1/(3H). For
one unit, the pre-activation of a gate or candidate at position t is u_t = W·x_t + U·h_{t−1} +
b + b', whose covariance over the random weights is

    C_u[t, s] = (D·G_x[t, s] + H·G_h[t−1, s−1] + 2) / (3H)

— the two biases are the same at every position, so they are a part common to all of them. The
gates are taken as constants at their root mean square, γ = √E[σ(u)²] (≈ 1/2 at init), and the
candidate's covariance over positions is tanh's correlation map of C_u (`gaussian`). Then

  LSTM  c_t = Σ_k γ_i γ_f^{t−k} g_k, so G_c = M·C_g·Mᵀ;  G_h[t, s] = γ_o²·E[tanh(c_t) tanh(c_s)]
  GRU   h_t = Σ_k (1 − γ) γ^{t−k} n_k, so G_h = M·C_n·Mᵀ (n's recurrent part and its bias
        inside r: weight γ_r²)

iterated position by position (G_h[t−1] feeds C_u[t]). The common part of u — biases, and
whatever the inputs share across positions — adds up coherently along the cell and is why a
GRU's state holds more power than its candidate's independent part alone would give.
"""
from __future__ import annotations

import numpy as np

from netlens.paraxial.gaussian import moments


def _tanh_gram(c: np.ndarray) -> np.ndarray:
    from netlens.paraxial.sequence import _activation_gram

    return _activation_gram("tanh", {}, c)


def _gate(v: float) -> float:
    return float(np.sqrt(moments("sigmoid", v).power))


def recurrent_gram(cell: str, gx: np.ndarray, d: int, h: int) -> np.ndarray:
    """The hidden state's T×T Gram matrix for an input Gram `gx` (per unit)."""
    t = len(gx)
    gh = np.zeros((t, t))
    shifted = np.zeros((t, t))          # G_h[t−1, s−1], zero where either is before the start
    cu = np.zeros((t, t))
    gates = np.zeros(t)
    for i in range(t):
        for j in range(i + 1):
            rec = shifted[i, j]
            cu[i, j] = cu[j, i] = (d * gx[i, j] + h * rec + 2.0) / (3.0 * h)
        gates[i] = _gate(float(cu[i, i]))
        g = gates[: i + 1]
        if cell == "gru":
            r2 = gates[i] ** 2
            cn = cu[: i + 1, : i + 1].copy()
            cn -= (1 - r2) * (h * shifted[: i + 1, : i + 1] + 1.0) / (3.0 * h)   # r scales U·h + b_hn
            cand = _tanh_gram(cn)
            m = _weights(g, g, i + 1, gru=True)
            state = m @ cand @ m.T
            gh[: i + 1, : i + 1] = state
        else:
            cand = _tanh_gram(cu[: i + 1, : i + 1])
            m = _weights(g, g, i + 1, gru=False)
            cell_gram = m @ cand @ m.T
            gh[: i + 1, : i + 1] = (g[:, None] * g[None, :]) * _tanh_gram(cell_gram)
        if i + 1 < t:
            shifted[1: i + 2, 1: i + 2] = gh[: i + 1, : i + 1]
    return gh


def _weights(keep: np.ndarray, write: np.ndarray, n: int, gru: bool) -> np.ndarray:
    """M[t, k]: how much of the candidate at k is in the state at t (gates at their rms)."""
    m = np.zeros((n, n))
    for t in range(n):
        for k in range(t + 1):
            decay = np.prod(keep[k + 1: t + 1])
            m[t, k] = (1 - write[k]) * decay if gru else write[k] * decay
    return m


def recurrent_powers(cell: str, q_x: np.ndarray, d: int, h: int) -> np.ndarray:
    """Per-position power of the hidden state for independent positions of power `q_x`."""
    return np.diag(recurrent_gram(cell, np.diag(q_x), d, h))
