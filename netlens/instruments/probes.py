"""The instruments: hooks on every row, in tiers by cost (the tiers and their schedules
are described in netlens/instruments/schedule.py).

The training loop calls, only on probe steps:
  begin(step, lr, xb)    the state after `step` updates: the sparse tiers that read now (fixed
                         probe batch, evaluation passes, Hessian) run, then hooks are put on
                         every row for the training step's own forward and backward on `xb`;
  after_backward(step)   the training gradient is in `.grad`: the hooks' tensors give the per-row
                         powers and unit statistics, `.grad` the gradient norms and noise scale;
                         the hooks come off;
  after_update(step)     ‖ΔW‖/‖W‖ of the update just taken;
  cancel(step)           the step diverged before its backward: hooks off, its snapshot dropped;
and `final(step, lr, xb)` once for the last state, where every tier reads (the cheap tier by
its own forward and backward on the batch the next step would have drawn).

They never change training: the hooks only read (a forward hook keeps references to the row's
input and output, a tensor hook to the gradient flowing through it, neither returns a value);
the sparse tiers' passes save and restore batchnorm buffers and the random state, take gradients
with autograd.grad (never into `.grad`), and write nothing back to a parameter.
"""
from __future__ import annotations

import math
from contextlib import contextmanager

import torch

from netlens.instruments import attention, precision, stats
from netlens.instruments.hessian import Lanczos, preconditioner
from netlens.instruments.records import ADAPTIVE, Divergence, RowMeta, RunRecords, Snapshot
from netlens.instruments.schedule import MEASURES, Schedule

# Fewer samples·positions than this in a training batch: DEAD from the probe batch. A unit that
# fires on 2% of inputs is silent on a whole batch of 64 with probability 0.98⁶⁴ ≈ 27%, so small
# batches would call live units dead; at 256 that is 0.6%, the probe batch's own default size.
DEAD_MIN_SAMPLES = 256


