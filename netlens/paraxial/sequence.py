"""Paraxial rules for sequences: the Gram matrix of positions, attention at initialization,
the token rank, and the backward pass that attention's gradient gain needs.

A sequence beam carries, besides the mean square q, the T×T Gram matrix of its positions,
G_ts = E[x_t·x_s]/D (the average over a wide layer's units). Rows that act on each token alone
map it entry by entry, as the mean-field correlation map maps pairs of inputs (Poole et al.
2016): a linear row G → σ_w²·G + σ_b²; an activation G_ts → E[φ(u)φ(v)] for (u, v) Gaussian
with that covariance (`gaussian.correlation_map`, exact for the relu family, at the geometric
mean of the two powers otherwise); a layernorm or rmsnorm G_ts → G_ts/√(G_tt·G_ss) (each position at unit power; the per-token
mean a layernorm removes is ≈ 0 for random-sign units); dropout divides the diagonal by 1 − p.

Attention at initialization (approximate: "near-uniform attention"). With Q, K, V, O weights
of variance σ_w²/D and biases σ_b², the logits s_ts = q_t·k_s/√d_h have variance
v_t = (σ_w² G_tt + σ_b²)(σ_w² G_ss + σ_b²) (1 with qk_norm), of which the part that differs
between attended positions, τ_t² = v_t·(1 − c̄_t) (c̄_t the mean correlation of the attended
keys), is what the softmax sees. Treating the logits as independent Gaussians, the weights p_ts
over the n_t attended positions (T; t + 1 when causal) have E[p_ts] = 1/n_t and
E[Σ_s p_ts²] = e^{τ_t²}/n_t (log-normal weights, n_t large), the rest of the second moment spread
evenly; dropout on the weights multiplies the diagonal part by 1/(1 − p). (The log-normal
e^{τ²}/n holds only while e^{τ²} ≪ n; E[Σ p²] itself is computed for any τ, see
`softmax_concentration`.) The value–output path
then gives

    G_out = σ_o²·(σ_v²·Σ_{s,s'} E[p_ts p_t's'] G_ss' + σ_bv²) + σ_bo²

so a row's output power averages its input over the attended positions: q_out ≈ σ⁴·q·(c̄ +
(1 − c̄)/n) for positions of mean correlation c̄ — shrinking by 1/n when they are uncorrelated,
and, for causal attention, by 1/(t + 1) at position t. The backward gain takes the same averages
of the gradient's position Gram Γ: Γ_in[s, s'] = σ_v²σ_o² Σ_{t,t'} E[p_ts p_t's'] Γ_tt', which is
why it needs a backward pass (`backward`): Γ is the identity at a per-token loss (independent
targets), the all-ones matrix under `mean_pool`, the last position alone under `last_token`.
The path through the logits is neglected (its share is of order τ², small at near-uniform
attention).

Token rank: the effective rank (Roy & Vetterli 2007) of the expected Gram's eigenvalues,
exp H(√λ/Σ√λ), over min(T, D) — the quantity the TRNK aberration measures per sequence. A
stack of attention rows without skip connections drives G toward the all-ones matrix (every
position the same vector), rank one: Dong, Cordonnier & Loukas 2021 show the collapse is doubly
exponential in depth; Noci et al. 2022 trace it at initialization. The residual join adds the
skip path's G back (G_in + α²·G_branch), which keeps the rank.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from netlens.elements.base import Beam, Context, Optics

APPROX_ATTENTION = ("attention: near-uniform attention at init (logits as independent Gaussians; "
                    "value path only backward)")
APPROX_TOKENS = "embedding: tokens taken as independent, matching with the data's P(same token)"


def is_sequence(beam: Beam) -> bool:
    return beam.gram is not None


def check_tokens(el, token_input: bool) -> None:
    """Token ids go into an `embedding` row and nowhere else."""
    from netlens.errors import DesignError

    takes = getattr(el, "takes_tokens", False)
    if token_input and not takes:
        raise DesignError(f"`{el.name}` cannot take token ids", expected="an `embedding` row first",
                          found=f"`{el.name}` on the token data",
                          suggestion="Start the stack with `embedding: 64` (a vector per token).")
    if takes and not token_input:
        raise DesignError("`embedding` takes token ids, and only as the first row",
                          expected="token data (`sort`, `markov`, a .txt file …) and `embedding` first",
                          found="a non-token input here")


def erank(gram: np.ndarray) -> float:
    """exp of the entropy of the normalized singular values √λ of a Gram matrix."""
    lam = np.clip(np.linalg.eigvalsh((gram + gram.T) / 2), 0, None)
    s = np.sqrt(lam)
    total = s.sum()
    if not np.isfinite(total) or total <= 0:
        return 0.0
    p = s[s > 0] / total
    return float(np.exp(-(p * np.log(p)).sum()))


def token_rank(beam: Beam) -> float | None:
    """Predicted effective rank across positions over min(T, D) (None for non-sequences)."""
    if beam.gram is None or len(beam.shape) != 2:
        return None
    t, d = beam.shape
    return erank(beam.gram) / min(t, d)


def _q(gram: np.ndarray) -> float:
    return float(np.mean(np.diag(gram)))


def with_gram(optics: Optics, beam_in: Beam, gram: np.ndarray | None, approx: str | None = None) -> Optics:
    """Optics whose output carries `gram`, its power read from the Gram's diagonal."""
    if gram is None:
        return optics
    if not np.isfinite(gram).all() or np.diag(gram).min() < 0:
        return optics          # outside the model's range: keep the row's scalar rule
    q = _q(gram)
    out = Beam(optics.beam.shape, q, optics.beam.m, gram=gram)
    gain = q / beam_in.q if beam_in.q > 0 else 1.0
    return Optics(out, gain, optics.flow, optics.cond, approx or optics.approx)


