"""Corrections for a watched model: advice in the catalog's terms, not prescription patches.

A prescription is a file netlens can rewrite; a user's `nn.Module` is code it cannot. So each
finding of a watched run gets the same corrections the catalog names for it (`he_init`,
`insert_layernorm`, `set_lr` …), each as: which modules, which change, a few lines of PyTorch
that make it, and — for an init, where the module tree allows it — what the paraxial trace
predicts after the change (the worst Σ GAIN/FLOW before → after, as for a patch). The JSON keeps
the contract's shape: `corrections: [{name, patch: null, advice}]`, `correction_info`,
`suggested`, `not_applicable`. Torch-free: it reads the module tree (`model.json`) only.
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from netlens.corrections.base import Case
from netlens.corrections.findings import measured
from netlens.corrections.predict import Prediction, _worst
from netlens.paraxial.modules import Call, ModelDesign, ModelSpec, element_of, trace_model
from netlens.paraxial.trace import Trace, db, flow_totals

RELU_LIKE = ("relu", "leaky_relu", "elu", "gelu", "silu", "softplus", "selu")
SQUASHING = ("tanh", "sigmoid", "identity")


@dataclass
class Advice:
    did: str                        # one line: which modules, which change
    code: str                       # the PyTorch lines that make it
    prediction: Prediction | None = None
    notes: list[str] = field(default_factory=list)


class NotApplicable(Exception):
    """This correction has no meaning for the watched model (e.g. no module of the kind it
    changes); the advice for it is left out instead of guessed."""


def expr(path: str) -> str:
    """`blocks.0.fc1` → `model.blocks[0].fc1`."""
    if not path:
        return "model"
    return "model" + "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in path.split("."))


def _names(calls: list[Call], limit: int = 4) -> str:
    paths = list(dict.fromkeys(expr(c.path) for c in calls))
    shown = ", ".join(f"`{p}`" for p in paths[:limit])
    return shown + (f" and {len(paths) - limit} more" if len(paths) > limit else "")


def _weighted(spec: ModelSpec) -> list[Call]:
    return [c for c in spec.rows if c.leaf and c.element in ("linear", "conv2d")]


def _next_activation(spec: ModelSpec, c: Call) -> str | None:
    """The activation this weight row feeds, if one follows before the next weight row."""
    for r in spec.rows[spec.rows.index(c) + 1:]:
        if r.element in ("linear", "conv2d") or not r.leaf:
            return None
        if element_of(r).kind == "activation":
            return r.element
    return None


def _hidden(spec: ModelSpec, acts: tuple[str, ...] | None) -> list[Call]:
    w = _weighted(spec)
    body = w[:-1]                   # the head (last weight row) is left alone, as for patches
    if acts is None:
        return body
    return [c for c in body if _next_activation(spec, c) in acts]


# --- paraxial before → after ---------------------------------------------------------------

def _worsts(design: ModelDesign, tr: Trace) -> dict[str, float]:
    """The worst cumulative GAIN and FLOW in the conventions the aberrations judge them."""
    rows = design.spec.rows
    top = [r.index for r in design.top_rows()]
    gains = [db(t.cum_gain) for t in tr.rows if t.index != top[-1] and t.cum_gain > 0]
    flows = [f for t, c, f in zip(tr.rows, rows, flow_totals(design, tr)) if c.prev >= 0 and t.cum_flow > 0]
    return {"GAIN": _worst(gains), "FLOW": _worst(flows)}


def _predict(design: ModelDesign, tr: Trace, change: dict[int, tuple[float, float]]) -> Prediction:
    spec = design.spec
    calls = [replace(c, sigma_w2=change[c.index][0], sigma_b2=change[c.index][1])
             if c.index in change else c for c in spec.calls]
    rows = calls if spec.rows == spec.calls else [
        replace(r, sigma_w2=change[r.first][0], sigma_b2=change[r.first][1])
        if r.leaf and r.first in change else r for r in spec.rows]
    after = replace(spec, calls=calls, rows=rows)
    b, a = _worsts(design, tr), _worsts(design, trace_model(after))
    return Prediction(None, None, {k: (b[k], a[k]) for k in ("GAIN", "FLOW")})


def _call_index(spec: ModelSpec, row: Call) -> int:
    return row.first if row.first is not None else row.index


# --- the advice, by catalog name -------------------------------------------------------------

def _init(target: str, acts: tuple[str, ...] | None, line: Callable[[Call], str],
          sigma: Callable[[Call], float]):
    def advise(design: ModelDesign, tr: Trace, case: Case, records: Any) -> Advice:
        rows = _hidden(design.spec, acts)
        if not rows:
            raise NotApplicable("no hidden Linear/Conv2d module feeds "
                                + ("an activation it suits" if acts else "another row"))
        change = {_call_index(design.spec, c): (sigma(c), 0.0) for c in rows}
        code = "\n".join(["import torch.nn as nn",
                          "for m in (" + ", ".join(dict.fromkeys(expr(c.path) for c in rows)) + ",):",
                          "    " + line(rows[0]),
                          "    nn.init.zeros_(m.bias) if m.bias is not None else None"])
        return Advice(f"{target} init on {len(rows)} module{'s' * (len(rows) != 1)} "
                      f"({_names(rows)}), biases zero; call it after building the model",
                      code, _predict(design, tr, change))
    return advise


def _fans(c: Call) -> tuple[int, int]:
    if c.element == "conv2d":
        k2 = c.options.get("kernel", 1) ** 2
        return c.in_shape[0] * k2, c.options.get("channels", 1) * k2
    return (c.in_shape[-1] if c.in_shape else 1), c.options.get("width", 1)


def _xavier(c: Call) -> float:
    fi, fo = _fans(c)
    return 2.0 * fi / (fi + fo)


def _norm(kind: str):
    def advise(design: ModelDesign, tr: Trace, case: Case, records: Any) -> Advice:
        rows = _hidden(design.spec, None)
        if not rows:
            raise NotApplicable("no hidden Linear/Conv2d module to follow with a norm")
        c = rows[0]
        width = c.options.get("channels") or c.options.get("width")
        if kind == "batchnorm":
            mod = f"nn.BatchNorm2d({width})" if c.element == "conv2d" else f"nn.BatchNorm1d({width})"
        else:
            mod = f"nn.GroupNorm(1, {width})" if c.element == "conv2d" else f"nn.LayerNorm({width})"
        return Advice(f"add a {mod.split('(')[0]} after each hidden weight module before its "
                      f"activation ({_names(rows)})",
                      f"# in __init__, e.g. for {expr(c.path)}:\nself.norm = {mod}\n"
                      f"# in forward: x = act(self.norm(layer(x)))")
    return advise


def _swap(design: ModelDesign, tr: Trace, case: Case, records: Any) -> Advice:
    acts = [c for c in design.spec.rows if c.leaf and c.element in ("relu", "tanh", "sigmoid")]
    if not acts:
        raise NotApplicable("no ReLU, Tanh or Sigmoid module to swap")
    new = "nn.LeakyReLU(0.1)" if acts[0].element == "relu" else "nn.GELU()"
    return Advice(f"replace the {acts[0].type} modules ({_names(acts)}) by {new}",
                  f"{expr(acts[0].path)} = {new}   # and likewise for the others")


def _lr(factor: float, why: str):
    def advise(design: ModelDesign, tr: Trace, case: Case, records: Any) -> Advice:
        lr = getattr(records, "lr", None)
        if not lr or not math.isfinite(lr):
            raise NotApplicable("the optimizer's learning rate is not known")
        new = float(f"{lr * factor:.2g}")
        return Advice(f"{why}: learning rate {lr:g} → {new:g}",
                      f"for g in optimizer.param_groups:\n    g['lr'] = {new:g}   "
                      "# or pass lr= when building the optimizer")
    return advise


def _set_lr(design: ModelDesign, tr: Trace, case: Case, records: Any) -> Advice:
    """The learning rate as `set_lr` sets it for a prescription (netlens.corrections.training)."""
    from netlens.corrections.training import MAX_RAISE, TARGET_FRACTION, TARGET_RATIO

    if case.code == "STEP" and case.value is not None and math.isfinite(case.value):
        factor = min(MAX_RAISE, 10 ** (TARGET_RATIO - case.value))
    elif case.code == "SHRP" and case.kind != "adaptive" and case.value and case.value > 0:
        factor = TARGET_FRACTION / case.value
    elif case.code == "DIVG":
        factor = 0.1                                   # no curvature measured: a decade down
    else:
        raise NotApplicable("no measurement to set the learning rate from")
    return _lr(factor, "the step size")(design, tr, case, records)


def _clip(design: ModelDesign, tr: Trace, case: Case, records: Any) -> Advice:
    norm = case.measured.get("grad_norm")
    limit = float(f"{norm:.2g}") if norm else 1.0
    return Advice(f"clip the global gradient norm at {limit:g} (the run's median)",
                  f"torch.nn.utils.clip_grad_norm_(model.parameters(), {limit:g})"
                  "   # between backward() and optimizer.step()")


def _fixed(did: str, code: str, when: Callable[[ModelDesign, Any], str | None] | None = None):
    def advise(design: ModelDesign, tr: Trace, case: Case, records: Any) -> Advice:
        if when is not None:
            why = when(design, records)
            if why:
                raise NotApplicable(why)
        return Advice(did, code)
    return advise


def _not_adaptive(design: ModelDesign, records: Any) -> str | None:
    opt = getattr(records, "optimizer", "")
    return f"the optimizer is already {opt}" if opt in ("adam", "adamw", "rmsprop") else None


ADVICE: dict[str, Callable[..., Advice]] = {
    "he_init": _init("He (kaiming_normal_, σ_w² = 2)", RELU_LIKE,
                     lambda c: "nn.init.kaiming_normal_(m.weight, nonlinearity='relu')", lambda c: 2.0),
    "xavier_init": _init("Xavier (xavier_normal_)", SQUASHING,
                         lambda c: "nn.init.xavier_normal_(m.weight)", _xavier),
    "orthogonal_init": _init("orthogonal", None,
                             lambda c: "nn.init.orthogonal_(m.weight, gain=nn.init.calculate_gain('relu'))",
                             lambda c: 2.0),
    "insert_batchnorm": _norm("batchnorm"),
    "insert_layernorm": _norm("layernorm"),
    "swap_activation": _swap,
    "set_lr": _set_lr,
    "warmup": _fixed("warm the learning rate up over the first steps",
                     "scheduler = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=0.01, "
                     "total_iters=100)\n# scheduler.step() after each optimizer.step()"),
    "clip_gradients": _clip,
    "switch_to_adam": _fixed("train with Adam, which rescales each weight's step",
                             "optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)", _not_adaptive),
    "weight_decay": _fixed("add weight decay", "optimizer = torch.optim.AdamW(model.parameters(), "
                           "lr=1e-3, weight_decay=1e-2)"),
    "insert_dropout": _fixed("add dropout after the hidden activations",
                             "self.drop = nn.Dropout(0.1)   # in forward: x = self.drop(act(x))"),
    "widen": _fixed("widen the narrowest hidden layers (more units per Linear/Conv2d)",
                    "nn.Linear(fan_in, 2 * width)   # and the next layer's fan_in to match"),
    "wrap_residual": _fixed("add skip connections around the deep part (x = x + block(x))",
                            "def forward(self, x):\n    for block in self.blocks:\n        x = x + block(x)"),
    "zero_init_residual": _fixed("zero the last weight of each residual branch",
                                 "nn.init.zeros_(block.last_linear.weight)   # for each residual block"),
    "remove_rows": _fixed("remove layers: a shallower stack loses less signal",
                          "# drop some of the repeated blocks from the model"),
}


def attach_advice(doc: dict[str, Any], design: ModelDesign, tr: Trace, records: Any = None,
                  limits: dict | None = None) -> None:
    """Each finding's corrections as advice for the user's code (see the module doc)."""
    from netlens.corrections import CORRECTIONS

    run = measured(records)
    for f in doc.get("findings", []):
        names = [c["name"] if isinstance(c, dict) else c for c in f.get("corrections", [])]
        f.setdefault("suggested", names)
        case = Case.of(f, **run)
        out, info, skipped = [], {}, {}
        for name in names:
            rule = ADVICE.get(name)
            if rule is None:
                skipped[name] = "no advice for a watched model yet"
                continue
            try:
                a = rule(design, tr, case, records)
            except NotApplicable as e:
                skipped[name] = str(e)
                continue
            c = CORRECTIONS.get(name)
            out.append({"name": name, "patch": None, "advice": a.code})
            entry = {"summary": c.summary if c else "", "citation": c.citation if c else "",
                     "did": a.did}
            if a.prediction is not None:
                entry["predicted"] = a.prediction.to_json()
            if a.notes:
                entry["notes"] = a.notes
            info[name] = entry
        f["corrections"] = out
        f["correction_info"] = info
        f["not_applicable"] = skipped


def module_path(source: str) -> str:
    """`module blocks.0.fc1 (call 2)` → `blocks.0.fc1`."""
    return re.sub(r"^module |\s*\(call \d+\)$", "", source)
