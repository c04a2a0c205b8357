"""`simulate`: design → model → records. Build the network, train it with instruments on every
row, and return the records (and the paraxial trace to print beside them)."""
from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch

from netlens import data as datasets
from netlens.errors import RunError
from netlens.instruments.probes import Instruments
from netlens.instruments.records import ADAPTIVE, RowMeta, RunRecords
from netlens.instruments.schedule import Schedule
from netlens.model import Network, build_network
from netlens.paraxial.trace import Trace, trace
from netlens.prescription import Design
from netlens.train.loop import train_loop
from netlens.train.outputs import loss_name, loss_outputs
from netlens.train.threads import threads
from netlens.train.setup import DTYPES, make_accuracy, make_loss, pick_device

EVAL_CAP = 4096   # samples of the training split used for the train loss/accuracy at each probe


@dataclass(frozen=True)
class Seeds:
    """The random streams of one run, each defaulting to the design's seed: `data` (the split and
    generated samples), `init` (the initial weights), `order` (the batch order and dropout
    masks). `netlens tolerance` varies them one at a time to split the noise floor by source."""

    data: int | None = None
    init: int | None = None
    order: int | None = None

    def of(self, design: Design) -> "Seeds":
        s = design.seed
        return Seeds(s if self.data is None else self.data, s if self.init is None else self.init,
                     s if self.order is None else self.order)


@dataclass
class Run:
    design: Design
    trace: Trace
    records: RunRecords
    net: Network


def prepare(design: Design, seed: int | None = None) -> tuple[datasets.Dataset, Trace]:
    with design.blame():
        data = datasets.load(design.data, design.seed if seed is None else seed, design.base_dir)
        return data, trace(design, data.info, loss_outputs(design.train, data.info))


def row_meta(design: Design, tr: Trace) -> list[RowMeta]:
    prev: dict[int, int] = {}

    def chain(rows, before: int) -> None:
        for r in rows:
            prev[r.index] = before
            if r.element is None:
                chain([design.rows[i] for i in r.children], before)
            before = r.index

    chain(design.top_rows(), -1)
    out = []
    for r, t in zip(design.rows, tr.rows):
        out.append(RowMeta(
            index=r.index, label=r.label, element=r.element.name if r.element else "residual",
            kind=r.kind, source=r.source, path=r.path, name=r.name, parent=r.parent, depth=r.depth,
            prev=prev[r.index], params=t.params, out_shape=list(t.out_shape),
            # a sequence (T, D) is measured per token: its width is D
            width=int(t.out_shape[-1] if len(t.out_shape) == 2 else np.prod(t.out_shape))))
    return out


def _target_var(y: np.ndarray, info: datasets.DataInfo) -> float | None:
    """Variance of the targets as the loss sees them (one-hot for classes), averaged over outputs:
    the loss of the best constant prediction under mse, and the denominator of R²."""
    if len(y) < 2:
        return None
    if info.task == "classification" and y.ndim == 2:       # a label per position: per token
        y = y.reshape(-1)
    t = np.eye(info.n_outputs)[y] if info.task == "classification" else y.reshape(len(y), -1)
    return float(np.asarray(t, dtype=np.float64).var(axis=0).mean())


def memory_needed(design: Design, tr: Trace, n_samples: int, itemsize: int) -> tuple[int, int]:
    """Bytes a simulation needs at least, estimated from the paraxial trace before anything is
    allocated: weights with their gradients and optimizer state (×4), the data, and each row's
    activations for a batch, kept for the backward pass and the probes (×3). Also the index of
    the row holding the most. A lower bound: the estimate only has to catch the impossible."""
    batch = n_samples if design.data.batch == "full" else min(int(design.data.batch), n_samples)
    batch = max(batch, min(design.probe.batch, n_samples))
    per_row = [4 * t.params + 3 * batch * int(np.prod(t.out_shape, dtype=object)) for t in tr.rows]
    data = n_samples * int(np.prod(tr.rows[0].in_shape, dtype=object)) if tr.rows else 0
    worst = int(np.argmax(per_row)) if per_row else 0
    return (sum(per_row) + data) * itemsize, worst


def available_memory(device: torch.device) -> int | None:
    """Bytes this process can use on `device`: the GPU's total, or the machine's physical memory
    capped by a cgroup limit. None when unknown."""
    if device.type == "cuda":
        return int(torch.cuda.get_device_properties(device).total_memory)
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None
    for limit in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = open(limit).read().strip()
        except OSError:
            continue
        if text.isdigit():
            total = min(total, int(text))
    return total


def check_memory(design: Design, tr: Trace, data: datasets.Dataset, device: torch.device, dtype) -> None:
    """Refuse, before allocating, a design that cannot fit (exit code 3), naming the row."""
    need, worst = memory_needed(design, tr, len(data.x_train) + len(data.x_val),
                                torch.empty((), dtype=dtype).element_size())
    have = available_memory(device)
    if have is None or need <= have:
        return
    row = design.rows[worst]
    raise RunError(f"this design needs at least {_gib(need)} of memory and {device.type} has "
                   f"{_gib(have)}; the largest is row {row.index} `{row.label}` ({row.source}), "
                   f"{tr.rows[worst].params:,} parameters. Reduce its width or kernel, the batch "
                   "or `data.n`.")


