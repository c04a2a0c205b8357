"""PNG plots of a study: the optimization history, the importances, a slice per variable, and
the Pareto front of a multi-objective study. Optuna draws history, slices and front; the
importance bars are drawn from the numbers the summary already computed (fANOVA is not rerun)."""
from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(ax_or_axes, path: Path, plt, tight: bool = True) -> Path:
    import numpy as np

    ax = np.ravel(ax_or_axes)[0] if isinstance(ax_or_axes, np.ndarray) else ax_or_axes
    fig = ax.figure
    if tight:
        fig.tight_layout()
    # a temporary name of this process's own, so two processes finishing together never collide
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".png")
    try:
        with os.fdopen(fd, "wb") as f:
            fig.savefig(f, dpi=110, format="png")
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        plt.close(fig)
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def draw(plan, study, doc: dict, folder: Path) -> list[Path]:
    from optuna.trial import TrialState
    from optuna.visualization import matplotlib as ov

    plt = _pyplot()
    folder.mkdir(parents=True, exist_ok=True)
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        return []
    out = []
    multi = len(plan.merits) > 1
    first = plan.merits[0].text
    target = (lambda t: t.values[0]) if multi else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")      # Optuna marks its matplotlib plots experimental
        ax = ov.plot_optimization_history(study, target=target, target_name=first)
        ax.set_title(f"{plan.study}: {first} by trial (lower is better)")
        out.append(_save(ax, folder / "history.png", plt))
        axes = ov.plot_slice(study, target=target, target_name=first)
        n = len(plan.space.variables)
        (axes.ravel()[0] if hasattr(axes, "ravel") else axes).figure.set_size_inches(1.5 + 3.2 * n, 4.2)
        out.append(_save(axes, folder / "slices.png", plt, tight=False))   # keeps Optuna's colorbar
        if multi and len(plan.merits) <= 3:
            ax = ov.plot_pareto_front(study, target_names=[m.text for m in plan.merits])
            out.append(_save(ax, folder / "pareto.png", plt))
    if doc["importances"]:
        imp = doc["importances"]
        fig, ax = plt.subplots(figsize=(7, 1.6 + 0.45 * len(imp)))
        names = list(imp)[::-1]
        ax.barh(names, [imp[n] for n in names], color="#4c72b0")
        for i, n in enumerate(names):
            ax.text(imp[n], i, f" {imp[n]:.0%}", va="center")
        ax.set_xlim(0, 1.1)
        ax.set_xlabel(f"share of the variance of {first} across trials (fANOVA)")
        ax.set_ylabel("variable cell")
        ax.set_title(f"{plan.study}: which variable cells matter")
        out.append(_save(ax, folder / "importances.png", plt))
    return out
