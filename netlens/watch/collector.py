"""The watch's instruments: the same per-row statistics as a simulation's, on a user's model.

Three calls, like `netlens.instruments.probes.Instruments`, made from the optimizer's step hooks:
  measure(step)     the state after `step` updates, on the fixed probe batch: each row's output
                    power q, gradient power p, effective rank, dead/saturated fractions, slope
                    spread, mean share, weight spectra; the probe loss in train and eval mode;
  before_step(step) the training gradient is in `.grad` (after any accumulation): per-row
                    gradient norms, the global norm, the noise scale, a copy of the weights;
  after_step(step)  ‖ΔW‖/‖W‖ of the update just taken.
They never change training: the probe runs with buffers saved and restored and the random state
forked, gradients are taken with autograd.grad (never into `.grad`), and no parameter is written.
Statistics come from `netlens.instruments.stats`; the rows are module calls (`tree.Site`).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from netlens.instruments import stats
from netlens.instruments.records import Divergence, RowMeta, Snapshot
from netlens.watch.tree import Site, call_model, first_tensor, untouched


class Collector:
    def __init__(self, model: torch.nn.Module, meta: list[RowMeta], sites: list[Site],
                 loss_fn: Callable, probe: tuple[Any, Any], val: tuple[Any, Any] | None,
                 accuracy_fn: Callable, batch_size: Callable[[], int]):
        self.model = model
        self.meta = meta
        self.sites = sites
        self.loss_fn = loss_fn
        self.x, self.y = probe
        self.val = val
        self.accuracy_fn = accuracy_fn
        self.batch_size = batch_size
        self.snapshots: list[Snapshot] = []
        self.divergence: Divergence | None = None
        x0 = first_tensor(self.x)
        self.device = x0.device if x0 is not None else None
        self.input_erank = (stats.effective_rank(stats.as_matrix(x0))
                            if x0 is not None and x0.is_floating_point() else math.nan)
        self._at: dict[tuple[int, int], int] = {(id(s.module), s.call): i for i, s in enumerate(sites)}
        self._weights_before: dict[int, torch.Tensor] = {}
        self._probe_grad_sq: float | None = None
        self._params = _unique_params(model)

    # -- the three calls ---------------------------------------------------------------------
    def measure(self, step: int, lr: float | None) -> Snapshot:
        snap = Snapshot(step=step, rows=[{"q": math.nan, "p": math.nan} for _ in self.meta], lr=lr)
        with untouched(self.model, self.device), torch.enable_grad():
            self._forward_backward(snap)
            self._evaluate(snap)
        self._weights(snap)
        self.snapshots.append(snap)
        return snap

    def before_step(self, step: int, lr: float | None) -> None:
        snap = self._current(step)
        if snap is not None:
            snap.lr = lr
            for i, meta in enumerate(self.meta):
                w = self._weight(i)
                if w is not None and w.grad is not None:
                    snap.rows[i]["g_norm"] = float(w.grad.detach().float().norm())
                    self._weights_before[i] = w.detach().clone()
        total = 0.0
        for p in self._params:
            if p.grad is not None:
                total += float(p.grad.detach().float().pow(2).sum())
        if not math.isfinite(total) and self.divergence is None:
            self.divergence = Divergence(step, None, "gradient")
        if snap is not None:
            snap.grad_norm = math.sqrt(total) if math.isfinite(total) else math.inf
            snap.noise_scale = self._noise_scale(total)

    def after_step(self, step: int) -> None:
        snap = self._current(step)
        for i, before in self._weights_before.items():
            w = self._weight(i).detach()
            norm = float(before.float().norm())
            if snap is not None:
                snap.rows[i]["update_ratio"] = (float((w - before).float().norm()) / norm
                                                if norm > 0 else math.nan)
        self._weights_before.clear()

    # -- pieces ------------------------------------------------------------------------------
    def _current(self, step: int) -> Snapshot | None:
        s = self.snapshots[-1] if self.snapshots else None
        return s if s is not None and s.step == step else None

    def _weight(self, i: int) -> torch.Tensor | None:
        if self.meta[i].kind != "layer":
            return None
        w = getattr(self.sites[i].module, "weight", None)
        return w if isinstance(w, torch.Tensor) else None

    def _forward_backward(self, snap: Snapshot) -> None:
        counts: dict[int, int] = {}
        pre_inputs: dict[int, torch.Tensor] = {}
        order: list[int] = []
        busy = [False]

        def pre(m, args):
            if busy[0]:
                return None
            key = id(m)
            counts[key] = counts.get(key, 0) + 1
            i = self._at.get((key, counts[key]))
            if i is not None and self.meta[i].kind == "activation" and getattr(m, "inplace", False):
                t = first_tensor(args)
                if t is not None:
                    pre_inputs[i] = t.detach().clone()     # an in-place activation overwrites it
            return None

        def post(m, args, out):
            if busy[0]:
                return None
            i = self._at.get((id(m), counts.get(id(m), 0)))
            if i is None:
                return None
            o, x = first_tensor(out), pre_inputs.pop(i, None)
            if x is None:
                x = first_tensor(args)
            if o is None:
                return None
            busy[0] = True
            try:
                snap.rows[i] = self._row_stats(i, o, x)
            finally:
                busy[0] = False
            order.append(i)
            if o.requires_grad:
                row = snap.rows[i]
                row["p"] = 0.0

                def grad_hook(g, row=row):
                    row["p"] = stats.mean_square(g)
                o.register_hook(grad_hook)
            return None

        modules = {id(s.module): s.module for s in self.sites}
        handles = []
        for m in modules.values():
            handles.append(m.register_forward_pre_hook(pre))
            handles.append(m.register_forward_hook(post))
        x = self._input()
        try:
            out = call_model(self.model, x)
            loss = self.loss_fn(out, self.y)
        finally:
            for h in handles:
                h.remove()
        snap.probe_loss = float(loss.detach())
        x0 = first_tensor(x)
        snap.input_q = stats.mean_square(x0) if x0 is not None and x0.is_floating_point() else math.nan
        wanted = ([x0] if x0 is not None and x0.requires_grad else []) + self._params
        if loss.requires_grad and wanted:
            grads = torch.autograd.grad(loss, wanted, allow_unused=True)
            if x0 is not None and x0.requires_grad:
                gx, grads = grads[0], grads[1:]
                snap.input_p = stats.mean_square(gx) if gx is not None else math.nan
            self._probe_grad_sq = sum(float(g.float().pow(2).sum()) for g in grads if g is not None)
        if not math.isfinite(snap.probe_loss) and self.divergence is None:
            bad = next((i for i in order if not snap.rows[i].get("finite", True)), None)
            self.divergence = Divergence(snap.step, bad, "output" if bad is not None else "loss")

    def _input(self):
        def prep(t):
            if isinstance(t, torch.Tensor) and t.is_floating_point():
                return t.detach().clone().requires_grad_(True)
            return t
        if isinstance(self.x, dict):
            return {k: prep(v) for k, v in self.x.items()}
        if isinstance(self.x, (tuple, list)):
            return type(self.x)(prep(v) for v in self.x)
        return prep(self.x)

    def _row_stats(self, i: int, out: torch.Tensor, pre: torch.Tensor | None) -> dict:
        meta = self.meta[i]
        if out.dim() == 0 or not (out.is_floating_point() or out.is_complex()):
            return {"q": math.nan, "p": math.nan}
        r: dict = {"q": stats.mean_square(out), "p": 0.0}
        mat = stats.as_matrix(out)
        r["finite"] = bool(torch.isfinite(mat).all())
        r["erank"] = stats.effective_rank(mat) if r["finite"] else math.nan
        module = self.sites[i].module
        if meta.kind == "activation" and r["finite"] and pre is not None and pre.is_floating_point():
            if meta.element in stats.RELU_FAMILY:
                r["dead"] = stats.dead_fraction(pre)
            if meta.element in stats.SATURATING:
                r["sat"] = stats.saturated_fraction(meta.element, out)
            r["cond"] = stats.normalized_variance(
                stats.activation_slope_sq(lambda h: module(h.clone()), pre))
        if meta.kind == "layer" and getattr(module, "weight", None) is not None:
            r["mean_share"] = stats.mean_share(out) if r["finite"] else math.nan
        return r

    def _weights(self, snap: Snapshot) -> None:
        for i, r in enumerate(snap.rows):
            w = self._weight(i)
            if w is None or w.dim() < 2:
                continue
            m = stats.weight_matrix(w)
            r["w_norm"] = float(m.norm())
            if torch.isfinite(m).all():
                r.update(stats.spectrum(m))

    @torch.no_grad()
    def _evaluate(self, snap: Snapshot) -> None:
        self.model.eval()
        for split, pair in (("train", (self.x, self.y)), ("val", self.val)):
            if pair is None:
                continue
            x, y = pair
            out = call_model(self.model, x)
            setattr(snap, f"{split}_loss", float(self.loss_fn(out, y)))
            acc = self.accuracy_fn(out, y)
            if acc is not None:
                setattr(snap, f"{split}_accuracy", acc)

    def _noise_scale(self, train_sq: float) -> float | None:
        """McCandlish et al. (2018) App. A, as in a simulation: the training batch against the
        probe batch at the same weights."""
        b_small, x0 = self.batch_size(), first_tensor(self.x)
        b_big = len(x0) if x0 is not None else 0
        if self._probe_grad_sq is None or not b_small or b_big <= b_small or not math.isfinite(train_sq):
            return None
        g2 = (b_big * self._probe_grad_sq - b_small * train_sq) / (b_big - b_small)
        tr = (train_sq - self._probe_grad_sq) / (1 / b_small - 1 / b_big)
        return tr / g2 if g2 > 0 and tr > 0 else None


def _unique_params(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    """Trainable parameters, a tied weight once (`parameters()` already removes duplicates)."""
    return [p for p in model.parameters() if p.requires_grad]