def _gib(n: int) -> str:
    return f"{n / 2**30:,.1f} GiB" if n < 2**70 else f"{float(n):.3g} bytes"


def simulate(design: Design, *, instruments: bool = True,
             on_step: Callable[[int, float], None] | None = None,
             on_probe: Callable[[RunRecords], None] | None = None,
             seeds: Seeds | None = None,
             on_build: Callable[[Network, datasets.Dataset], None] | None = None) -> Run:
    """Train the design with instruments. `on_probe(records)`, if given, is called after every
    probe with the records so far (`steps_done` is the probe's step); an exception it raises stops
    training and propagates (optimize prunes trials this way). `seeds` seeds the data, the init
    and the batch order separately (default: all the design's seed); `on_build(net, data)` is
    called once the network is built, before the first step (tolerance perturbs weights there).
    Everything from the weights' draw on runs at the thread count `train.threads` chooses
    (netlens.train.threads)."""
    seeds = (seeds or Seeds()).of(design)
    data, tr = prepare(design, seeds.data)
    with design.blame():
        device = pick_device(design.train.device)
    n = len(data.x_train)
    batch = n if design.data.batch == "full" else min(int(design.data.batch), n)
    with threads(design.train.threads, tr, batch) as n_threads:
        return _simulate(design, data, tr, device, batch, n_threads, instruments, on_step, on_probe,
                         seeds, on_build)


def _simulate(design: Design, data: datasets.Dataset, tr: Trace, device: torch.device, batch: int,
              n_threads: int, instruments: bool, on_step, on_probe, seeds: Seeds,
              on_build) -> Run:
    dtype = DTYPES[design.train.precision]
    check_memory(design, tr, data, device, dtype)
    net = build_network(design, tr, seeds.init).to(device=device, dtype=dtype)
    if on_build is not None:
        on_build(net, data)
    info = data.info

    def tensors(xs: np.ndarray, ys: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        t = torch.as_tensor(ys, device=device)
        return (torch.as_tensor(xs, device=device, dtype=dtype),
                t.to(dtype) if info.task == "regression" else t)

    x, y = tensors(data.x_train, data.y_train)
    meta = row_meta(design, tr)
    loss_fn = make_loss(design.train, info)

    probe = None
    if instruments:
        pick = np.random.default_rng([seeds.data, 1]).permutation(len(x))
        probe_idx = torch.as_tensor(pick[: min(design.probe.batch, len(x))], device=device)
        eval_idx = torch.as_tensor(pick[:EVAL_CAP], device=device)
        xv, yv = tensors(data.x_val, data.y_val)
        hess = design.probe.hessian_spec()
        probe = Instruments(
            net, meta, loss_fn, make_accuracy(info), x[probe_idx], y[probe_idx],
            {"train": (x[eval_idx], y[eval_idx]), "val": (xv, yv)}, batch_size=batch,
            hessian=hess, seed=seeds.data, optimizer_name=design.train.optimizer,
            schedule=Schedule.of(design.probe, design.train.steps,
                                 adaptive=design.train.optimizer in ADAPTIVE))

    target_var = {"train": _target_var(data.y_train, info), "val": _target_var(data.y_val, info)}

    def make_records(steps_done: int, **kw) -> RunRecords:
        records = RunRecords(
            design=design.name, task=info.task, n_classes=info.n_classes,
            loss=loss_name(design.train, info), optimizer=design.train.optimizer, lr=design.train.lr,
            momentum=design.train.momentum, batch=batch, steps=design.train.steps,
            steps_done=steps_done, probe_every=design.probe.every, device=str(device),
            precision=design.train.precision, rows=meta, threads=n_threads,
            seconds=time.perf_counter() - t0, data_info=asdict(info), target_var=target_var, **kw)
        if probe is not None:
            probe.fill(records)
        return records

    probed, stepped, losses = None, on_step, []
    if on_probe is not None and probe is not None:
        def probed(snap) -> None:
            partial = make_records(snap.step, loss_curve=list(losses))
            partial.snapshots = list(partial.snapshots)
            on_probe(partial)

        def stepped(step: int, loss: float) -> None:
            losses.append(loss)
            if on_step is not None:
                on_step(step, loss)

    t0 = time.perf_counter()
    outcome = train_loop(net, design.train, x, y, datasets.batches(len(x), design.data.batch, seeds.order),
                         loss_fn, seeds.order, probe, stepped, probed)
    records = make_records(outcome.steps_done, loss_curve=outcome.loss_curve,
                           divergence=outcome.divergence, interrupted=outcome.interrupted)
    return Run(design, tr, records, net)

from netlens._callable import callable_module  # noqa: E402  `netlens.simulate(...)` is the API call

callable_module(__name__, "simulate")
