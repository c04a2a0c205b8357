"""Instruments observe only: the same seed gives bit-identical weights with and without them."""
from __future__ import annotations

import torch

from netlens.prescription import load_design
from netlens.simulate import simulate

# Dropout and batchnorm are where a careless probe would change training (random state, running
# statistics); both are in this design on purpose.
DESIGN = """
netlens: 1
seed: 3
data: {source: digits, n: 300, batch: 16}
layers:
  - conv2d: {channels: 4, kernel: 3, init: he}
  - batchnorm
  - relu
  - maxpool: 2
  - flatten
  - dropout: 0.3
  - residual:
      - linear: {width: 64, init: he}
      - tanh
  - linear: 10
train: {optimizer: adam, lr: 0.003, steps: 25, device: cpu}
probe: {every: 5, batch: 48, hessian: {every: 5, max_products: 5}}
"""


def test_instruments_do_not_change_training(write):
    design = load_design(write(DESIGN))
    with_probes = simulate(design, instruments=True)
    bare = simulate(design, instruments=False)
    assert len(with_probes.records.snapshots) == 6   # steps 0, 5, …, 25
    assert with_probes.records.snapshots[1].preconditioned is not None   # adam: λ₁(P⁻¹H)
    a, b = with_probes.net.state_dict(), bare.net.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert with_probes.records.loss_curve == bare.records.loss_curve


def test_records_cover_every_row(write):
    run = simulate(load_design(write(DESIGN)))
    snap = run.records.at("init")
    assert len(snap.rows) == len(run.design.rows)
    for meta, row in zip(run.records.rows, snap.rows):
        assert row["q"] > 0, meta
        if meta.kind == "layer":
            assert "s_max" in row and "w_norm" in row and "update_ratio" in row
        if meta.element == "relu":
            assert 0 <= row["dead"] <= 1
    assert snap.val_accuracy is not None and snap.grad_norm > 0
