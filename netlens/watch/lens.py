"""`netlens.watch`: the instruments of `simulate`, on your own model in your own training loop.

    with netlens.watch(model, optimizer, loss_fn, probe=(x_probe, y_probe)) as lens:
        for xb, yb in loader:                 # your loop, unchanged
            optimizer.zero_grad()
            loss_fn(model(xb), yb).backward()
            optimizer.step()
    result = lens.diagnose()                  # the same Result as netlens.diagnose.diagnose

Nothing is added inside the loop: the optimizer's step hooks count the steps and, every `every`
steps, measure every row on the fixed probe batch (module hooks on for that one forward only).
`lens.log(loss)` — optional, the one added line — keeps the training loss curve (DIVG reads it).
On leaving the block the run folder is written: `records.json` (the records a simulation
writes), `model.json` (the module tree, in place of `design.yaml`), `summary.json`, `loss.png`,
`gains.png`; `netlens diagnose RUN` judges it like any other run folder, without torch.
"""
from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from netlens.errors import DesignError
from netlens.instruments.records import RowMeta, RunRecords
from netlens.paraxial.modules import ModelDesign, ModelSpec, element_of, model_design, trace_model
from netlens.paraxial.trace import Trace
from netlens.watch.collector import Collector
from netlens.watch.tree import call_model, describe, first_tensor


@dataclass
class WatchedRun:
    """What `runs.write_run` and the documents read, for a watched model."""

    design: ModelDesign
    trace: Trace
    records: RunRecords
    spec: ModelSpec


def row_meta(spec: ModelSpec) -> list[RowMeta]:
    out = []
    for c in spec.rows:
        el = element_of(c) if c.leaf else None
        kind = el.kind if el is not None else "module"
        name = el.name if el is not None else "module"
        label = el.describe() if el is not None else c.type
        width = int(np.prod(c.out_shape)) if c.out_shape else 1
        out.append(RowMeta(index=c.index, label=label, element=name, kind=kind, source=c.source,
                           path=c.path, name=None, parent=None, depth=0, prev=c.prev,
                           params=c.params, out_shape=list(c.out_shape), width=width))
    return out


def _loss_name(loss_fn: Callable) -> str:
    """The loss by what it is (INIT's chance level depends on it); `mse` when unknown."""
    f = torch.nn.functional
    name = getattr(loss_fn, "__name__", type(loss_fn).__name__).lower()
    if isinstance(loss_fn, torch.nn.CrossEntropyLoss) or loss_fn is f.cross_entropy or "cross_entropy" in name:
        return "cross_entropy"
    if isinstance(loss_fn, (torch.nn.BCEWithLogitsLoss, torch.nn.BCELoss)) or "bce" in name \
            or loss_fn is f.binary_cross_entropy_with_logits:
        return "bce"
    return "mse"


def _optimizer_fields(opt: torch.optim.Optimizer) -> tuple[str, float, float]:
    g = opt.param_groups[0]
    lr = float(g.get("initial_lr", g.get("lr", math.nan)))
    momentum = g.get("momentum")
    if momentum is None and "betas" in g:
        momentum = g["betas"][0]
    return type(opt).__name__.lower(), lr, float(momentum or 0.0)


def _task(out: Any, y: Any) -> tuple[str, int]:
    o = first_tensor(out)
    if isinstance(y, torch.Tensor) and not y.is_floating_point() and o is not None and o.dim() >= 2:
        return "classification", int(o.shape[1]) if o.shape[1] > 1 else 2
    return "regression", 1


def _accuracy(task: str) -> Callable:
    if task != "classification":
        return lambda out, y: None

    def acc(out, y):
        o = first_tensor(out)
        if o is None or o.dim() < 2 or not isinstance(y, torch.Tensor) or o.shape[0] != y.shape[0]:
            return None
        if o.dim() > 2:            # (N, C, …) logits against (N, …) labels
            pred = o.argmax(1)
        else:
            pred = (o.squeeze(1) > 0).long() if o.shape[1] == 1 else o.argmax(1)
        return float((pred == y).float().mean()) if pred.shape == y.shape else None
    return acc


def _target_var(y: Any, task: str, n_classes: int) -> float | None:
    if not isinstance(y, torch.Tensor) or len(y) < 2:
        return None
    t = y.detach().cpu()
    if task == "classification":
        if t.dim() != 1:
            return None
        t = torch.nn.functional.one_hot(t.long(), max(n_classes, int(t.max()) + 1)).double()
    return float(t.double().reshape(len(t), -1).var(dim=0, unbiased=False).mean())


