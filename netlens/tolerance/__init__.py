"""`netlens tolerance` and `netlens compare`: how much of a result is noise, and how much a
design can move before it fails — lens tolerancing for training runs.

    from netlens.tolerance import Settings, run_tolerance, compare
    result = run_tolerance("designs/quickstart.yaml", Settings(seeds=5))
    result.doc["noise"]["val_loss"]        # {"mean", "sd", "n"}
    result.doc["resolution"]["val_loss"]   # the smallest difference of means beyond noise
    result.doc["sensitivity"]              # one row per perturbation, worst first
    result.doc["instability"]              # the 1-ulp twin (Summers & Dinneen 2021)
    compare(["a.yaml", "b.yaml"], Settings(seeds=5)).doc["verdicts"]

The pieces: `stats` (the rule: |Δ| > 2·√(sd_a²/n_a + sd_b²/n_b)), `operands` (what is
perturbed and what is read), `runs` (one training run, the twin, the instability meter),
`plan` (the runs each part needs), `engine` (optimize's Optuna storage and workers, one trial
per run), `run` and `comparison` (the commands as functions), `plots`, `terminal`.
"""
# Imported on first use: `netlens --help` loads netlens.tolerance.cli, which must stay light.
_EXPORTS = {"CompareResult": "comparison", "compare": "comparison", "ToleranceResult": "run",
            "run_tolerance": "run", "Settings": "settings"}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(f"netlens.tolerance.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'netlens.tolerance' has no attribute {name!r}")
