"""A user's module tree as rows: which module calls a forward makes, in order, and what each is.

`describe(model, example)` runs one forward (no gradients, random state and buffers restored)
with hooks on every module and returns the `ModelSpec` the paraxial trace and the watch read:
each leaf module call in order of completion, the netlens element it is (by type, with its
options), its per-sample shapes, its weight statistics and which earlier call's output it takes.
Rows are those calls by default; `rows=["blocks.*"]` chooses modules by their path instead.
"""
from __future__ import annotations

import fnmatch
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from netlens.errors import DesignError
from netlens.paraxial.modules import Call, ModelSpec

Recognizer = Callable[[nn.Module], tuple[str | None, dict[str, Any], str | None]]


def _pair(v: Any) -> tuple:
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _conv(m: nn.Conv2d):
    k, s, p, d = _pair(m.kernel_size), _pair(m.stride), m.padding, _pair(m.dilation)
    if isinstance(p, str) or m.groups != 1 or d != (1, 1) or k[0] != k[1] or s[0] != s[1] \
            or _pair(p)[0] != _pair(p)[1] or m.padding_mode != "zeros":
        return None, {}, "grouped, dilated, non-square or non-zero-padded convolution: no rule yet"
    return "conv2d", {"channels": m.out_channels, "kernel": k[0], "stride": s[0],
                      "padding": _pair(p)[0], "bias": m.bias is not None}, None


def _pool(name: str):
    def rule(m):
        k, s = _pair(m.kernel_size), _pair(m.stride if m.stride is not None else m.kernel_size)
        if k[0] != k[1] or s != k or _pair(m.padding) != (0, 0) or getattr(m, "dilation", 1) not in (1, (1, 1)):
            return None, {}, f"{name} with stride ≠ kernel or padding: no rule yet"
        return name, {"kernel": k[0]}, None
    return rule


def _plain(name: str, **opts: Callable[[nn.Module], Any]):
    return lambda m: (name, {k: f(m) for k, f in opts.items()}, None)


def _adaptive(m: nn.AdaptiveAvgPool2d):
    if _pair(m.output_size) == (1, 1):
        return "global_avgpool", {}, None
    return None, {}, "adaptive pooling to more than 1×1: no rule yet"


def _flatten(m: nn.Flatten):
    if m.start_dim == 1 and m.end_dim == -1:
        return "flatten", {}, None
    return None, {}, "flatten of other dimensions: no rule"


def _softplus(m: nn.Softplus):
    return ("softplus", {}, None) if m.beta == 1 else (None, {}, "softplus with β ≠ 1: no rule")


# torch type → (element, options, why not). Exact types first; subclasses of these match too.
# Modules issue-14's elements cover (`embedding`, attention) are recognised when the element
# exists (netlens.paraxial.modules.element_of checks the registry).
RECOGNIZERS: dict[type, Recognizer] = {
    nn.Linear: lambda m: ("linear", {"width": m.out_features, "bias": m.bias is not None}, None),
    nn.Conv2d: _conv,
    nn.ReLU: _plain("relu"), nn.GELU: _plain("gelu"), nn.SiLU: _plain("silu"),
    nn.SELU: _plain("selu"), nn.Tanh: _plain("tanh"), nn.Sigmoid: _plain("sigmoid"),
    nn.Softplus: _softplus, nn.Identity: _plain("identity"),
    nn.LeakyReLU: _plain("leaky_relu", slope=lambda m: float(m.negative_slope)),
    nn.ELU: _plain("elu", alpha=lambda m: float(m.alpha)),
    nn.BatchNorm1d: _plain("batchnorm"), nn.BatchNorm2d: _plain("batchnorm"),
    nn.LayerNorm: _plain("layernorm"),
    nn.GroupNorm: _plain("groupnorm", groups=lambda m: int(m.num_groups)),
    nn.Dropout: _plain("dropout", p=lambda m: float(m.p)),
    nn.Flatten: _flatten,
    nn.MaxPool2d: _pool("maxpool"), nn.AvgPool2d: _pool("avgpool"),
    nn.AdaptiveAvgPool2d: _adaptive,
    nn.Embedding: _plain("embedding", vocab=lambda m: int(m.num_embeddings),
                         width=lambda m: int(m.embedding_dim)),
}
if hasattr(nn, "RMSNorm"):
    RECOGNIZERS[nn.RMSNorm] = _plain("rmsnorm")


