"""`netlens catalog`: every registry listed, one entry in full, torch never imported."""
from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from netlens import catalog
from netlens.corrections import CORRECTIONS
from netlens.elements import ELEMENTS
from netlens.elements.inits import INITS
from netlens.errors import DesignError
from tests.conftest import ROOT


def test_listing_has_every_registry():
    doc = catalog.listing()
    assert [e["name"] for e in doc["elements"]] == list(ELEMENTS)
    assert [e["name"] for e in doc["inits"]] == list(INITS)
    assert [e["name"] for e in doc["corrections"]] == list(CORRECTIONS)
    assert all(e["summary"] and e["source"] for e in doc["corrections"])
    codes = [e["code"] for e in doc["aberrations"]]
    assert {"GAIN", "FLOW", "SHRP", "DIVG"} <= set(codes)


def test_activation_entry_shows_gains_over_input_scale():
    relu = catalog.entry("relu")
    assert [r["q"] for r in relu["gains"]] == [0.01, 0.1, 1.0, 10.0, 100.0]
    # homogeneous: −3.01 dB forward and backward at every scale, critical at He's σ_w² = 2
    assert {r["forward_db"] for r in relu["gains"]} == {-3.01}
    assert {r["backward_db"] for r in relu["gains"]} == {-3.01}
    assert relu["critical_sigma_w2"]["0"] == pytest.approx(2.0)
    tanh = catalog.entry("tanh")
    back = [r["backward_db"] for r in tanh["gains"]]
    assert back == sorted(back, reverse=True) and back[0] > -0.2 and back[-1] < -10
    assert tanh["critical_sigma_w2"]["0.05"] == pytest.approx(1.761, abs=1e-3)   # docs/theory.md §1
    assert tanh["gains"][2]["backward_db"] == pytest.approx(10 * math.log10(0.46440), abs=0.01)
    assert "DEAD" in catalog.entry("leaky_relu")["corrects"]


def test_entries_for_inits_aberrations_and_corrections():
    assert catalog.entry("kaiming")["name"] == "he"
    crit = catalog.entry("critical")["critical_sigma_w2"]
    assert crit["tanh"]["0.05"] == pytest.approx(1.761, abs=1e-3) and crit["sigmoid"]["0"] is None
    from netlens.aberrations import TABLE

    flow = catalog.entry("flow")
    assert flow["code"] == "FLOW" and flow["thresholds"]["error"] == TABLE["FLOW"].error
    assert "linear" in flow["corrected_by_elements"]
    he = catalog.entry("he_init")
    assert set(he["addresses"][:2]) == {"FLOW", "GAIN"} and he["predicted_by_paraxial"]
    assert any(s.startswith("FLOW") for s in he["suggested_for"])
    assert catalog.entry("batchnorm")["inserted_by"] == ["insert_batchnorm"]


def test_unknown_name_is_an_argument_error_with_a_suggestion(cli):
    with pytest.raises(DesignError, match="Did you mean `tanh`"):
        catalog.entry("tanhh")
    r = cli("catalog", "he_int")
    assert r.exit_code == 2 and "he_init" in r.output


def test_cli_json_and_tables(cli):
    r = cli("catalog", "--json")
    assert r.exit_code == 0
    doc = json.loads(r.stdout)
    assert doc["netlens"] == 1 and len(doc["corrections"]) == len(CORRECTIONS)
    r = cli("catalog", "tanh")
    assert r.exit_code == 0 and "paraxial gains over input scale" in r.stdout and "1.761" in r.stdout
    for name in ("FLOW", "critical", "wrap_residual", "linear"):
        assert cli("catalog", name).exit_code == 0


def test_catalog_does_not_import_torch():
    probe = ("import sys\nfrom typer.testing import CliRunner\nfrom netlens.cli import app\n"
             "for a in (['catalog'], ['catalog', 'tanh'], ['catalog', 'FLOW', '--json']):\n"
             "    r = CliRunner().invoke(app, a)\n    assert r.exit_code == 0, r.output\n"
             "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"
