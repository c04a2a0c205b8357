"""The training loop. Plain PyTorch; instruments, if any, are called only on probe steps.

A step: forward on the next batch, backward, (clip), optimizer step, schedule step. A non-finite
loss or gradient stops the loop cleanly and is reported as a divergence, never raised.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from netlens.instruments.records import Divergence, Snapshot
from netlens.prescription.sections import TrainSpec
from netlens.train.setup import lr_factor, make_optimizer


@dataclass
class Outcome:
    steps_done: int = 0
    loss_curve: list[float] = field(default_factory=list)
    divergence: Divergence | None = None
    interrupted: bool = False


def train_loop(net: torch.nn.Module, train: TrainSpec, x: torch.Tensor, y: torch.Tensor,
               batches: Iterator[np.ndarray], loss_fn: Callable, seed: int,
               instruments=None,
               on_step: Callable[[int, float], None] | None = None,
               on_probe: Callable[[Snapshot], None] | None = None) -> Outcome:
    """Train for `train.steps` steps. At a probe step the instruments read the step's own forward
    and backward (hooks) and, on their sparser schedules, the fixed probe batch, the evaluation
    passes and the Hessian. `on_probe(snapshot)`, if given, is called after each probe step's
    update (and after the last state's probe); an exception it raises (e.g. optimize pruning a
    trial) stops the run and propagates to the caller — the loop catches only KeyboardInterrupt."""
    torch.manual_seed(seed)          # dropout masks: the same with or without instruments
    optimizer = make_optimizer(train, net.parameters())
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(train))
    probes: set[int] = set()
    if instruments is not None:
        instruments.bind(optimizer)
        probes = instruments.probes
    out = Outcome()
    net.train()
    step = 0
    pending = None                    # the probe step whose hooks are on
    try:
        for step in range(train.steps):
            idx = torch.tensor(next(batches), device=x.device)   # a copy: full-batch indices are read-only
            xb, yb = x[idx], y[idx]
            if step in probes:
                instruments.begin(step, optimizer.param_groups[0]["lr"], xb)
                pending = step
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(net(xb), yb)
            value = float(loss.detach())
            out.loss_curve.append(value)
            if not math.isfinite(value):
                if pending is not None:
                    instruments.cancel(step)
                    pending = None
                out.divergence = _divergence(instruments, xb, step, "loss")
                break
            loss.backward()
            if train.clip is not None:
                norm = torch.nn.utils.clip_grad_norm_(net.parameters(), train.clip)
            else:
                norm = None
            if pending is not None:
                instruments.after_backward(step)
            if norm is not None and not torch.isfinite(norm):
                out.divergence = Divergence(step, None, "gradient")
                pending = None
                break
            optimizer.step()
            schedule.step()
            out.steps_done = step + 1
            if pending is not None:
                pending = None
                instruments.after_update(step)
                if on_probe is not None:
                    on_probe(instruments.snapshots[-1])
            if on_step is not None:
                on_step(step + 1, value)
    except KeyboardInterrupt:
        out.interrupted = True
        if pending is not None:
            instruments.cancel(pending)
    if instruments is not None and out.steps_done not in {s.step for s in instruments.snapshots}:
        try:
            xb = yb = None
            if out.divergence is None and not out.interrupted:
                idx = torch.tensor(next(batches), device=x.device)   # the batch a next step would draw
                xb, yb = x[idx], y[idx]
            snap = instruments.final(out.steps_done, optimizer.param_groups[0]["lr"], xb, yb)
        except KeyboardInterrupt:
            out.interrupted = True
        else:
            if on_probe is not None:
                on_probe(snap)
    return out


def _divergence(instruments, xb: torch.Tensor, step: int, quantity: str) -> Divergence:
    if instruments is None:
        return Divergence(step, None, quantity)
    return instruments.locate_nonfinite(xb, step, quantity)
