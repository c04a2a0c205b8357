"""`pip install .` (not editable) gives a working tool: the bundled designs ship as package data,
`netlens designs` lists them and `netlens init NAME` copies one. Offline: no build isolation, no
index, no dependencies (they are the test environment's)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import ROOT


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("install")
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "netlens", src / "netlens", symlinks=False,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.best.yaml",
                                                  "*.fixed.yaml", "*.db", "*.db-*"))
    site = tmp / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                    "--no-build-isolation", "--target", str(site), str(src)],
                   check=True, capture_output=True, text=True, cwd=tmp)
    work = tmp / "work"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site), "COLUMNS": "100"}
    return site, work, env


def _netlens(installed, *args):
    site, work, env = installed
    return subprocess.run([sys.executable, "-m", "netlens", *args], cwd=work, env=env,
                          capture_output=True, text=True)


def test_the_installed_package_is_the_one_imported(installed):
    site, work, env = installed
    out = subprocess.run([sys.executable, "-c", "import netlens; print(netlens.__file__)"],
                         cwd=work, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip().startswith(str(site))


def test_installed_designs_are_listed_and_copied(installed):
    site, work, env = installed
    r = _netlens(installed, "designs", "--json")
    assert r.returncode == 0, r.stderr
    names = {d["name"] for d in json.loads(r.stdout)["designs"]}
    assert {"quickstart", "deep-tanh", "default-init-relu"} <= names
    assert all(d["path"].startswith(str(site)) for d in json.loads(r.stdout)["designs"])
    r = _netlens(installed, "init", "quickstart")
    assert r.returncode == 0, r.stderr
    assert (work / "quickstart.yaml").is_file()
    assert _netlens(installed, "init", "quickstart").returncode == 2          # never overwritten
    r = _netlens(installed, "paraxial", "quickstart.yaml", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["design"] == "quickstart"
    r = _netlens(installed, "--version")
    assert r.returncode == 0 and r.stdout.startswith("netlens ")