class Lens:
    """The context manager `watch` returns (see the module doc)."""

    def __init__(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, loss_fn: Callable,
                 probe: tuple[Any, Any], every: int = 20, out: str | Path | None = None,
                 rows: list[str] | None = None, val: tuple[Any, Any] | None = None,
                 name: str | None = None, steps: int | None = None, force: bool = False,
                 thresholds: dict[str, Any] | None = None, fail_on: str = "error",
                 step_pre_hook: bool = True):
        if not isinstance(model, torch.nn.Module):
            raise DesignError("`watch` takes a torch.nn.Module", path="model",
                              expected="an nn.Module", found=type(model).__name__)
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise DesignError("`watch` needs the optimizer that trains the model", path="optimizer",
                              expected="a torch.optim.Optimizer", found=type(optimizer).__name__)
        if not (isinstance(probe, (tuple, list)) and len(probe) == 2):
            raise DesignError("`probe` is a fixed batch (x, y) the rows are measured on",
                              path="probe", expected="(x, y), e.g. 256 training samples",
                              found=type(probe).__name__)
        if not isinstance(every, int) or isinstance(every, bool) or every < 1:
            raise DesignError("`every` is how many optimizer steps lie between probes", path="every",
                              expected="a whole number ≥ 1", found=every)
        if isinstance(rows, str):
            rows = [rows]
        self.model, self.optimizer, self.loss_fn = model, optimizer, loss_fn
        self.probe, self.val, self.every, self.rows = tuple(probe), val, every, rows
        self.name = name or type(model).__name__
        self.planned = steps
        self.out = Path(out) if out is not None else None
        self.force = force
        self.diagnose_settings = {"thresholds": dict(thresholds or {}), "fail_on": fail_on}
        self.loss_curve: list[float] = []
        self.step = 0
        self.run_dir: Path | None = None
        self.run: WatchedRun | None = None
        self._handles: list[Any] = []
        self._seen = 0
        self._batch = 0
        self._probing = False
        self._interrupted = False
        self._use_pre_hook = step_pre_hook   # False: the caller calls before_step() itself

    # -- the one optional line ---------------------------------------------------------------
    def log(self, loss: Any) -> None:
        """Keep the training loss of this step for the loss curve (DIVG reads it)."""
        self.loss_curve.append(float(loss.detach() if isinstance(loss, torch.Tensor) else loss))

    # -- entering and leaving ----------------------------------------------------------------
    def __enter__(self) -> "Lens":
        from netlens.runs import pick_dir

        self.run_dir = pick_dir(self.name, self.out, self.force)
        x, y = self.probe
        self.spec, self.sites = describe(self.model, x, self.rows, self.name)
        self.spec.diagnose = self.diagnose_settings
        self.meta = row_meta(self.spec)
        with torch.no_grad():
            was = self.model.training
            self.model.eval()
            try:
                from netlens.watch.tree import untouched

                with untouched(self.model, first_tensor(x).device if first_tensor(x) is not None else None):
                    out = call_model(self.model, x)
            finally:
                self.model.train(was)
        self.task, self.n_classes = _task(out, y)
        self.collector = Collector(self.model, self.meta, self.sites, self.loss_fn, self.probe,
                                   self.val, _accuracy(self.task), lambda: self._batch)
        self._measure(0)
        self._handles = [self.optimizer.register_step_post_hook(self._post_step),
                         self.model.register_forward_pre_hook(self._count_batch)]
        if self._use_pre_hook:
            self._handles.append(self.optimizer.register_step_pre_hook(self._pre_step))
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        for h in self._handles:
            h.remove()
        self._handles = []
        seconds = time.perf_counter() - self.t0
        if exc_type is KeyboardInterrupt:
            self._interrupted = True
        try:
            if not self.collector.snapshots or self.collector.snapshots[-1].step != self.step:
                self._measure(self.step)
            self._write(seconds)
        except Exception:
            if exc_type is None:
                raise
            # The loop's own exception is the one the user must see: keep the records so far if
            # they can be written, and never let a second failure here replace the first.
            with contextlib.suppress(Exception):
                self._write(seconds)
        return False

    # -- hooks -------------------------------------------------------------------------------
    def _lr(self) -> float:
        return float(self.optimizer.param_groups[0].get("lr", math.nan))

    def _measure(self, step: int) -> None:
        self._probing = True
        try:
            self.collector.measure(step, self._lr())
        finally:
            self._probing = False

    def _count_batch(self, _module, args, *rest) -> None:
        if not self._probing:
            t = first_tensor(args)
            self._seen += len(t) if t is not None and t.dim() > 0 else 0

    def _pre_step(self, _opt=None, _args=None, _kwargs=None) -> None:
        if self._seen:
            self._batch = self._batch or self._seen
        self.collector.before_step(self.step, self._lr())

    def before_step(self, batch_size: int | None = None) -> None:
        """For integrations whose optimizer computes the gradient inside `step` (a closure, as
        Lightning's): call this once the gradient is in `.grad`, before the update."""
        if batch_size:
            self._batch = self._batch or int(batch_size)
        self._pre_step()

    def _post_step(self, _opt, _args, _kwargs) -> None:
        self.collector.after_step(self.step)
        self.step += 1
        self._seen = 0
        if self.step % self.every == 0 and (self.planned is None or self.step <= self.planned):
            self._measure(self.step)

    # -- results -----------------------------------------------------------------------------
    def records(self, seconds: float = 0.0) -> RunRecords:
        optimizer, lr, momentum = _optimizer_fields(self.optimizer)
        x0 = first_tensor(self.probe[0])
        p0 = next(iter(self.model.parameters()), None)
        shape = self.spec.input_shape
        n_out = int(np.prod(self.meta[-1].out_shape)) if self.meta and self.meta[-1].out_shape else 1
        info = {"input_shape": list(shape), "task": self.task, "n_classes": self.n_classes,
                "n_samples": len(x0) if x0 is not None else 0,
                "n_outputs": self.n_classes if self.task == "classification" else n_out,
                "input_power": self.spec.input_q}
        y = self.probe[1]
        tv = {"train": _target_var(y, self.task, self.n_classes),
              "val": _target_var(self.val[1], self.task, self.n_classes) if self.val else None}
        rec = RunRecords(
            design=self.name, task=self.task, n_classes=self.n_classes,
            loss=_loss_name(self.loss_fn), optimizer=optimizer, lr=lr, momentum=momentum,
            batch=self._batch, steps=self.planned or self.step, steps_done=self.step,
            probe_every=self.every, device=str(x0.device if x0 is not None else "cpu"),
            precision=str(p0.dtype).replace("torch.", "") if p0 is not None else "float32",
            rows=self.meta, input_erank=self.collector.input_erank,
            snapshots=self.collector.snapshots, loss_curve=list(self.loss_curve),
            divergence=self.collector.divergence, interrupted=self._interrupted,
            seconds=seconds, data_info=info, target_var=tv)
        return rec

    def _write(self, seconds: float) -> None:
        from netlens.report import documents, plots
        from netlens.report.files import write_json

        design = model_design(self.spec, self.run_dir / "model.json")
        tr = trace_model(self.spec)
        rec = self.records(seconds)
        self.run = WatchedRun(design, tr, rec, self.spec)
        d = self.run_dir
        d.mkdir(parents=True, exist_ok=True)
        self.spec.save(d / "model.json")
        rec.save(d / "records.json")
        write_json(d / "summary.json", documents.simulate_doc(design, tr, rec, str(d)))
        plots.loss_curves(rec, d / "loss.png")
        plots.gain_profile(rec, tr, [r.index for r in design.top_rows()], d / "gains.png")

    def diagnose(self, at: str | int = "end", thresholds: list[str] | None = None, plot: bool = True):
        """Judge the run folder: the same `netlens.diagnose.Result` as `diagnose(RUN)`."""
        if self.run_dir is None or self.run is None:
            raise DesignError("`lens.diagnose()` judges the run folder written on leaving the "
                              "`with netlens.watch(...)` block",
                              suggestion="Call it after the block, not inside it.")
        from netlens.diagnose import diagnose

        return diagnose(self.run_dir, at=at, thresholds=thresholds, plot=plot)


def watch(model: torch.nn.Module, optimizer: torch.optim.Optimizer, loss_fn: Callable,
          probe: tuple[Any, Any], every: int = 20, out: str | Path | None = None,
          rows: list[str] | None = None, **kw: Any) -> Lens:
    """Watch `model` while your own loop trains it with `optimizer` (see the module doc).

    probe   a fixed batch (x, y) — a few hundred training samples — every row is measured on;
            `loss_fn(model(x), y)` must give the training loss
    every   optimizer steps between probes (and one at step 0 and at the end)
    out     the run folder (default runs/NAME, numbered if taken; `force=True` overwrites)
    rows    glob patterns over module paths (`["blocks.*"]`); default: every leaf module call
    val     an optional held-out batch (x, y): validation loss and accuracy (GAP)
    name    the run's name (default: the model's class); `steps` the planned step count
    thresholds, fail_on   as a prescription's `diagnose:` section
    """
    return Lens(model, optimizer, loss_fn, probe, every, out, rows, **kw)
