"""The instruments: hooks on every row, read on a fixed probe batch (docs/instruments.md).

The training loop calls three methods, only on probe steps:
  measure(step)          state after `step` updates: forward/backward powers, unit statistics,
                         spectra, losses, Hessian top eigenvalue;
  after_backward(step)   the training gradient of this step is in `.grad`: norms, noise scale,
                         and a copy of the weights for the update ratio;
  after_update(step)     ‖ΔW‖/‖W‖ of the update just taken.
They never change training: the probe forward saves and restores batchnorm buffers and the
random state, gradients are taken with autograd.grad (never into `.grad`), and nothing is
written back to a parameter.
"""
from __future__ import annotations

import math
from contextlib import contextmanager

import torch

from netlens.instruments import attention, precision, stats
from netlens.instruments.hessian import Lanczos
from netlens.instruments.records import Divergence, RunRecords, Snapshot


class Instruments:
    def __init__(self, net, rows_meta, loss_fn, accuracy_fn, probe_x, probe_y, eval_sets,
                 batch_size: int, hessian=None, hessian_every: int = 100, seed: int = 0):
        self.net = net
        self.meta = rows_meta
        self.loss_fn = loss_fn
        self.accuracy_fn = accuracy_fn
        self.x, self.y = probe_x, probe_y
        self.eval_sets = eval_sets                  # {"train": (x, y), "val": (x, y)}
        self.batch_size = batch_size
        self.lanczos = Lanczos(hessian.max_products, hessian.tol) if hessian else None
        self.hessian_every = hessian_every
        # -- bottom of the spectrum (saddle points), opt-in via probe.hessian.bottom --
        self.lanczos_min = (Lanczos(hessian.bottom_products, hessian.tol, which="bottom")
                            if hessian and getattr(hessian, "bottom", False) else None)
        # -- end bottom of the spectrum --
        self.gen = torch.Generator().manual_seed(seed + 7919)
        self.snapshots: list[Snapshot] = []
        self._weights_before: dict[int, torch.Tensor] = {}
        self._probe_grad_sq: float | None = None
        self.input_erank = stats.effective_rank(stats.as_matrix(probe_x))

    # -- context managers that keep the model untouched --------------------------------------
    @contextmanager
    def _untouched(self):
        buffers = {k: v.clone() for k, v in self.net.named_buffers()}
        cuda = [self.x.device.index or 0] if self.x.is_cuda else []   # fork_rng takes CUDA ids
        with torch.random.fork_rng(devices=cuda):
            try:
                yield
            finally:
                with torch.no_grad():
                    for k, v in self.net.named_buffers():
                        v.copy_(buffers[k])

    def _capture(self):
        """Forward hooks storing each row's input and output tensors (graph kept)."""
        outs: dict[int, torch.Tensor] = {}
        ins: dict[int, torch.Tensor] = {}

        def hook(i):
            def f(_m, args, out):
                outs[i] = out
                ins[i] = args[0]
            return f

        handles = [m.register_forward_hook(hook(i)) for i, m in enumerate(self.net.rows)]
        return outs, ins, handles

    # -- the three calls ---------------------------------------------------------------------
    def measure(self, step: int, lr: float | None = None) -> Snapshot:
        snap = Snapshot(step=step, rows=[], lr=lr)
        with self._untouched():
            self._forward_backward(snap)
            if self.lanczos is not None and (step % self.hessian_every == 0):
                self._hessian(snap)
        self._evaluate(snap)
        self._weights(snap)
        self.snapshots.append(snap)
        return snap

    def after_backward(self, step: int) -> None:
        snap = self.snapshots[-1] if self.snapshots and self.snapshots[-1].step == step else None
        g2 = 0.0
        for i, m in enumerate(self.net.rows):
            w = getattr(m, "weight", None)
            if w is not None and w.grad is not None:
                gn = float(w.grad.detach().float().norm())
                g2 += gn ** 2
                if snap is not None:
                    snap.rows[i]["g_norm"] = gn
                self._weights_before[i] = w.detach().clone()
        total = sum(float(p.grad.detach().float().pow(2).sum())
                    for p in self.net.parameters() if p.grad is not None)
        if snap is not None:
            snap.grad_norm = math.sqrt(total)
            snap.noise_scale = self._noise_scale(total)

    def after_update(self, step: int) -> None:
        snap = self.snapshots[-1] if self.snapshots and self.snapshots[-1].step == step else None
        for i, before in self._weights_before.items():
            w = self.net.rows[i].weight.detach()
            norm = float(before.float().norm())
            if snap is not None:
                snap.rows[i]["update_ratio"] = float((w - before).float().norm()) / norm if norm > 0 else math.nan
            precision.record(snap, i, before, self.net.rows[i].weight)
        self._weights_before.clear()

    # -- pieces ------------------------------------------------------------------------------
    def _forward_backward(self, snap: Snapshot) -> None:
        outs, ins, handles = self._capture()
        x = self.x.detach().clone().requires_grad_(True)
        try:
            out = self.net(x)
            loss = self.loss_fn(out, self.y)
        finally:
            for h in handles:
                h.remove()
        order = sorted(outs)
        params = [p for p in self.net.parameters() if p.requires_grad]
        wanted = [x] + [outs[i] for i in order] + params
        grads = torch.autograd.grad(loss, wanted, allow_unused=True)
        gx, gouts, gparams = grads[0], grads[1:1 + len(order)], grads[1 + len(order):]
        snap.probe_loss = float(loss.detach())   # train mode, the batch the Hessian is taken on
        snap.input_q = stats.mean_square(x)
        snap.input_p = stats.mean_square(gx) if gx is not None else math.nan
        self._probe_grad_sq = sum(float(g.float().pow(2).sum()) for g in gparams if g is not None)
        grad_of = dict(zip(order, gouts))
        for meta in self.meta:
            snap.rows.append(self._row_stats(meta, outs.get(meta.index), ins.get(meta.index),
                                             grad_of.get(meta.index)))
        # -- sequences (issue 14): token inputs, attention entropy/logits, rank across tokens --
        attention.measure(self, snap, outs, ins)

    def _row_stats(self, meta, out, pre, grad) -> dict:
        if out is None:
            return {"q": math.nan, "p": math.nan}
        r: dict = {"q": stats.mean_square(out),
                   "p": stats.mean_square(grad) if grad is not None else 0.0}
        mat = stats.as_matrix(out)
        r["finite"] = bool(torch.isfinite(mat).all())
        r["erank"] = stats.effective_rank(mat) if r["finite"] else math.nan
        module = self.net.rows[meta.index]
        if meta.kind == "activation" and r["finite"]:
            if meta.element in stats.RELU_FAMILY:
                r["dead"] = stats.dead_fraction(pre)
            if meta.element in stats.SATURATING:
                r["sat"] = stats.saturated_fraction(meta.element, out)
            r["cond"] = stats.normalized_variance(stats.activation_slope_sq(module, pre))
        if getattr(module, "weight", None) is not None and meta.kind == "layer":
            r["mean_share"] = stats.mean_share(out) if r["finite"] else math.nan
        return r

    def _weights(self, snap: Snapshot) -> None:
        for meta, r in zip(self.meta, snap.rows):
            w = getattr(self.net.rows[meta.index], "weight", None)
            if w is None or meta.kind != "layer":
                continue
            m = stats.weight_matrix(w)
            r["w_norm"] = float(m.norm())
            if torch.isfinite(m).all():
                r.update(stats.spectrum(m))

    def _hessian(self, snap: Snapshot) -> None:
        params = [p for p in self.net.parameters() if p.requires_grad]
        dropouts = [m for m in self.net.modules() if isinstance(m, torch.nn.Dropout) and m.training]
        for m in dropouts:       # the Hessian of a fixed function: dropout off
            m.eval()
        try:
            loss = self.loss_fn(self.net(self.x), self.y)
            if torch.isfinite(loss):
                snap.hessian, snap.hessian_products = self.lanczos.estimate(loss, params, self.gen)
                if self.lanczos_min is not None:     # λ_min beside λ_max
                    snap.hessian_min, _ = self.lanczos_min.estimate(
                        self.loss_fn(self.net(self.x), self.y), params, self.gen)
        finally:
            for m in dropouts:
                m.train()

    @torch.no_grad()
    def _evaluate(self, snap: Snapshot) -> None:
        was = self.net.training
        self.net.eval()
        try:
            for split, (x, y) in self.eval_sets.items():
                if len(x) == 0:
                    continue
                out = self.net(x)
                setattr(snap, f"{split}_loss", float(self.loss_fn(out, y)))
                acc = self.accuracy_fn(out, y)
                if acc is not None:
                    setattr(snap, f"{split}_accuracy", acc)
        finally:
            self.net.train(was)

    def _noise_scale(self, train_sq: float) -> float | None:
        """McCandlish et al. (2018) App. A: unbiased |G|² and tr Σ from two batch sizes —
        the training batch and the probe batch, at the same weights."""
        b_small, b_big = self.batch_size, len(self.x)
        if self._probe_grad_sq is None or b_big <= b_small:
            return None
        g2 = (b_big * self._probe_grad_sq - b_small * train_sq) / (b_big - b_small)
        tr = (train_sq - self._probe_grad_sq) / (1 / b_small - 1 / b_big)
        return tr / g2 if g2 > 0 and tr > 0 else None

    # -- divergence --------------------------------------------------------------------------
    def locate_nonfinite(self, x: torch.Tensor, step: int, quantity: str) -> Divergence:
        """The first row (in forward order) whose output on this batch is not finite."""
        outs, _ins, handles = self._capture()
        try:
            with self._untouched(), torch.no_grad():
                self.net(x)
        finally:
            for h in handles:
                h.remove()
        for i, t in outs.items():        # hooks fire in forward order
            if not torch.isfinite(t).all():
                return Divergence(step, i, "output")
        return Divergence(step, None, quantity)

    def fill(self, rec: RunRecords) -> None:
        rec.snapshots = self.snapshots
        rec.input_erank = self.input_erank
