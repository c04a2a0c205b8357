"""Token sequences: algorithmic tasks, a Markov chain and character-level text.

Every set is generated offline from the run seed (numpy only). A sample is a sequence of
`length` token ids in 0..vocab−1, delivered as numbers the `embedding` row looks up (never
standardized). Two kinds of task:

* a label per position (next-token prediction and the sequence-to-sequence tasks): labels are
  N×T, and the loss and accuracy are per token, averaged over every position of every sequence;
* one label per sequence (parity, modular addition): labels are N, as for any classification.

Sources and their options (defaults in brackets):

  copy               y_t = x_t                                 vocab [16], length [8]
  reverse            y_t = x_{T−1−t}                           vocab [16], length [8]
  sort               y = the sequence sorted ascending         vocab [16], length [8]
  parity             one label: Σ x_t mod 2, x_t ∈ {0, 1}      length [8]
  modular_addition   one label: (a + b) mod p for x = [a, b, =] p [97], train_fraction
                     (Power et al. 2022, the grokking set: all p² pairs, a fraction trained on)
  markov             next token of a random Markov chain       vocab [16], length [32],
                     whose entropy rate is `entropy` nats per   entropy [1.0]
                     token: the loss a perfect model reaches
  path/to/text.txt   next character, windows of `context`      context [64]
                     characters (vocabulary: the characters of the file)
"""
from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

import numpy as np

from netlens.errors import DesignError

from .files import resolve
from .registry import CLASSIFICATION, Header, source
from .spec import DataSpec

DEFAULT_N = 2000
DEFAULT_VOCAB = 16
DEFAULT_LENGTH = 8
MARKOV_LENGTH = 32
MARKOV_ENTROPY = 1.0
MARKOV_SEED = 20230        # the chain is fixed by (vocab, entropy), the samples by the run seed
DEFAULT_P = 97
DEFAULT_CONTEXT = 64
SEQ_OPTIONS = ("vocab", "length")


def _opt(spec: DataSpec, name: str, default):
    value = getattr(spec, name)
    return default if value is None else value


def _count(spec: DataSpec) -> int:
    return _opt(spec, "n", DEFAULT_N)


def _vocab(spec: DataSpec) -> int:
    return _opt(spec, "vocab", DEFAULT_VOCAB)


def _length(spec: DataSpec, default: int = DEFAULT_LENGTH) -> int:
    return _opt(spec, "length", default)


def _per_token_header(spec: DataSpec, base_dir: Path) -> Header:
    v = _vocab(spec)
    return Header((_length(spec),), CLASSIFICATION, v, _count(spec), vocab=v, per_token=True,
                  token_match=1.0 / v)


def _uniform(spec: DataSpec, rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, _vocab(spec), size=(_count(spec), _length(spec)))


@source("copy", header=_per_token_header, options=SEQ_OPTIONS)
def copy(spec: DataSpec, rng: np.random.Generator, base_dir: Path):
    """Copy the sequence: the label at each position is the token there (uniform random tokens)."""
    x = _uniform(spec, rng)
    return x, x.copy()


@source("reverse", header=_per_token_header, options=SEQ_OPTIONS)
def reverse(spec: DataSpec, rng: np.random.Generator, base_dir: Path):
    """Reverse the sequence: the label at position t is the token at T−1−t (needs positions)."""
    x = _uniform(spec, rng)
    return x, x[:, ::-1].copy()


@source("sort", header=_per_token_header, options=SEQ_OPTIONS)
def sort(spec: DataSpec, rng: np.random.Generator, base_dir: Path):
    """Sort the sequence: the label at position t is the t-th smallest token (ties kept)."""
    x = _uniform(spec, rng)
    return x, np.sort(x, axis=1)


def _parity_header(spec: DataSpec, base_dir: Path) -> Header:
    return Header((_length(spec),), CLASSIFICATION, 2, _count(spec), vocab=2, token_match=0.5)


@source("parity", header=_parity_header, options=("length",))
def parity(spec: DataSpec, rng: np.random.Generator, base_dir: Path):
    """Parity of a bit string: one label per sequence, Σ x_t mod 2 (Minsky & Papert 1969;
    hard for attention without depth: Hahn 2020)."""
    x = rng.integers(0, 2, size=(_count(spec), _length(spec)))
    return x, x.sum(1) % 2


def _p(spec: DataSpec) -> int:
    return _opt(spec, "p", DEFAULT_P)


def _modular_header(spec: DataSpec, base_dir: Path) -> Header:
    p = _p(spec)
    # Off-diagonal position pairs (a,b), (a,=), (b,=): only a = b can match, with chance 1/p.
    return Header((3,), CLASSIFICATION, p, p * p, vocab=p + 1, token_match=1.0 / (3 * p))


def _modular_check(spec: DataSpec) -> None:
    if spec.train_fraction is not None and "val" in spec.model_fields_set:
        raise DesignError("give `train_fraction` or `val`, not both", path="data.train_fraction",
                          expected=f"train_fraction = 1 − val", found=spec.train_fraction)


@source("modular_addition", header=_modular_header, options=("p", "train_fraction"),
        check=_modular_check)
def modular_addition(spec: DataSpec, rng: np.random.Generator, base_dir: Path):
    """(a + b) mod p for every pair a, b < p, written [a, b, =] with `=` the token p: one label
    per sequence (Power et al. 2022, "Grokking"; `train_fraction` of the p² pairs trained on)."""
    p = _p(spec)
    a, b = np.divmod(np.arange(p * p), p)
    x = np.stack([a, b, np.full_like(a, p)], axis=1)
    return x, (a + b) % p


