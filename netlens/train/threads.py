"""How many CPU threads torch uses for a run: chosen on purpose, so that results repeat.

PyTorch's default is one intra-op thread per core (or `OMP_NUM_THREADS`). Two things go wrong
with that for the small networks netlens trains:

* **Results depend on the machine.** A parallel reduction (a matrix product's sum, a gradient's
  norm) adds its parts in an order set by the thread count, and float32 addition is not
  associative. A deep or sensitive network amplifies the last-bit differences: `deep-tanh`
  trained on 1 and 2 threads ended at different losses and got a different diagnosis.
* **It is slow.** A step of a small MLP is a few microseconds of arithmetic per operation; on a
  busy machine the threads spend their time waiting for each other (`benchmarks/threads.py`).

The policy (`train.threads`, `--threads`): `auto` (the default) uses **one thread** unless one
forward pass over a training batch costs more than `LARGE_MACS` multiply–adds, where threads
start to pay; then it uses up to `LARGE_THREADS`, no more than torch would use by default. A
number pins the count. Seeded CPU runs repeat exactly at the same thread count, so below the
size threshold — every bundled design — they repeat on any machine, whatever its cores and
`OMP_NUM_THREADS`; above it, pin `train.threads` to repeat a run on another machine.
"""
from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

LARGE_MACS = 5e7        # forward multiply–adds per training batch above which threads pay
LARGE_THREADS = 4       # the most `auto` uses


def forward_macs(trace: Any, batch: int) -> float:
    """Multiply–adds of one forward pass over a batch: each weight row's parameters once per
    output position (a linear row has one position, a conv row H×W)."""
    total = 0.0
    for row in trace.rows:
        if not row.params:
            continue
        shape = tuple(row.out_shape)
        positions = math.prod(shape[1:]) if len(shape) == 3 else 1
        total += row.params * positions
    return total * batch


def choose(setting: int | str, trace: Any, batch: int, available: int) -> int:
    """The thread count for a run: `setting` when it is a number, else the `auto` rule."""
    if isinstance(setting, int):
        return setting
    if forward_macs(trace, batch) < LARGE_MACS:
        return 1
    return max(1, min(LARGE_THREADS, available))


@contextmanager
def threads(setting: int | str, trace: Any, batch: int) -> Iterator[int]:
    """Run the block at the chosen intra-op thread count, then restore torch's (on a GPU the
    count only affects the CPU-side operations)."""
    import torch

    before = torch.get_num_threads()
    n = choose(setting, trace, batch, before)
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(before)