def recognize(m: nn.Module) -> tuple[str | None, dict[str, Any], str | None]:
    rule = RECOGNIZERS.get(type(m))
    if rule is None:
        rule = next((r for t, r in RECOGNIZERS.items() if isinstance(m, t)), None)
    if rule is None:
        return None, {}, None
    return rule(m)


def weight_stats(m: nn.Module) -> tuple[float | None, float | None]:
    """σ_w² = fan_in·E[W²] and σ_b² = E[b²] of a weighted module, read from its weights."""
    w = getattr(m, "weight", None)
    if not isinstance(w, torch.Tensor) or w.dim() < 2:
        return None, None
    w = w.detach().float()
    sw = float(w.pow(2).mean()) * (w[0].numel())
    b = getattr(m, "bias", None)
    sb = float(b.detach().float().pow(2).mean()) if isinstance(b, torch.Tensor) else 0.0
    return sw, sb


def first_tensor(x: Any) -> torch.Tensor | None:
    if isinstance(x, torch.Tensor):
        return x
    if isinstance(x, (tuple, list)):
        for v in x:
            t = first_tensor(v)
            if t is not None:
                return t
    if isinstance(x, dict):
        for v in x.values():
            t = first_tensor(v)
            if t is not None:
                return t
    return None


def call_model(model: nn.Module, x: Any):
    """model(x), model(*x) for a tuple or list, model(**x) for a mapping."""
    if isinstance(x, dict):
        return model(**x)
    if isinstance(x, (tuple, list)):
        return model(*x)
    return model(x)


@contextmanager
def untouched(model: nn.Module, device: torch.device | None = None):
    """Buffers (batchnorm statistics) restored and the random state forked: whatever runs
    inside leaves training exactly where it was. Autocast is off: probes measure in the
    model's own precision."""
    buffers = {k: v.clone() for k, v in model.named_buffers()}
    cuda = [device.index or 0] if device is not None and device.type == "cuda" else []
    was = model.training
    with torch.random.fork_rng(devices=cuda):
        with _no_autocast(device):
            try:
                yield
            finally:
                model.train(was)
                with torch.no_grad():
                    for k, v in model.named_buffers():
                        if k in buffers:
                            v.copy_(buffers[k])


@contextmanager
def _no_autocast(device: torch.device | None):
    kind = device.type if device is not None else "cpu"
    try:
        ctx = torch.autocast(kind, enabled=False)
    except RuntimeError:
        ctx = None
    if ctx is None:
        yield
    else:
        with ctx:
            yield


@dataclass
class Site:
    """Where a row is in the model: a module and which of its calls in a forward."""

    path: str
    module: nn.Module
    call: int


def path_matches(path: str, pattern: str) -> bool:
    """Glob over module paths, one `*` per path component (`blocks.*` is each block, not the
    modules inside it); `**` spans any number of components (`**.fc1`)."""
    def match(parts: list[str], pats: list[str]) -> bool:
        if not pats:
            return not parts
        if pats[0] == "**":
            return any(match(parts[i:], pats[1:]) for i in range(len(parts) + 1))
        return bool(parts) and fnmatch.fnmatchcase(parts[0], pats[0]) and match(parts[1:], pats[1:])
    return match(path.split("."), pattern.split("."))


def _per_sample(t: torch.Tensor | None) -> list[int]:
    return list(t.shape[1:]) if t is not None and t.dim() > 0 else []


