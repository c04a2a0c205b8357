"""One source of truth for corrections: the lists in each aberration's module. What a finding
lists, what `netlens catalog CODE` shows and the corrections' "addresses" column agree."""
from __future__ import annotations

from netlens import catalog
from netlens.corrections import CORRECTIONS
from netlens.corrections.base import Correction


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
train: {optimizer: sgd, lr: 0.01, steps: 10}
probe: {every: 5, batch: 64, hessian: false}
"""


def _lists(entry: dict) -> list[list[str]]:
    return [entry["corrections"]] + [case["corrections"] for case in entry["cases"].values()]


def test_addresses_agree_with_the_aberrations_lists():
    listing = catalog.listing()
    by_code = {a["code"]: catalog.entry(a["code"]) for a in listing["aberrations"]}
    for c in listing["corrections"]:
        named_by = {code for code, e in by_code.items() if any(c["name"] in l for l in _lists(e))}
        assert set(c["addresses"]) == named_by, c["name"]
        assert named_by, f"{c['name']} is listed by no aberration: a finding can never suggest it"
        assert catalog.entry(c["name"])["addresses"] == c["addresses"]
    for code, e in by_code.items():
        assert e["other_corrections"] == [], code       # nothing outside the aberration's lists
        for names in _lists(e):
            assert set(names) <= set(CORRECTIONS), (code, set(names) - set(CORRECTIONS))


def test_no_correction_declares_its_own_addresses():
    for c in CORRECTIONS.values():
        assert type(c).addresses is Correction.addresses, (
            f"{c.name} declares `addresses`; list it in the aberration modules instead")


def test_a_finding_lists_its_catalog_case(write):
    from netlens.diagnose import diagnose

    result = diagnose(write(SICK), save=False)
    assert result.doc["findings"]
    for f in result.doc["findings"]:
        e = catalog.entry(f["code"])
        expected = e["cases"][f["kind"]]["corrections"] if f.get("kind") in e["cases"] else e["corrections"]
        listed = [c["name"] for c in f["corrections"]]
        # the same names (GAIN and FLOW's are re-ranked by the paraxial prediction; a correction
        # with nothing to change in this design is left out, with its reason in the JSON)
        assert set(listed) <= set(expected), (f["code"], set(listed) - set(expected))
