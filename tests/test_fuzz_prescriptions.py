"""Property: whatever is done to a valid prescription — a value's type or size changed, a key
removed, added or misspelt, a value nested or flattened, aliases, merge keys, tags, stray bytes —
netlens answers with exit code 0, 1, 2 or 3, never a traceback, and within a time bound.

A fixed budget for CI: derandomized (the same examples every run), 40 of them, each a tiny design
run through `paraxial` (and one in eight through `simulate` for two steps).
"""
from __future__ import annotations

import copy
import os
import time

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

VALID = {
    "netlens": 1,
    "name": "fuzz",
    "seed": 0,
    "data": {"source": "digits", "n": 120, "batch": 16, "val": 0.2},
    "layers": [
        "flatten",
        {"linear": {"width": 8, "init": "he"}},
        "tanh",
        {"repeat": 2, "of": [{"linear": 8}, "relu"]},
        {"residual": [{"linear": 8}, "relu"], "scale": 0.5},
        {"linear": 10},
    ],
    "train": {"optimizer": "sgd", "lr": {"vary": [0.01, 0.1], "log": True}, "steps": 2},
    "probe": {"every": 1, "batch": 16, "hessian": False},
    "diagnose": {"thresholds": {"FLOW": [15, 30]}},
}

ODD_VALUES = [
    None, True, False, 0, -1, 1, 3, 2**70, 10**12, 0.0, -0.5, 0.5, 1e300, float("nan"),
    float("inf"), "", "16", "../escape", "/abs/path", "a\0b", "é", "x" * 300, [], [1, 2], {},
    {"vary": [1, 2]}, {"vary": [0.1, float("inf")]}, {"choose": []}, {"choose": ["relu", "tanh"]},
    {"name": "he", "gain": -1}, [[[[[]]]]], {"a": {"b": {"c": {}}}},
]
ODD_KEYS = ["", "nmae", "lr", "width", "repeat", "of", "vary", "<<", "source", "hessian", "1"]


def _paths(node, here=()):
    """Every key path in the tree (to values and containers alike)."""
    yield here
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, here + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, here + (i,))


def _get(tree, path):
    for p in path:
        tree = tree[p]
    return tree


@st.composite
def mutated(draw):
    tree = copy.deepcopy(VALID)
    for _ in range(draw(st.integers(0, 2))):
        paths = [p for p in _paths(tree) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent, key = _get(tree, path[:-1]), path[-1]
        op = draw(st.sampled_from(["value", "value", "delete", "add", "nest", "flatten"]))
        if op == "value":
            parent[key] = copy.deepcopy(draw(st.sampled_from(ODD_VALUES)))
        elif op == "delete":
            del parent[key]
        elif op == "add" and isinstance(parent, dict):
            parent[draw(st.sampled_from(ODD_KEYS))] = copy.deepcopy(draw(st.sampled_from(ODD_VALUES)))
        elif op == "nest":
            parent[key] = draw(st.sampled_from([[parent[key]], {"x": parent[key]}, {key if isinstance(key, str) else "k": parent[key]}]))
        elif op == "flatten" and isinstance(parent[key], (dict, list)) and parent[key]:
            inner = parent[key]
            parent[key] = next(iter(inner.values())) if isinstance(inner, dict) else inner[0]
    text = yaml.safe_dump(tree, sort_keys=False, allow_unicode=True)
    construct = draw(st.sampled_from(["none"] * 6 + ["alias", "merge", "tag", "bytes", "laughs",
                                      "flow", "duplicate"]))
    if construct == "alias":
        text = text.replace("width: 8", "width: &w 8", 1).replace("linear: 8", "linear: *w")
    elif construct == "merge":
        text = "base: &b {width: 8}\n" + text.replace("linear:\n      width: 8", "linear:\n      <<: *b", 1)
    elif construct == "tag":
        text = text.replace("steps: 2", draw(st.sampled_from(
            ["steps: !!str 2", "steps: !!python/object:os.system 2", "steps: !custom 2",
             "steps: 2024-01-01", "steps: !!binary aGk="])), 1)
    elif construct == "bytes":
        where = draw(st.integers(0, len(text)))
        junk = draw(st.sampled_from(["\0", "\t", "\ufeff", "{", "]", ": :", "\n  - ", "'", '"', "&", "*x"]))
        text = text[:where] + junk + text[where:]
    elif construct == "laughs":
        lol = "".join(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]\n" for i in range(1, 8))
        text = "l0: &l0 [x]\n" + lol + text
    elif construct == "flow":
        text = text + "about: " + "[" * draw(st.integers(10, 3000)) + "\n"
    elif construct == "duplicate":
        text = text + "seed: 1\n"
    command = draw(st.sampled_from(["paraxial"] * 7 + ["simulate"]))
    return text, command


@pytest.mark.filterwarnings("ignore")
@settings(max_examples=int(os.environ.get("NETLENS_FUZZ_EXAMPLES", 40)), derandomize=not os.environ.get("NETLENS_FUZZ_EXAMPLES"), deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(case=mutated())
def test_mutated_prescriptions_never_crash_or_hang(case, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from netlens.cli import app

    text, command = case
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "fuzz.yaml"
    path.write_text(text)
    args = [command, str(path)]
    if command == "simulate":
        args += ["--steps", "2", "--out", str(tmp_path / "run"), "--force", "-q"]
    t0 = time.perf_counter()
    r = CliRunner().invoke(app, args)
    took = time.perf_counter() - t0
    assert r.exception is None or isinstance(r.exception, SystemExit), \
        f"{r.exception!r} on:\n{text}\n{r.output}"
    assert "Traceback" not in r.output
    assert r.exit_code in (0, 1, 2, 3), (r.exit_code, text, r.output)
    # a hang, not a slow machine: the billion-laughs file took minutes before the limits
    assert took < (60 if command == "paraxial" else 120), f"{command} took {took:.1f} s on:\n{text}"
