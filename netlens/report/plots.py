"""PNG plots of a run, drawn from the records only (matplotlib, no display needed)."""
from __future__ import annotations

import math
from pathlib import Path

from netlens.instruments.records import RunRecords
from netlens.paraxial.trace import Trace, db


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def loss_curves(rec: RunRecords, path: Path) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    curve = [_num(v) for v in rec.loss_curve]      # a run folder stores non-finite values as null
    if curve:
        ax.plot(range(1, len(curve) + 1), curve, lw=0.6, alpha=0.5, label="batch loss")
    steps = [s.step for s in rec.snapshots]
    ax.plot(steps, [_num(s.train_loss) for s in rec.snapshots], "o-", ms=3, label="train loss")
    if any(s.val_loss is not None for s in rec.snapshots):
        ax.plot(steps, [_num(s.val_loss) for s in rec.snapshots], "s-", ms=3, label="validation loss")
    chance = _chance(rec)
    if chance is not None:
        what = {"cross_entropy": f"ln {rec.n_classes}", "bce": "ln 2"}.get(rec.loss, "targets' variance")
        ax.axhline(chance, color="black", ls=":", lw=1.2,
                   label=f"chance level ({what} = {chance:.3g}): what guessing scores")
    ax.set_xlabel("step")
    ax.set_ylabel(f"loss ({rec.loss})")
    finite = [v for v in curve if math.isfinite(v) and v > 0]
    if finite and max(finite) / min(finite) > 50:
        ax.set_yscale("log")
    ax.set_title(f"{rec.design}: training ({rec.optimizer}, lr {rec.lr:g}, batch {rec.batch})")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def gain_profile(rec: RunRecords, tr: Trace, top: list[int], path: Path) -> None:
    """Cumulative forward power (from the input) and backward gradient power (from the loss)
    along the top-level rows, in dB: paraxial prediction against measurement."""
    plt = _pyplot()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    xs = list(range(len(top)))
    labels = [f"#{i} {rec.rows[i].label}" for i in top]
    a1.plot(xs, [db(tr.rows[i].cum_gain) for i in top], "k--", label="paraxial")
    a2.plot(xs, [db(tr.rows[i].cum_flow) for i in top], "k--", label="paraxial")
    for which, style in (("init", "o-"), ("end", "s-")):
        snap = rec.at(which)
        g = rec.gains(snap)
        cum, acc = [], 0.0
        for i in top:
            acc += db(g[i][0]) if g[i][0] == g[i][0] and g[i][0] > 0 else math.nan
            cum.append(acc)
        back, acc = [], 0.0
        for i in reversed(top):
            acc += db(g[i][1]) if g[i][1] == g[i][1] and g[i][1] > 0 else math.nan
            back.append(acc)
        a1.plot(xs, cum, style, ms=3, label=f"measured, step {snap.step}")
        a2.plot(xs, back[::-1], style, ms=3, label=f"measured, step {snap.step}")
    ticks, names = row_ticks(xs, labels, [rec.rows[i] for i in top])
    for ax, title, ylabel in ((a1, "forward power from the input", "Σ gain: signal power re the input (dB)"),
                              (a2, "gradient power from the loss", "Σ flow: gradient power re the loss (dB)")):
        ax.set_title(title)
        ax.set_ylabel(ylabel)
        ax.axhline(0, color="grey", lw=0.5)
        ax.set_xticks(xs, minor=True)
        ax.set_xticks(ticks)
        ax.set_xticklabels(names, rotation=90, fontsize=6 if len(ticks) > 20 else 7)
        ax.set_xlabel("row" + (" (every row ticked, every k-th labelled)" if len(ticks) < len(xs) else ""))
        ax.legend(fontsize=7)
    fig.suptitle(rec.design)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


MAX_LABELS = 32


def row_ticks(xs: list, labels: list[str], rows: list | None = None,
              most: int = MAX_LABELS) -> tuple[list, list[str]]:
    """Tick positions and labels legible for deep stacks: every row up to `most` rows, beyond
    that every k-th row (k chosen so at most `most` are labelled) plus the last one. The label
    of a repeated row shows its repeat (`×30`) when the rows carry a `source` with `repeat i/n`."""
    n = len(xs)
    if n <= most:
        return list(xs), list(labels)
    k = -(-n // most)
    keep = sorted(set(range(0, n, k)) | {n - 1})
    if len(keep) > 1 and keep[-2] >= n - 1 - k / 2:      # the last two labels would overlap
        keep.pop(-2)
    out = []
    for j in keep:
        text = labels[j]
        src = getattr(rows[j], "source", "") if rows is not None else ""
        if " repeat " in src:
            text += f" ({src.split(' repeat ')[1]})"
        out.append(text)
    return [xs[j] for j in keep], out


def _chance(rec: RunRecords) -> float | None:
    from netlens.aberrations.initial_loss import chance_loss

    try:
        c = chance_loss(rec)
    except (AttributeError, TypeError):
        return None
    return c if c is not None and math.isfinite(c) and c > 0 else None


def _num(v) -> float:
    return math.nan if v is None else float(v)