# --- rows that act on each token alone ---------------------------------------------------------

@lru_cache(maxsize=65536)
def _pair(name: str, params: tuple, q: float, c: float) -> float:
    from netlens.paraxial.gaussian import correlation_map

    return correlation_map(name, q, c, **dict(params))


def _activation_gram(name: str, params: dict, gram: np.ndarray) -> np.ndarray:
    from netlens.paraxial.gaussian import moments

    key = tuple(sorted(params.items()))
    d = np.clip(np.diag(gram), 1e-300, None)
    out = np.empty_like(gram)
    t = len(gram)
    for i in range(t):
        out[i, i] = moments(name, float(d[i]), **params).power
        for j in range(i + 1, t):
            q = float(np.sqrt(d[i] * d[j]))
            c = float(np.clip(gram[i, j] / q, -1.0, 1.0))
            # Round for the cache: positions of a sequence share most of their correlations.
            out[i, j] = out[j, i] = _pair(name, key, round(q, 6), round(c, 5))
    return out


def carry(el, beam: Beam, optics: Optics, ctx: Context) -> Optics:
    """Propagate the Gram matrix through a row that did not set one itself."""
    if beam.gram is None or optics.beam.gram is not None or len(optics.beam.shape) != 2:
        return optics
    from netlens.elements.activations import Activation
    from netlens.elements.layers import Weighted

    g = beam.gram
    if isinstance(el, Weighted):
        sb = (ctx.sigma_b2 or 0.0) if getattr(el.opts, "bias", False) else 0.0
        new = (ctx.sigma_w2 or 0.0) * g + sb
    elif isinstance(el, Activation):
        new = _activation_gram(el.name, el.phi_params(), g)
    elif el.kind == "norm":
        # Each position scaled to unit power. (A layernorm also removes each token's mean over
        # its features, which is ≈ 0 for the zero-mean, random-sign units of a linear row.)
        d = np.sqrt(np.clip(np.diag(g), 1e-300, None))
        new = g / np.outer(d, d)
    elif el.kind == "regularizer" and hasattr(el.opts, "p"):
        new = g.copy()
        np.fill_diagonal(new, np.diag(g) / (1.0 - el.opts.p))
    else:
        new = g * (optics.beam.q / beam.q if beam.q > 0 else 1.0)
    return with_gram(optics, beam, new)


