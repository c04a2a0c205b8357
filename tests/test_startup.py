"""Start-up stays light (docs/performance.md): `netlens --help`, `paraxial`, `catalog` and `diagnose RUN_DIR`
import only what they need — never torch, and no SciPy (the paraxial model's Gaussian moments use
NumPy's nodes). Their CPU time is a benchmark (benchmarks/startup.py), not a timed test."""
from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import DESIGNS, ROOT

PROBE = """
import json, sys
from typer.testing import CliRunner
from netlens.cli import app
for args in {runs!r}:
    r = CliRunner().invoke(app, args)
    assert r.exit_code in (0, 1), (args, r.output)
print(json.dumps(sorted({{m.split(".")[0] for m in sys.modules}} | {{m for m in sys.modules if m.startswith(("rich.", "netlens."))}})))
"""


def _imported(*runs: list[str]) -> set[str]:
    out = subprocess.run([sys.executable, "-c", PROBE.format(runs=[list(map(str, r)) for r in runs])],
                         cwd=ROOT, capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_help_does_not_import_torch():
    mods = _imported(["--help"])
    assert not mods & {"torch", "scipy", "pydantic", "numpy", "rich"}
    mods = _imported(["diagnose", "--help"])      # typer itself may take pydantic for option types
    assert not mods & {"torch", "scipy", "numpy"} and "rich.markdown" not in mods


def test_paraxial_does_not_import_torch():
    mods = _imported(["paraxial", DESIGNS / "quickstart.yaml"],
                     ["paraxial", DESIGNS / "quickstart.yaml", "--json"],
                     ["paraxial", DESIGNS / "deep-tanh.yaml"])
    assert "torch" not in mods and "scipy" not in mods
    # a design without diagnose.thresholds leaves the aberrations (all registered on import) out
    assert not {m for m in mods if m.startswith("netlens.aberrations")}


def test_catalog_and_run_folder_diagnosis_do_not_import_torch(cli, write, tmp_path):
    assert "torch" not in _imported(["catalog"], ["catalog", "tanh"], ["catalog", "gelu"],
                                    ["catalog", "SHRP", "--json"])
    run_dir = tmp_path / "run"
    design = write("""
        netlens: 1
        data: {source: digits, n: 200, batch: 32}
        layers: [flatten, {linear: 16}, relu, {linear: 10}]
        train: {optimizer: sgd, lr: 0.05, steps: 8}
        probe: {every: 4, batch: 64, hessian: false}
        """)
    assert cli("simulate", design, "--quiet", "--out", run_dir).exit_code == 0
    assert "torch" not in _imported(["diagnose", run_dir, "--fail-on", "never", "--quiet"])
