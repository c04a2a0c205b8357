"""`netlens diagnose`: the JSON contract, exit codes, thresholds, run folders, the bundled designs."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import DESIGNS, ROOT

# Default init under relu: FLOW vanishing at error level, and STAL after a few plain SGD steps.
SICK = """
netlens: 1
name: sick
seed: 0
data: {source: digits, n: 300, batch: 32}
layers:
  - flatten
  - repeat: 7
    of:
      - linear: {width: 32, init: default}
      - relu
  - linear: 10
train: {optimizer: sgd, lr: 0.01, steps: 20}
probe: {every: 10, batch: 64, hessian: false}
"""

HEALTHY = """
netlens: 1
name: healthy
seed: 0
data: {source: digits, n: 300, batch: 32}
layers: [flatten, {linear: {width: 64, init: he}}, relu, {linear: 10}]
train: {optimizer: adam, lr: 0.003, steps: 40}
probe: {every: 10, batch: 64, hessian: {every: 20, max_products: 5}}
"""


def _json(result) -> dict:
    return json.loads(result.stdout)


def test_json_contract(cli, write, tmp_path):
    r = cli("diagnose", write(SICK), "--json", "--out", tmp_path / "run", "--fail-on", "never")
    assert r.exit_code == 0, r.output
    doc = _json(r)
    assert doc["netlens"] == 1 and doc["design"] == "sick" and doc["run_dir"] == str(tmp_path / "run")
    row = doc["rows"][1]
    for key in ("index", "element", "source", "paraxial", "measured", "values"):
        assert key in row
    assert set(row["measured"]) >= {"init", "end"} and set(row["paraxial"]) == {"gain_db", "flow_db"}
    assert {"GAIN", "FLOW", "RANK", "COND", "MEAN"} <= set(row["values"])
    assert "DEAD" in doc["rows"][2]["values"]
    assert set(doc["metrics"]) >= {"train_loss", "val_loss", "train_accuracy", "val_accuracy"}
    assert doc["history"] and doc["network"]["INIT"]["value"] > 0
    f = doc["findings"][0]
    assert f["severity"] == "error" and f["code"] == "FLOW" and isinstance(f["row"], int)
    for key in ("code", "name", "severity", "row", "value", "threshold", "message", "corrections"):
        assert key in f
    assert all(set(c) == {"name", "patch"} for c in f["corrections"])
    assert (tmp_path / "run" / "diagnosis.json").is_file()
    assert (tmp_path / "run" / "aberrations.png").stat().st_size > 10_000


def test_fail_on_exit_codes(cli, write, tmp_path):
    sick = write(SICK, "sick.yaml")
    r = cli("diagnose", sick, "--quiet", "--out", tmp_path / "s", "--fail-on", "never")
    assert r.exit_code == 0, r.output
    for level, code in (("error", 1), ("warn", 1), ("never", 0)):
        r = cli("diagnose", tmp_path / "s", "--quiet", "--fail-on", level)
        assert r.exit_code == code, (level, r.output)
    healthy = write(HEALTHY, "healthy.yaml")
    r = cli("diagnose", healthy, "--quiet", "--out", tmp_path / "h1", "--fail-on", "warn")
    assert r.exit_code == 0, r.output
    # adam: SHRP is judged on the preconditioned sharpness, ok here; records written before it
    # was measured (λ₁(H) only) report SHRP as info, which reaches --fail-on info
    assert cli("diagnose", tmp_path / "h1", "--quiet", "--fail-on", "info").exit_code == 0
    doc = json.loads((tmp_path / "h1" / "records.json").read_text())
    for s in doc["snapshots"]:
        s["hessian"] = s.pop("preconditioned")
    (tmp_path / "h1" / "records.json").write_text(json.dumps(doc))
    r = cli("diagnose", tmp_path / "h1", "--quiet", "--fail-on", "info")
    assert r.exit_code == 1, r.output
    # the prescription's own fail_on is the default
    lenient = write(SICK.replace("probe:", "diagnose: {fail_on: never}\nprobe:"), "lenient.yaml")
    assert cli("diagnose", lenient, "--quiet", "--out", tmp_path / "h2").exit_code == 0
    r = cli("diagnose", healthy, "--quiet", "--fail-on", "sometimes", "--out", tmp_path / "h3")
    assert r.exit_code == 2 and "fail-on" in r.output


def test_run_folder_is_judged_without_retraining(cli, write, tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    assert cli("diagnose", write(SICK), "--quiet", "--out", run_dir).exit_code == 1
    records = (run_dir / "records.json").read_bytes()

    import netlens.simulate

    def no_training(*a, **k):
        raise AssertionError("a run folder must not be re-simulated")

    monkeypatch.setattr(netlens.simulate, "simulate", no_training)
    r = cli("diagnose", run_dir, "--json", "--at", "init", "--fail-on", "never")
    assert r.exit_code == 0, r.output
    doc = _json(r)
    assert doc["at"] == {"requested": "init", "step": 0, "until": 0}
    assert (run_dir / "records.json").read_bytes() == records
    assert doc["rows"][1]["source"].startswith("design.yaml:")      # the original file's lines
    r = cli("diagnose", run_dir, "--json", "--at", "15", "--fail-on", "never")
    doc = _json(r)
    assert doc["at"]["step"] == 10 and any("no probe at step 15" in n for n in doc["notes"])
    # design-only options are refused for a run folder
    r = cli("diagnose", run_dir, "--steps", "5")
    assert r.exit_code == 2 and "run folder" in r.output
    assert cli("diagnose", run_dir, "--at", "later").exit_code == 2
    assert cli("diagnose", tmp_path, "--quiet").exit_code == 2      # not a run folder


def test_thresholds_from_prescription_and_command_line(cli, write, tmp_path):
    from netlens.aberrations import resolve

    relaxed = SICK.replace("probe:", "diagnose:\n  thresholds:\n    FLOW: {warn: 80, error: 100}\n"
                                     "    STAL: [1.2, 1.5]\nprobe:")
    r = cli("diagnose", write(relaxed), "--json", "--out", tmp_path / "a", "--fail-on", "never")
    codes = {f["code"] for f in _json(r)["findings"]}
    assert "FLOW" not in codes and "STAL" not in codes
    assert _json(r)["thresholds"]["FLOW"]["warn"] == 80
    # the command line goes over the prescription
    r = cli("diagnose", tmp_path / "a", "--json", "-t", "FLOW=10,20", "-t", "stal=-,0.5", "--fail-on", "never")
    doc = _json(r)
    assert {"FLOW", "STAL"} <= {f["code"] for f in doc["findings"]}
    assert doc["thresholds"]["STAL"]["warn"] is None
    lim = resolve(None, ["STEP=-4.5:-1,-6:-0.5"])["STEP"]
    assert lim.warn == (-4.5, -1.0) and lim.error == (-6.0, -0.5)
    for bad, words in (("FLWO=1,2", "Did you mean `FLOW`"), ("FLOW=40,20", "beyond the warn level"),
                       ("FLOW", "CODE=WARN,ERROR"), ("DEAD=lots", "number")):
        r = cli("diagnose", tmp_path / "a", "-t", bad)
        assert r.exit_code == 2 and words in r.output, (bad, r.output)
    broken = SICK.replace("probe:", "diagnose:\n  thresholds:\n    GAIN: {warn: high}\nprobe:")
    r = cli("diagnose", write(broken, "broken.yaml"), "--out", tmp_path / "b")
    assert r.exit_code == 2 and "broken.yaml:" in r.output and "diagnose.thresholds.GAIN" in r.output
    assert not (tmp_path / "b").exists()                       # refused before any training


def test_terminal_report(cli, write, tmp_path):
    r = cli("diagnose", write(SICK), "--out", tmp_path / "run", "--fail-on", "never")
    out = r.stdout
    for words in ("aberrations per row at step 20", "SUM", "parax", "Σ flow", "network", "SHRP",
                  "findings —", "ERROR", "FLOW vanishing gradient", "corrections: he_init",
                  "Optically", "run folder:"):
        assert words in out, words


def test_json_pipes_into_python(write, tmp_path):
    """`diagnose --json | python -c 'import json,sys; json.load(sys.stdin)'` — stdout is one document."""
    design = write(HEALTHY)
    cmd = (f"{sys.executable} -m netlens diagnose {design} --json --out {tmp_path / 'run'} | "
           f"{sys.executable} -c 'import json,sys; d = json.load(sys.stdin); print(d[\"design\"])'")
    out = subprocess.run(cmd, shell=True, cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "healthy"


# -- the bundled designs ------------------------------------------------------------------------
# Written outputs (NAME.best.yaml from optimize, NAME.fixed.yaml from diagnose --fix) are not
# bundled designs.
BUNDLED = sorted(p.stem for p in DESIGNS.glob("*.yaml") if "." not in p.stem)
HEALTHY_BUNDLED = ("quickstart", "small-cnn")


# `bundled` (each bundled design diagnosed once, `--json`) is a session fixture in conftest.py,
# shared with tests/test_healthy_recipes.py.


@pytest.mark.slow
@pytest.mark.parametrize("name", HEALTHY_BUNDLED)
def test_healthy_bundled_designs_have_no_warnings(bundled, name):
    code, doc = bundled(name)
    assert code == 0
    bad = [(f["code"], f["severity"], f["message"]) for f in doc["findings"] if f["severity"] in ("warn", "error")]
    assert not bad


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in BUNDLED if n not in HEALTHY_BUNDLED])
def test_every_bundled_design_gives_one_json_document(bundled, name):
    code, doc = bundled(name)
    assert code in (0, 1) and doc["design"] == name
    assert doc["findings"], "a defect design should show its defect"
    assert code == (1 if doc["summary"]["worst"] == "error" else 0)


def test_diagnose_is_a_python_api(write, tmp_path):
    from netlens.diagnose import diagnose

    result = diagnose(write(textwrap.dedent(SICK)), at="init", out=tmp_path / "run")
    assert result.simulated and result.diagnosis.step == 0
    assert result.diagnosis.reaches("error") and not result.diagnosis.reaches("never")
    assert result.diagnosis.score("FLOW") >= 2
    again = diagnose(tmp_path / "run", at="init")
    assert not again.simulated
    assert [f.to_dict() for f in again.diagnosis.findings] == [f.to_dict() for f in result.diagnosis.findings]


def test_run_folder_diagnosis_does_not_import_torch(cli, write, tmp_path):
    """Judging a run folder reads records.json only: no training, no torch import."""
    run_dir = tmp_path / "run"
    assert cli("diagnose", write(HEALTHY), "--quiet", "--out", run_dir, "--fail-on", "never").exit_code == 0
    probe = ("import sys\nfrom typer.testing import CliRunner\nfrom netlens.cli import app\n"
             f"r = CliRunner().invoke(app, ['diagnose', {str(run_dir)!r}, '--fail-on', 'never'])\n"
             "assert r.exit_code == 0, r.output\nprint('torch' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"