# ---- markov ---------------------------------------------------------------------------

def _row_entropy(probs: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.where(probs > 0, probs * np.log(probs), 0.0).sum(-1)


def _stationary(t: np.ndarray) -> np.ndarray:
    pi = np.full(len(t), 1.0 / len(t))
    for _ in range(2000):
        nxt = pi @ t
        if np.abs(nxt - pi).max() < 1e-13:
            break
        pi = nxt
    return nxt / nxt.sum()


@lru_cache(maxsize=32)
def markov_chain(vocab: int, entropy: float) -> tuple[np.ndarray, np.ndarray]:
    """(transition matrix, stationary distribution) of the chain with this entropy rate.

    Rows are softmax(β·g) of fixed standard-normal scores g; β is solved by bisection so that
    the entropy rate Σ_i π_i H(T_i·) equals `entropy` (nats), which lies in [0, log vocab]."""
    g = np.random.default_rng([MARKOV_SEED, vocab]).standard_normal((vocab, vocab))

    def chain(beta: float) -> tuple[np.ndarray, np.ndarray, float]:
        z = beta * g
        t = np.exp(z - z.max(1, keepdims=True))
        t /= t.sum(1, keepdims=True)
        pi = _stationary(t)
        return t, pi, float(pi @ _row_entropy(t))

    lo, hi = 0.0, 1.0
    while chain(hi)[2] > entropy and hi < 1e4:
        hi *= 2
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if chain(mid)[2] > entropy:
            lo = mid
        else:
            hi = mid
    t, pi, _ = chain(0.5 * (lo + hi))
    return t, pi


def _markov_check(spec: DataSpec) -> None:
    v, h = _vocab(spec), _opt(spec, "entropy", MARKOV_ENTROPY)
    if h > math.log(v) - 1e-6:
        raise DesignError("the entropy rate cannot exceed log(vocab)", path="data.entropy",
                          expected=f"entropy < {math.log(v):.3f} nats for vocab {v}", found=h,
                          suggestion="Lower `entropy` or raise `vocab`.")


def _markov_header(spec: DataSpec, base_dir: Path) -> Header:
    v = _vocab(spec)
    _, pi = markov_chain(v, float(_opt(spec, "entropy", MARKOV_ENTROPY)))
    return Header((_length(spec, MARKOV_LENGTH),), CLASSIFICATION, v, _count(spec), vocab=v,
                  per_token=True, token_match=float(pi @ pi))


@source("markov", header=_markov_header, options=("vocab", "length", "entropy"), check=_markov_check)
def markov(spec: DataSpec, rng: np.random.Generator, base_dir: Path):
    """Next-token prediction on a random Markov chain whose entropy rate is `entropy` nats per
    token (default 1.0), the loss a perfect model reaches (Shannon 1948)."""
    v, length, n = _vocab(spec), _length(spec, MARKOV_LENGTH), _count(spec)
    t, pi = markov_chain(v, float(_opt(spec, "entropy", MARKOV_ENTROPY)))
    cum = np.cumsum(t, axis=1)
    s = np.empty((n, length + 1), dtype=np.int64)
    s[:, 0] = rng.choice(v, size=n, p=pi)
    u = rng.random((n, length))
    for i in range(length):
        s[:, i + 1] = np.minimum((u[:, i:i + 1] > cum[s[:, i]]).sum(1), v - 1)
    return s[:, :-1], s[:, 1:]


# ---- text -----------------------------------------------------------------------------

def _text(spec: DataSpec, base_dir: Path) -> tuple[str, list[str]]:
    path = resolve(spec, base_dir)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise DesignError(f"cannot read text file {path}: {err}", path="data.source",
                          found=str(path), expected="a UTF-8 text file") from None
    context = _opt(spec, "context", DEFAULT_CONTEXT)
    if len(text) < context + 2:
        raise DesignError(f"the text file is too short for windows of {context} characters",
                          path="data.context", expected=f"a file of more than {context + 1} "
                          f"characters, or a smaller `context`", found=f"{len(text)} characters")
    return text, sorted(set(text))


def _text_header(spec: DataSpec, base_dir: Path) -> Header:
    text, chars = _text(spec, base_dir)
    context = _opt(spec, "context", DEFAULT_CONTEXT)
    counts = np.unique(np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32), return_counts=True)[1]
    f = counts / counts.sum()
    return Header((context,), CLASSIFICATION, len(chars), (len(text) - 1) // context,
                  vocab=len(chars), per_token=True, token_match=float(f @ f))


@source("text", suffix=".txt", header=_text_header, options=("context",))
def text(spec: DataSpec, rng: np.random.Generator, base_dir: Path):
    """A .txt file, character level: non-overlapping windows of `context` characters, each
    labelled with the characters one position later (next-character prediction)."""
    body, chars = _text(spec, base_dir)
    context = _opt(spec, "context", DEFAULT_CONTEXT)
    index = {c: i for i, c in enumerate(chars)}
    ids = np.array([index[c] for c in body], dtype=np.int64)
    n = (len(ids) - 1) // context
    starts = np.arange(n) * context
    window = starts[:, None] + np.arange(context + 1)
    w = ids[window]
    return w[:, :-1], w[:, 1:]