def join(skip: Beam, branch: Beam, a2: float) -> np.ndarray | None:
    """The residual join's Gram: skip + α²·branch (independent weights: no cross terms at init)."""
    if skip.gram is None or branch.gram is None or skip.gram.shape != branch.gram.shape:
        return None
    return skip.gram + a2 * branch.gram


# --- embedding and positions -------------------------------------------------------------------

def embedding_gram(t: int, std: float, match: float | None) -> np.ndarray:
    """E[e_{x_t}·e_{x_s}]/D = std² when the tokens match (probability `match`), 0 otherwise."""
    m = 0.0 if match is None else match
    return std ** 2 * ((1 - m) * np.eye(t) + m)


def sinusoidal_table(t: int, d: int) -> np.ndarray:
    """Vaswani et al. 2017: PE[t, 2i] = sin(t/10000^(2i/d)), PE[t, 2i+1] = cos(…)."""
    pos = np.arange(t)[:, None]
    freq = np.exp(-math.log(10000.0) * (np.arange(0, d, 2) / d))
    pe = np.zeros((t, d))
    pe[:, 0::2] = np.sin(pos * freq)
    pe[:, 1::2] = np.cos(pos * freq)[:, : d // 2]
    return pe


# --- attention ---------------------------------------------------------------------------------

def attended(t: int, causal: bool) -> np.ndarray:
    """Mask A[t, s] = 1 where position t attends to s."""
    return np.tril(np.ones((t, t))) if causal else np.ones((t, t))


@lru_cache(maxsize=4096)
def _concentration(n: int, tau2: float) -> float:
    z = np.random.default_rng(0).standard_normal((max(256, 65536 // n), n)) * math.sqrt(tau2)
    z -= z.max(1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(1, keepdims=True)
    return float(np.mean(np.sum(p * p, 1)))


def softmax_concentration(n: int, tau2: float) -> float:
    """E[Σ_s p_s²] for p = softmax of n independent N(0, τ²) logits: 1/n when uniform (τ = 0),
    → 1 as the softmax turns one-hot. e^{τ²}/n for large n and small τ; here by a fixed-seed
    Monte-Carlo average (deterministic, cached), since attention rows sit between the two."""
    if n <= 1:
        return 1.0
    if tau2 < 1e-4:
        return (1.0 + tau2) / n          # the small-τ expansion, e^{τ²}/n to first order
    return _concentration(n, round(tau2, 3))


def weight_moments(gram: np.ndarray, mask: np.ndarray, logit_var: np.ndarray,
                   dropout: float) -> tuple[np.ndarray, np.ndarray]:
    """(E[p_ts], E[p_ts p_ts']) of the attention weights: the mean T×T matrix and, per query
    position t, the T×T second-moment matrix, under the log-normal model in the module doc."""
    t = len(gram)
    n = mask.sum(1)
    mean = mask / n[:, None]
    d = np.sqrt(np.clip(np.diag(gram), 1e-300, None))
    corr = gram / np.outer(d, d)
    second = np.empty((t, t, t))
    for i in range(t):
        att = mask[i] > 0
        k = int(n[i])
        if k > 1:
            cbar = (corr[np.ix_(att, att)].sum() - k) / (k * (k - 1))
        else:
            cbar = 1.0
        tau2 = max(0.0, float(logit_var[i]) * (1.0 - cbar))
        diag = softmax_concentration(k, tau2)                     # E[Σ_s p_s²]
        off = (1.0 - diag) / (k * (k - 1)) if k > 1 else 0.0
        m = np.outer(att, att) * off
        np.fill_diagonal(m, att * (diag / k / (1.0 - dropout)))
        second[i] = m
    return mean, second


def attention_optics(beam: Beam, heads: int, causal: bool, qk_norm: bool, dropout: float,
                     sigma_w2: float, sigma_b2: float) -> tuple[Optics, tuple]:
    """The forward rule; returns the optics and the weight moments the backward pass needs."""
    g = beam.gram
    t = len(g)
    mask = attended(t, causal)
    qv = sigma_w2 * np.diag(g) + sigma_b2                      # per-unit power of q_t (and k_t)
    if qk_norm:
        logit_var = np.ones(t)
    else:   # E over attended keys of var(q_t)·var(k_s)
        logit_var = qv * (mask @ qv) / mask.sum(1)
    mean, second = weight_moments(g, mask, logit_var, dropout)
    mixed = np.empty_like(g)
    for i in range(t):
        for j in range(i, t):
            if i == j:
                v = float(np.sum(second[i] * g))
            else:                                    # different queries: independent weights
                v = float(mean[i] @ g @ mean[j])
            mixed[i, j] = mixed[j, i] = v
    att = sigma_w2 * (sigma_w2 * mixed + sigma_b2) + sigma_b2
    q = _q(att)
    out = Beam(beam.shape, q, 0.0, gram=att)
    optics = Optics(out, q / beam.q if beam.q > 0 else 1.0, sigma_w2 ** 2, 0.0, APPROX_ATTENTION)
    return optics, (mean, second, sigma_w2 ** 2)


def attention_backward(rule: tuple, gamma: np.ndarray) -> np.ndarray:
    """Γ_in[s, s'] = σ_v²σ_o² Σ_{t,t'} E[p_ts p_t's'] Γ_tt' (value path)."""
    mean, second, scale = rule
    t = len(gamma)
    out = mean.T @ (gamma - np.diag(np.diag(gamma))) @ mean
    for i in range(t):
        out += gamma[i, i] * second[i]
    return scale * out


def rank_note(design, rows: list) -> list[str]:
    """A note when the predicted token rank of a top-level row falls below TRNK's warn level."""
    ranks = [(t.index, t.token_rank) for t in rows if t.token_rank is not None]
    if not ranks or not ranks[0][1]:
        return []
    base, top = ranks[0][1], {r.index for r in design.top_rows()}
    low = [(i, r / base) for i, r in ranks if i in top and r / base < 0.25]
    if not low:
        return []
    i, v = low[0]
    j, w = min(low, key=lambda x: x[1])
    last = f", {w:.2f} at #{j}" if f"{w:.2f}" != f"{v:.2f}" else ""
    return [f"token rank across positions (TRNK) predicted at {v:.2f} of the embedded input's "
            f"from #{i} {design.rows[i].label} on{last}: rank collapse (Dong et al. 2021)"]


# --- the backward pass -------------------------------------------------------------------------

def backward(design, rows: list, per_token: bool) -> None:
    """Carry the gradient's position Gram Γ from the loss to the input and set the backward gain
    of every attention row (and of the residual blocks around them) from it."""
    top = design.top_rows()
    last = rows[top[-1].index]
    per_token = per_token and len(last.out_shape) == 2
    _back_chain(design, top, rows, np.eye(last.out_shape[0]) if per_token else None)


def _back_chain(design, chain: list, rows: list, gamma):
    for row in reversed(chain):
        gamma = _back_row(design, row, rows, gamma)
    return gamma


def _back_row(design, row, rows: list, gamma):
    tr = rows[row.index]
    if row.element is None:
        children = [design.rows[i] for i in row.children]
        a2 = row.scale ** 2
        branch = _back_chain(design, children, rows, gamma)
        tr.flow = _skip_flow(tr) + a2 * math.prod(rows[i].flow for i in row.children)
        if gamma is None or branch is None or branch.shape != gamma.shape:
            return None if gamma is None else gamma * tr.flow
        return gamma + a2 * branch
    name = row.element.name
    t_in = tr.in_shape[0] if len(tr.in_shape) == 2 else None
    if name == "mean_pool" and t_in:
        return np.ones((t_in, t_in)) / t_in ** 2      # each position gets 1/T of the gradient
    if name == "last_token" and t_in:
        g = np.zeros((t_in, t_in))
        g[-1, -1] = 1.0                               # the last position gets all of it
        return g
    if gamma is None:
        return None
    if tr.mix is not None and gamma.shape == tr.mix[0].shape:
        new = attention_backward(tr.mix, gamma)
        p_out = float(np.mean(np.diag(gamma)))
        tr.flow = float(np.mean(np.diag(new))) / p_out if p_out > 0 else tr.flow
        return new
    if len(tr.in_shape) != 2:
        return None
    return gamma * tr.flow


def _skip_flow(tr) -> float:
    return tr.skip_flow
