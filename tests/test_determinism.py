"""Seeded CPU runs repeat exactly whatever the machine's thread settings: the same design under
OMP_NUM_THREADS=1 and =2 gives identical metrics and findings (netlens.train.threads), and the
thread count actually matters — pinning 1 against 2 threads changes a deep net's numbers, so the
policy is what makes the first check hold."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import DESIGNS, ROOT


def _diagnose(design: str, out, threads_env: str, extra: tuple[str, ...] = ()) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS=threads_env, MKL_NUM_THREADS=threads_env,
               PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "netlens", "diagnose", str(DESIGNS / f"{design}.yaml"), "--json",
           "--fail-on", "never", "--out", str(out), *extra]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _verdict(proc: subprocess.Popen, out_dir) -> dict:
    """The `--json` metrics and findings, and the run's records.json (every measurement at full
    precision) but for the wall-clock time."""
    out, err = proc.communicate()
    assert proc.returncode == 0, err
    doc = json.loads(out)
    records = json.loads((out_dir / "records.json").read_text())
    records.pop("seconds")
    return {"metrics": doc["metrics"], "records": records,
            "findings": [(f["code"], f["kind"], f["severity"], f["row"], f["value"], f["message"])
                         for f in doc["findings"]]}


@pytest.mark.slow
@pytest.mark.parametrize("design", ["quickstart", "deep-tanh", "small-cnn"])
def test_same_verdict_at_one_and_two_omp_threads(design, tmp_path):
    one = _diagnose(design, tmp_path / "one", "1")
    two = _diagnose(design, tmp_path / "two", "2")
    a, b = _verdict(one, tmp_path / "one"), _verdict(two, tmp_path / "two")
    assert a["records"]["threads"] == b["records"]["threads"] == 1
    assert a == b


@pytest.mark.slow
def test_the_thread_count_changes_a_deep_net(tmp_path):
    """What the policy guards against: deep-tanh pinned at 1 and at 2 threads trains to
    different numbers (a parallel sum adds in a different order; 30 layers amplify it: the
    batch losses part at step 9, the final train loss 1.313 against 1.273)."""
    steps = ("--steps", "30")
    one = _diagnose("deep-tanh", tmp_path / "one", "2", ("--threads", "1", *steps))
    two = _diagnose("deep-tanh", tmp_path / "two", "2", ("--threads", "2", *steps))
    a, b = _verdict(one, tmp_path / "one"), _verdict(two, tmp_path / "two")
    assert (a["records"]["threads"], b["records"]["threads"]) == (1, 2)
    assert a["records"]["loss_curve"] != b["records"]["loss_curve"]
