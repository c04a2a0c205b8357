"""Invalid prescriptions: exit code 2 and one paragraph naming file, line, field and a fix."""
from __future__ import annotations

import pytest

from tests.conftest import MLP

# case: (old text, new text, the text on the line the error must name, a phrase it must contain)
CASES = {
    "unknown element": ("  - relu\n", "  - reluu\n", "reluu", "did you mean `relu`"),
    "bad width": ("width: 32", "width: -3", "width: -3", "width"),
    "typo'd key": ("momentum: 0.9", "momentun: 0.9", "momentun", "did you mean `momentum`"),
    "typo'd option": ("init: he}", "inti: he}", "inti", "did you mean `init`"),
    "wrong type": ("steps: 30", "steps: many", "steps: many", "steps"),
    "unknown init": ("init: he", "init: kaimin", "kaimin", "did you mean `kaiming`"),
    "missing data file": ("source: digits", "source: nowhere/data.csv", "nowhere", "data.csv"),
    "yaml syntax": ("  n: 400\n", "  n: [400\n", "batch: 32", "syntax"),
    "python tag": ("steps: 30", "steps: !!python/object/apply:os.system ['true']", "python/object",
                   "tags are not allowed"),
    "shape mismatch": ("  - flatten\n", "", "width: 32", "flatten"),
    "wrong head": ("linear: 10", "linear: 7", "linear: 7", "linear: 10"),
    "unknown section": ("probe:", "prob:", "prob:", "did you mean `probe`"),
    "bad optimizer": ("optimizer: sgd", "optimizer: sdg", "sdg", "did you mean `sgd`"),
    "unknown dataset": ("source: digits", "source: digit", "digit", "did you mean `digits`"),
    "bad variable": ("lr: 0.05", "lr: {vary: [0.1]}", "vary", "[low, high]"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_invalid_prescription_exits_2_with_location(case, write, cli):
    old, new, marker, hint = CASES[case]
    assert old in MLP
    text = MLP.replace(old, new)
    line = 1 + next(i for i, ln in enumerate(text.lstrip().splitlines()) if marker in ln)
    path = write(text)
    result = cli("paraxial", path)
    assert result.exit_code == 2, result.output
    message = result.stderr
    assert f"design.yaml:{line}" in message, message
    assert hint.lower() in message.lower(), message
    assert "Traceback" not in message
    assert result.stdout == ""
    assert len([ln for ln in message.splitlines() if ln.strip()]) <= 6   # one paragraph


def test_missing_design_file(cli, tmp_path):
    result = cli("simulate", tmp_path / "nope.yaml")
    assert result.exit_code == 2
    assert "nope.yaml" in result.stderr and "Traceback" not in result.stderr


def test_valid_prescription_passes(write, cli):
    result = cli("paraxial", write(MLP))
    assert result.exit_code == 0, result.stderr
    assert "SUM" in result.stdout