def describe(model: nn.Module, example: Any, rows: list[str] | None = None,
             name: str | None = None, input_q: float | None = None) -> tuple[ModelSpec, list[Site]]:
    """Run one forward on `example` and describe the module tree as rows (see the module doc)."""
    named = [(p, m) for p, m in model.named_modules(remove_duplicate=True)]
    patterns = list(rows) if rows else None
    if patterns is not None:
        chosen = {id(m) for p, m in named if p and any(path_matches(p, pat) for pat in patterns)}
        if not chosen:
            paths = [p for p, _m in named if p][:12]
            raise DesignError("`rows` matches no module of the model", path="rows",
                              expected="glob patterns over module paths, e.g. " + ", ".join(paths[:4]),
                              found=patterns,
                              suggestion="List the paths with `[p for p, _ in model.named_modules()]`.")
    path_of = {id(m): p for p, m in named}

    events: list[dict] = []          # completion order
    counts: dict[int, int] = {}
    stack: list[int] = []

    def pre(m, args, kwargs=None):
        stack.append(len(events))
        return None

    def post(m, args, out, *rest):
        start = stack.pop() if stack else len(events)
        key = id(m)
        counts[key] = counts.get(key, 0) + 1
        inp = first_tensor(args) if args else first_tensor(rest[0] if rest else None)
        events.append({"module": m, "key": key, "call": counts[key], "in": inp,
                       "out": first_tensor(out), "start": start})

    handles = []
    for _p, m in named:
        if m is model and len(named) > 1:
            continue
        handles.append(m.register_forward_pre_hook(pre))
        handles.append(m.register_forward_hook(post))
    x0 = first_tensor(example)
    device = x0.device if x0 is not None else None
    try:
        with untouched(model, device), torch.no_grad():
            call_model(model, example)
    finally:
        for h in handles:
            h.remove()
    if not events:
        raise DesignError("the model made no module call on the example input",
                          suggestion="Pass a model built from torch.nn modules.")

    for k, e in enumerate(events):
        e["seq"] = k
    # A leaf call makes no module call inside it (a module whose children its forward never
    # calls, as nn.MultiheadAttention's out_proj, is a leaf too).
    leaf_events = [e for e in events if e["start"] == e["seq"]]
    if patterns is None:
        picked = leaf_events
    else:
        picked = [e for e in events if e["key"] in chosen]
    calls = _calls(leaf_events, path_of, x0, leaf_events)
    if patterns is None:
        row_calls = [Call(**{**c.__dict__, "first": c.index, "last": c.index}) for c in calls]
    else:
        row_calls = _calls(picked, path_of, x0, leaf_events)
    sites = [Site(path_of[e["key"]], e["module"], e["call"]) for e in picked]
    q = input_q if input_q is not None else (_mean_square(x0) if x0 is not None else 1.0)
    spec = ModelSpec(name=name or type(model).__name__, type=type(model).__name__,
                     input_shape=_per_sample(x0), input_q=q, calls=calls, rows=row_calls,
                     input_dtype=str(x0.dtype).replace("torch.", "") if x0 is not None else "")
    return spec, sites


def _mean_square(x: torch.Tensor) -> float:
    if not x.is_floating_point():
        return 1.0
    return float(x.detach().double().pow(2).mean())


def _calls(picked: list[dict], path_of: dict, x0: torch.Tensor | None,
           leaf_events: list[dict]) -> list[Call]:
    """One `Call` per picked event, in completion order."""
    leaf_pos = {e["seq"]: i for i, e in enumerate(leaf_events)}
    owner: set[int] = set()             # parameters already counted (a tied weight: once)
    out_ids: dict[int, int] = {}
    out = []
    for i, e in enumerate(picked):
        m = e["module"]
        leaf = e["seq"] in leaf_pos
        element, options, note = recognize(m) if leaf else (None, {}, None)
        params = 0
        for p in m.parameters(recurse=True):
            if id(p) not in owner:
                owner.add(id(p))
                params += p.numel()
        sw, sb = weight_stats(m) if element in ("linear", "conv2d") else (None, None)
        prev, follows = _prev(e, picked[:i], out_ids, x0)
        inside = [leaf_pos[k] for k in range(e["start"], e["seq"] + 1) if k in leaf_pos]
        out.append(Call(index=i, path=path_of[e["key"]], call=e["call"], type=type(m).__name__,
                        element=element, options=options, in_shape=_per_sample(e["in"]),
                        out_shape=_per_sample(e["out"]), params=params, sigma_w2=sw, sigma_b2=sb,
                        prev=prev, follows=follows, note=note, leaf=leaf,
                        first=min(inside) if inside else None, last=max(inside) if inside else None))
        if e["out"] is not None:
            out_ids[id(e["out"])] = i
    return out


def _prev(e: dict, earlier: list[dict], out_ids: dict, x0: torch.Tensor | None) -> tuple[int, bool]:
    """The row whose output is this call's input; else the last row completed before this call
    started (an operation in forward() sits between them), or the network input (−1)."""
    inp = e["in"]
    if inp is not None and id(inp) in out_ids:
        return out_ids[id(inp)], True
    if inp is not None and inp is x0:
        return -1, True
    done = [j for j, o in enumerate(earlier) if o["seq"] < e["start"]]
    return (done[-1], False) if done else (-1, False)
