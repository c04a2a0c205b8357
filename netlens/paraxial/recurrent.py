"""LSTM and GRU at initialization: the hidden state's power position by position (approximate).

PyTorch draws every weight and bias of `nn.LSTM`/`nn.GRU` from U(±1/√H): variance 1/(3H). A gate
pre-activation z at position t then has variance v_z = (D·q_x(t) + H·q_h(t−1) + 2)/(3H) (input
weights, recurrent weights, two biases), and the gates and the cell are taken as independent
Gaussians (the mean-field approximation of Chen, Pennington & Schoenholz 2018, "Dynamical
isometry and a mean field theory of RNNs"):

  LSTM  c²(t) = E[σ(z)²]·c²(t−1) + E[σ(z)²]·E[tanh(z)²],   q_h(t) = E[σ(z)²]·E[tanh(c)²]
  GRU   q_h(t) = E[σ(z)²]·E[n²] + E[σ(z)²]·q_h(t−1),        n = tanh(W_in x + r∘(W_hn h)),
        v_n = (D·q_x + E[σ²]·H·q_h(t−1) + 1 + E[σ²])/(3H)

(E[σ(z)²] = E[(1 − σ(z))²] by symmetry.) Both start from h = c = 0 at t = 0.
"""
from __future__ import annotations

import numpy as np

from netlens.paraxial.gaussian import moments


def _sig2(v: float) -> float:
    return moments("sigmoid", v).power


def _tanh2(v: float) -> float:
    return moments("tanh", v).power


def recurrent_powers(cell: str, q_x: np.ndarray, d: int, h: int) -> np.ndarray:
    """Per-position power of the hidden state for input powers `q_x` (one per position)."""
    out = np.empty(len(q_x))
    qh, c2 = 0.0, 0.0
    for t, qx in enumerate(q_x):
        vz = (d * float(qx) + h * qh + 2.0) / (3.0 * h)
        s2 = _sig2(vz)
        if cell == "lstm":
            c2 = s2 * c2 + s2 * _tanh2(vz)
            qh = s2 * _tanh2(c2)
        else:
            vn = (d * float(qx) + s2 * h * qh + 1.0 + s2) / (3.0 * h)
            qh = s2 * _tanh2(vn) + s2 * qh
        out[t] = qh
    return out
