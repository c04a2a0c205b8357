"""`netlens --help` and `netlens paraxial` must not import torch (docs/performance.md): they stay instant."""
from __future__ import annotations

import subprocess
import sys

from tests.conftest import DESIGNS, ROOT

PROBE = """
import sys
from typer.testing import CliRunner
from netlens.cli import app
r = CliRunner().invoke(app, {args!r})
assert r.exit_code == 0, r.output
print("torch" in sys.modules)
"""


def _imports_torch(args: list[str]) -> bool:
    out = subprocess.run([sys.executable, "-c", PROBE.format(args=args)], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1] == "True"


def test_help_does_not_import_torch():
    assert not _imports_torch(["--help"])


def test_paraxial_does_not_import_torch():
    assert not _imports_torch(["paraxial", str(DESIGNS / "quickstart.yaml")])
    assert not _imports_torch(["paraxial", str(DESIGNS / "quickstart.yaml"), "--json"])