class Instruments:
    def __init__(self, net, rows_meta, loss_fn, accuracy_fn, probe_x, probe_y, eval_sets,
                 batch_size: int, hessian=None, schedule: Schedule | None = None, seed: int = 0,
                 optimizer_name: str = "sgd"):
        self.net = net
        self.meta = rows_meta
        self.loss_fn = loss_fn
        self.accuracy_fn = accuracy_fn
        self.x, self.y = probe_x, probe_y
        self.eval_sets = eval_sets                  # {"train": (x, y), "val": (x, y)}
        self.batch_size = batch_size
        self.lanczos = Lanczos(hessian.max_products, hessian.tol) if hessian else None
        # the bottom of the spectrum (saddle points), opt-in via probe.hessian.bottom
        self.lanczos_min = (Lanczos(hessian.bottom_products, hessian.tol, which="bottom")
                            if hessian and hessian.bottom else None)
        self.schedule = schedule
        self.adaptive = optimizer_name in ADAPTIVE
        # the preconditioned operator's own Lanczos (its own warm start)
        self.lanczos_pre = (Lanczos(hessian.max_products, hessian.tol)
                            if hessian and self.adaptive else None)
        self.optimizer: torch.optim.Optimizer | None = None
        self.gen = torch.Generator().manual_seed(seed + 7919)
        self.snapshots: list[Snapshot] = []
        self._weights_before: dict[int, torch.Tensor] = {}
        self._probe_grad_sq: float | None = None
        self._tiers: set[str] = set()
        self._hooks: list = []
        self._captured: tuple | None = None
        self._pending_hessian = False
        self._noise_found = False
        # token ids (batch × positions) feed an embedding: their power and rank are not a signal
        self.tokens = attention.token_input(net)
        # Looked up once: the cheap tier runs every probe step, and module traversal costs more
        # than its reductions on a small network.
        self._params = [p for p in net.parameters() if p.requires_grad]
        mods = list(net.rows)
        self._weight_of = {i: m.weight for i, m in enumerate(mods)
                           if isinstance(getattr(m, "weight", None), torch.Tensor)}
        self._precision_at = precision.sample_indices(self._weight_of, seed + 104729)
        # DEAD per row from the training batch when it holds enough samples·positions at that row
        # (an image row's pixels, a sequence row's tokens), from the probe batch otherwise.
        relus = [m for m in rows_meta if m.kind == "activation" and m.element in stats.RELU_FAMILY]
        self._dead_rows = [m for m in relus if batch_size * _positions(m) >= DEAD_MIN_SAMPLES]
        self._dead_on_probe = {m.index for m in relus} - {m.index for m in self._dead_rows}
        self._sat_rows = [m for m in rows_meta if m.kind == "activation" and m.element in stats.SATURATING]
        self._mean_rows = [m for m in rows_meta if m.kind == "layer" and m.index in self._weight_of]
        self.input_erank = (attention.onehot_erank(probe_x) if self.tokens
                            else stats.effective_rank(stats.as_matrix(probe_x)))

    @property
    def probes(self) -> set[int]:
        return self.schedule.probes

    def bind(self, optimizer: torch.optim.Optimizer) -> None:
        """The optimizer whose state gives the preconditioner (Adam-family)."""
        self.optimizer = optimizer

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

    def _capture(self, grads: bool = False, live: bool = False):
        """Forward hooks keeping each row's input and output (detached views: no copy); with
        `grads`, a tensor hook on each output keeps the gradient flowing back through it; with
        `live`, the outputs stay in the graph (for autograd.grad with respect to them)."""
        outs: dict[int, torch.Tensor] = {}
        ins: dict[int, torch.Tensor] = {}
        gouts: dict[int, torch.Tensor] = {}

        def keep(i):
            def f(g):
                gouts[i] = g.detach()
            return f

        def hook(i):
            def f(_m, args, out):
                outs[i] = out if live else out.detach()
                ins[i] = args[0].detach()
                if grads and out.requires_grad:
                    out.register_hook(keep(i))
            return f

        handles = [m.register_forward_hook(hook(i)) for i, m in enumerate(self.net.rows)]
        return outs, ins, gouts, handles

    # -- the training loop's calls -----------------------------------------------------------
    def begin(self, step: int, lr: float | None, xb: torch.Tensor) -> None:
        snap = Snapshot(step=step, rows=[{} for _ in self.meta], lr=lr,
                        input_q=None, train_loss=None, probe_loss=None)
        self.snapshots.append(snap)
        self._tiers = self.schedule.tiers(step)
        self._sparse(snap, self._tiers, later_hessian=self.adaptive)
        outs, ins, gouts, handles = self._capture(grads=True)
        gin: dict[str, torch.Tensor] = {}
        if not xb.requires_grad and xb.is_floating_point():
            xb.requires_grad_(True)                  # a fresh batch tensor: only for ∂L/∂x
            xb.register_hook(lambda g: gin.__setitem__("x", g.detach()))
        self._hooks = handles
        self._captured = (xb, outs, ins, gouts, gin)

    def after_backward(self, step: int) -> None:
        snap = self._current(step)
        if snap is None:
            return
        self._remove_hooks()
        xb, outs, ins, gouts, gin = self._captured
        self._captured = None
        self._step_stats(snap, xb.detach(), outs, ins, gouts, gin.get("x"))
        total = self._grad_norms(snap)
        snap.noise_scale = self._noise_scale(total) if "fixed" in self._tiers else None
        self._noise_found = self._noise_found or snap.noise_scale is not None
        if self._pending_hessian:
            self._pending_hessian = False
            grads = [p.grad for p in self.net.parameters() if p.requires_grad]
            with self._untouched():
                self._hessian(snap, grads)

    def after_update(self, step: int) -> None:
        snap = self._current(step)
        if snap is not None and self._weights_before:
            rows = list(self._weights_before)
            before = [self._weights_before[i] for i in rows]
            weights = [self._weight_of[i] for i in rows]
            moved = torch._foreach_sub([w.detach() for w in weights], before)
            norms = torch.stack(torch._foreach_norm(before) + torch._foreach_norm(moved)).double()
            counts = torch.stack(precision.counts(moved, [w.grad for w in weights],
                                                  [self._precision_at[i] for i in rows])).double()
            read = torch.cat([norms, counts]).tolist()          # one read-back for every row
            n = len(rows)
            for k, i in enumerate(rows):
                norm, step_norm = read[k], read[n + k]
                snap.rows[i]["w_norm"] = norm
                snap.rows[i]["update_ratio"] = step_norm / norm if norm > 0 else math.nan
                rounded = precision.share(read[2 * n + 2 * k], read[2 * n + 2 * k + 1])
                if rounded is not None:
                    snap.rows[i]["rounded"] = rounded
        self._weights_before = {}

    def cancel(self, step: int) -> None:
        """The step at a probe diverged (or was interrupted) before its backward."""
        self._remove_hooks()
        self._captured = None
        self._pending_hessian = False
        if self.snapshots and self.snapshots[-1].step == step:
            self.snapshots.pop()

    def final(self, step: int, lr: float | None, xb: torch.Tensor | None = None,
              yb: torch.Tensor | None = None) -> Snapshot:
        """The last state: every tier, the cheap one by its own pass on (xb, yb) — the batch the
        next step would have drawn; the probe batch if none."""
        if self.snapshots and self.snapshots[-1].step == step:
            self.snapshots.pop()
        snap = Snapshot(step=step, rows=[{} for _ in self.meta], lr=lr,
                        input_q=None, train_loss=None, probe_loss=None)
        self.snapshots.append(snap)
        self._tiers = self.schedule.tiers(step, final=True)
        self._sparse(snap, self._tiers - {"hessian"}, later_hessian=False)
        if xb is None:
            xb, yb = self.x, self.y
        with self._untouched():
            grads = self._extra_pass(snap, xb, yb)
            if "hessian" in self._tiers and self.lanczos is not None:
                self._hessian(snap, grads)
        for meta, r in zip(self.meta, snap.rows):
            w = getattr(self.net.rows[meta.index], "weight", None)
            if w is not None and meta.kind == "layer":
                r["w_norm"] = float(stats.weight_matrix(w).norm())
        return snap

    # -- tiers -------------------------------------------------------------------------------
    def _sparse(self, snap: Snapshot, tiers: set[str], later_hessian: bool) -> None:
        if "fixed" in tiers:
            with self._untouched():
                self._fixed(snap)
            self._weights(snap)
        if "hessian" in tiers and self.lanczos is not None:
            if later_hessian:
                self._pending_hessian = True        # the preconditioner needs this step's gradient
            else:
                with self._untouched():
                    self._hessian(snap, None)
        if "eval" in tiers:
            self._evaluate(snap)

    def _current(self, step: int) -> Snapshot | None:
        return self.snapshots[-1] if self.snapshots and self.snapshots[-1].step == step else None

    def _remove_hooks(self) -> None:
        for h in self._hooks:
            h.remove()
        self._hooks = []

    def _step_stats(self, snap: Snapshot, x, outs, ins, gouts, gx) -> None:
        """The cheap tier, from one forward and backward's tensors: the powers of every row by
        one fused norm over all outputs (and one over all gradients), a reduction or two per
        activation and weight row, everything read back in one `tolist()`. A row is finite when
        its mean square is (a mean square beyond the dtype's range counts as non-finite)."""
        rows = [m for m in self.meta if m.index in outs]
        for m in self.meta:
            if m.index not in outs:
                snap.rows[m.index].update(q=math.nan, p=math.nan)
        fwd = [x.detach()] + [outs[m.index] for m in rows]
        bwd_rows = [m for m in rows if m.index in gouts]
        bwd = ([gx] if gx is not None else []) + [gouts[m.index] for m in bwd_rows]
        dead_rows = [m for m in self._dead_rows if m.index in outs]
        sat_rows = [m for m in self._sat_rows if m.index in outs]
        mean_rows = [m for m in self._mean_rows if m.index in outs]
        parts = [torch.stack(torch._foreach_norm(fwd)).double()]
        if bwd:
            parts.append(torch.stack(torch._foreach_norm(bwd)).double())
        peaks = [_unit_reduce(ins[m.index], "amax") for m in dead_rows]   # per unit: did it fire?
        if dead_rows:
            parts.append(torch.stack([peak.gt(0).sum() for peak in peaks]).double())
        if sat_rows:
            parts.append(torch.stack([stats.saturated_share(m.element, outs[m.index]) for m in sat_rows]).double())
        means = [_unit_reduce(outs[m.index], "mean") for m in mean_rows]
        if mean_rows:
            parts.append(torch.stack(torch._foreach_norm(means)).double())
        read = iter(torch.cat(parts).tolist())

        def msq(t: torch.Tensor, norm: float) -> float:
            return norm * norm / max(1, t.numel())

        snap.input_q = msq(fwd[0], next(read))
        if self.tokens:
            snap.input_q = 1.0          # a token's reference power (netlens.instruments.attention)
        q = {m.index: msq(outs[m.index], next(read)) for m in rows}
        if gx is not None:
            snap.input_p = msq(gx, next(read))
        p = {m.index: msq(gouts[m.index], next(read)) for m in bwd_rows}
        for m in rows:
            r = snap.rows[m.index]
            r["q"], r["p"] = q[m.index], p.get(m.index, 0.0)
            r["finite"] = math.isfinite(r["q"])
        for m, peak in zip(dead_rows, peaks):
            r = snap.rows[m.index]
            active = next(read)
            if r["finite"]:
                r["dead"] = 1.0 - active / max(1, peak.numel())
        for m in sat_rows:
            v = next(read)
            if snap.rows[m.index]["finite"]:
                snap.rows[m.index]["sat"] = v
        for m, mean in zip(mean_rows, means):   # share of the power in per-unit means: Σ mean² / Σ E[x²]
            r = snap.rows[m.index]
            n = next(read)
            mean_sq = n * n / max(1, mean.numel())
            r["mean_share"] = (mean_sq / r["q"] if r["q"] > 0 else 0.0) if r["finite"] else math.nan

    def _grad_norms(self, snap: Snapshot) -> float:
        params = [p for p in self._params if p.grad is not None]
        norms = torch.stack(torch._foreach_norm([p.grad.detach() for p in params])).tolist() \
            if params else []
        by_id = {id(p): n for p, n in zip(params, norms)}
        rows = [i for i, w in self._weight_of.items() if id(w) in by_id]
        for i in rows:
            snap.rows[i]["g_norm"] = by_id[id(self._weight_of[i])]
        if rows:
            copies = torch._foreach_mul([self._weight_of[i].detach() for i in rows], 1.0)
            self._weights_before = dict(zip(rows, copies))
        total = sum(n * n for n in norms)
        snap.grad_norm = math.sqrt(total)
        return total

    def _extra_pass(self, snap: Snapshot, x: torch.Tensor, y: torch.Tensor) -> list | None:
        """The cheap tier without a training step (the last state): a forward and backward of its
        own, by autograd.grad. Returns the parameter gradients (None if the loss is not finite)."""
        live, ins, _g, handles = self._capture(live=True)
        x = x.detach().clone()
        if x.is_floating_point():
            x.requires_grad_(True)
        try:
            loss = self.loss_fn(self.net(x), y)
        finally:
            for h in handles:
                h.remove()
        outs = {i: t.detach() for i, t in live.items()}
        if not (loss.requires_grad and torch.isfinite(loss)):
            self._step_stats(snap, x.detach(), outs, ins, {}, None)
            return None
        order = sorted(i for i, t in live.items() if t.requires_grad)
        params = self._params
        head = [x] if x.requires_grad else []
        grads = torch.autograd.grad(loss, head + [live[i] for i in order] + params, allow_unused=True)
        gx = grads[0] if head else None
        gouts, gparams = grads[len(head):len(head) + len(order)], list(grads[len(head) + len(order):])
        self._step_stats(snap, x.detach(), outs, ins, dict(zip(order, gouts)), gx)
        snap.grad_norm = math.sqrt(sum(float(g.float().pow(2).sum()) for g in gparams if g is not None))
        index = {id(p): k for k, p in enumerate(params)}
        for i, w in self._weight_of.items():
            k = index.get(id(w))
            if k is not None and gparams[k] is not None:
                snap.rows[i]["g_norm"] = float(gparams[k].float().norm())
        return gparams

    def _fixed(self, snap: Snapshot) -> None:
        """The fixed-probe-batch tier: effective rank, activation-slope spread, the probe loss,
        the probe gradient's power (for the noise scale)."""
        outs, ins, _g, handles = self._capture()
        # The noise scale needs the probe batch's gradient beside the training batch's (two batch
        # sizes); NOIS reads the first finite estimate, so it is taken until there is one.
        need_grad = len(self.x) > self.batch_size and not self._noise_found
        try:
            with torch.set_grad_enabled(need_grad):
                loss = self.loss_fn(self.net(self.x), self.y)
        finally:
            for h in handles:
                h.remove()
        snap.probe_loss = float(loss.detach())   # train mode, the batch the Hessian is taken on
        self._probe_grad_sq = None
        if need_grad and torch.isfinite(loss):
            gparams = torch.autograd.grad(loss, self._params, allow_unused=True)
            present = [g for g in gparams if g is not None]
            self._probe_grad_sq = (float(torch.stack(torch._foreach_norm(present)).double().pow(2).sum())
                                   if present else 0.0)
        # Every row's readings are read back at once (a read-back per quantity per row cost
        # more than the reductions on a small network).
        rows = [m for m in self.meta if m.index in outs]
        mats = [stats.as_matrix(outs[m.index]) for m in rows]
        finite = torch.stack([torch.isfinite(t).all() for t in mats]).tolist() if mats else []
        measured = [m for m, ok in zip(rows, finite) if ok]
        eranks = iter(stats.effective_ranks([t for t, ok in zip(mats, finite) if ok]))
        for m, ok in zip(rows, finite):
            snap.rows[m.index]["erank"] = next(eranks) if ok else math.nan
        acts = [m for m in measured if m.kind == "activation"]
        dead = [m for m in acts if m.index in self._dead_on_probe]
        parts = ([stats.spread(stats.activation_slope_sq(self.net.rows[m.index], ins[m.index]))
                  for m in acts] + [stats.dead_share(ins[m.index]).double() for m in dead])
        read = iter(torch.stack(parts).tolist() if parts else [])
        for m in acts:
            snap.rows[m.index]["cond"] = next(read)
        for m in dead:
            snap.rows[m.index]["dead"] = next(read)
        attention.measure(self, snap, outs, ins)    # sequences: attention entropy, logits, token rank

    def _weights(self, snap: Snapshot) -> None:
        """Each weight row's spectrum (s_max, s_min, cond), every row read back at once."""
        found = []
        for meta in self.meta:
            w = self._weight_of.get(meta.index)
            if w is None or meta.kind != "layer":
                continue
            m = stats.weight_matrix(w)
            found.append((meta.index, m, torch.isfinite(m).all()))
        if not found:
            return
        finite = torch.stack([ok for _i, _m, ok in found]).tolist()
        parts = [(i, stats.spectrum_parts(m)) for (i, m, _ok), ok in zip(found, finite) if ok]
        if not parts:
            return
        read = iter(torch.stack([t for _i, p in parts for t in p.values()]).tolist())
        for i, p in parts:
            snap.rows[i].update({k: next(read) for k in p})

    def _hessian(self, snap: Snapshot, grads: list[torch.Tensor | None] | None) -> None:
        """λ₁(H) on the probe batch; for an Adam-family optimizer λ₁(P⁻¹H) with P the
        preconditioner of the update taken with `grads` (this step's training gradient)."""
        params = self._params
        scale = None
        if self.adaptive and self.optimizer is not None and grads is not None:
            scale = preconditioner(self.optimizer, params, grads)
        dropouts = [m for m in self.net.modules() if isinstance(m, torch.nn.Dropout) and m.training]
        for m in dropouts:       # the Hessian of a fixed function: dropout off
            m.eval()
        try:
            loss = self.loss_fn(self.net(self.x), self.y)
            if not torch.isfinite(loss):
                return
            if scale is not None:
                snap.preconditioned, snap.preconditioned_products = self.lanczos_pre.estimate(
                    loss, params, self.gen, scale=scale)
            else:
                snap.hessian, snap.hessian_products = self.lanczos.estimate(loss, params, self.gen)
            if self.lanczos_min is not None:     # λ_min beside λ_max, on a fresh graph
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
        outs, _ins, _g, handles = self._capture()
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
        if self.schedule is not None:
            rec.schedule = self.schedule.to_dict()
            rec.tiers = {k: list(v) for k, v in MEASURES.items()}


def _positions(meta: RowMeta) -> int:
    """Positions per sample at a row: an image's pixels (C, H, W), a sequence's tokens (T, d)."""
    shape = meta.out_shape
    return math.prod(shape[1:]) if len(shape) == 3 else shape[0] if len(shape) == 2 else 1


def _unit_reduce(t: torch.Tensor, how: str) -> torch.Tensor:
    """Per unit (a feature, a channel of an image, a feature of every token) over samples and
    positions."""
    t = t.detach()
    dims = {4: (0, 2, 3), 3: (0, 1)}.get(t.dim(), (0,))     # a sequence: a feature of every token
    if t.dim() not in (2, 3, 4):
        t, dims = t.reshape(t.shape[0], -1), (0,)
    return t.amax(dim=dims) if how == "amax" else t.mean(dim=dims)
