"""The first minutes at the command line: help, version, flags shown as flags, files written
with the user's umask."""
from __future__ import annotations

import os
import re
import stat
import subprocess
import sys

from tests.conftest import ROOT


def _run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "netlens", *args], cwd=ROOT, capture_output=True,
                          text=True, env={**os.environ, "COLUMNS": "200", **(env or {})})


def test_bare_netlens_prints_help_and_exits_0():
    r = _run()
    assert r.returncode == 0 and "Usage" in r.stdout and "paraxial" in r.stdout


def test_version():
    import netlens

    r = _run("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"netlens {netlens.__version__}"
    assert re.fullmatch(r"\d+\.\d+.*", netlens.__version__)


def test_short_help_and_flags_shown_as_flags():
    r = _run("paraxial", "-h")
    assert r.returncode == 0
    assert "--json" in r.stdout and "<bool>" not in r.stdout
    r = _run("diagnose", "--help")
    assert "<bool>" not in r.stdout and "--fail-on" in r.stdout


def test_merit_examples_keep_their_star():
    r = _run("optimize", "--help")
    assert "1e-5*params" in r.stdout and "0.1*FLOW" in r.stdout


def test_files_are_written_with_the_users_umask(tmp_path):
    from netlens.report.files import write_json

    old = os.umask(0o022)
    try:
        write_json(tmp_path / "a.json", {"x": 1})
        os.umask(0o077)
        write_json(tmp_path / "b.json", {"x": 1})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "b.json").stat().st_mode) == 0o600
